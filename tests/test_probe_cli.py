"""``w2sprobe probe | filter | relabel | sweep`` on a real cache, and label sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tiny_bert_workspace

from w2sprobe.cache import ActivationStore
from w2sprobe.errors import UsageError
from w2sprobe.labels import (
    LabelSet,
    find_label_set,
    list_label_sets,
    load_label_set,
    save_label_set,
)
from w2sprobe.metrics import roc_auc
from w2sprobe.probes import KnnProbe

SIZES = ["--n-train", "300", "--n-val", "60", "--n-test", "80"]


run = run_cli


@pytest.fixture
def cached(tmp_path, monkeypatch, shared_data, tiny_models, capsys):
    """A workspace with the tiny BERT's layers 1..3 on sst2 and a noisy 'weak' label set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return tiny_bert_workspace(capsys, tmp_path, tiny_models, "1,2,3")


def test_probe_writes_predictions_then_metrics(capsys, cached):
    code, out, err = run(capsys, "probe", "--probe", "knn", "--k", "10", "--layer", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    folder = Path(summary["path"])
    metrics = json.loads((folder / "metrics.json").read_text())
    with (folder / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    test = [r for r in rows if r["split"] == "test"]
    assert len(test) == 80 and {r["split"] for r in rows} == {"val", "test"}
    preds = np.array([float(r["soft_pred"]) for r in test])
    assert [r["id"] for r in test] == cached["ids"]["test"].tolist()
    assert metrics["auc"] == pytest.approx(roc_auc(cached["truth"]["test"], preds))
    assert metrics["labels_auc"] == pytest.approx(
        roc_auc(cached["truth"]["test"], cached["soft"]["test"])
    )
    assert metrics["auc_minus_labels_auc"] == pytest.approx(metrics["auc"] - metrics["labels_auc"])
    assert summary["layer"] == 2 and metrics["labels"] == "weak"


def test_default_layer_is_the_reference_middle_layer(capsys, cached):
    code, out, err = run(capsys, "probe", "--json", "--k", "5")
    assert code == 0, err
    assert json.loads(out)["layer"] == 2  # (3 + 1) // 2


def test_filter_drops_exactly_the_fraction_and_reports_precision(capsys, cached):
    code, out, err = run(
        capsys,
        "filter",
        "--probe",
        "knn",
        "--k",
        "10",
        "--contamination",
        "0.2",
        "--layer",
        "3",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    stored = find_label_set(Path("c"), "sst2", summary["key"])
    assert stored.sizes() == {"strong_train": 150 - 30, "val": 60 - 12, "test": 80}
    for split, n in (("strong_train", 150), ("val", 60)):
        report = summary["report"][split]
        kept = set(stored.ids[split].tolist())
        removed = [i for i, id_ in enumerate(cached["ids"][split].tolist()) if id_ not in kept]
        wrong = (cached["soft"][split] > 0.5) != (cached["truth"][split] > 0.5)
        assert report["removed"] == len(removed) == round(0.2 * n)
        assert report["mislabeled_removed"] == int(wrong[removed].sum())
        assert report["precision"] == pytest.approx(wrong[removed].mean())
        np.testing.assert_allclose(
            stored.align(split, cached["ids"][split])[1][~np.isin(np.arange(n), removed)],
            cached["soft"][split][~np.isin(np.arange(n), removed)],
            rtol=1e-6,
        )
    assert stored.manifest["kind"] == "filter" and stored.manifest["parent_name"] == "weak"


def test_filter_table_keeps_split_names_whole_at_80_columns(capsys, cached, monkeypatch):
    from rich.console import Console

    from w2sprobe.cli import common

    monkeypatch.setattr(common, "stdout", Console(width=80))  # an 80-column terminal
    code, out, err = run(capsys, "filter", "--probe", "knn", "--k", "10", "--layer", "3")
    assert code == 0, err
    assert "strong_train" in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_relabel_exactly_as_written_equals_the_probe_api(capsys, cached):
    code, _, err = run(capsys, "relabel", "--probe", "knn", "--k", "50")
    assert code == 0, err
    (meta,) = [m for m in list_label_sets(Path("c"), "sst2") if m["name"] == "knn-relabel@weak"]
    relabeled = load_label_set(Path("c") / "labels" / "sst2" / meta["key"])
    with ActivationStore.open(cached["path"]) as store:
        probe = KnnProbe(k=50).fit(store.get("strong_train", 2), cached["soft"]["strong_train"])
        np.testing.assert_allclose(
            relabeled.soft["strong_train"], probe.predict_fit_set(), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            relabeled.soft["val"], probe.predict(store.get("val", 2)), rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(relabeled.soft["test"], cached["soft"]["test"], rtol=1e-6)


def test_sweep_reads_the_cache_without_any_forward_pass(capsys, cached, tmp_path, monkeypatch):
    def no_forward(*_, **__):
        raise AssertionError("a sweep must not load a model")

    monkeypatch.setattr("w2sprobe.cache.extraction.load_model", no_forward)
    code, out, err = run(
        capsys,
        "sweep",
        "--probe",
        "knn",
        "--k",
        "5,10,25",
        "--layers",
        "1,all",
        "--out",
        str(tmp_path / "sw"),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["layers"] == [1, 2, 3] and summary["grid"] == [5, 10, 25]
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(r["layer"], r["k"]) for r in rows] == [
        (layer, k) for layer in (1, 2, 3) for k in (5, 10, 25)
    ]
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 10_000
    assert len((tmp_path / "sw" / "sweep.csv").read_text().splitlines()) == 10


def test_sweep_is_a_cached_node_of_the_graph(capsys, cached, monkeypatch):
    args = ("sweep", "--probe", "knn", "--k", "5,10", "--layers", "2,3")
    code, out, err = run(capsys, *args, "--plan", "--json")
    assert code == 0, err
    nodes = {n["stage"]: n["status"] for n in json.loads(out)["nodes"]}
    assert nodes["sweep:knn"] == "to run"
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    first = json.loads(out)

    def no_probe(*_, **__):
        raise AssertionError("a cached sweep must not fit a probe")

    monkeypatch.setattr("w2sprobe.probes.sweep.evaluate_probe", no_probe)
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == first["rows"]
    code, out, err = run(capsys, *args, "--metric", "cosine", "--plan", "--json")
    nodes = {n["stage"]: n["status"] for n in json.loads(out)["nodes"]}
    assert nodes["sweep:knn"] == "to run"  # another metric is another sweep


def test_logreg_sweep_over_l2(capsys, cached, tmp_path):
    code, out, err = run(
        capsys,
        "sweep",
        "--probe",
        "logreg",
        "--l2",
        "1e-3,1e-1",
        "--layers",
        "3",
        "--out",
        str(tmp_path / "lr"),
        "--json",
    )
    assert code == 0, err
    assert [r["l2"] for r in json.loads(out)["rows"]] == [1e-3, 1e-1]


@pytest.mark.parametrize(
    "args,message",
    [
        (["probe", "--probe", "svm"], "unknown probe 'svm'; known: knn, logreg, topo"),
        (["probe", "--k", "0"], "k"),
        (["filter", "--contamination", "1.0"], "contamination"),
        (["filter", "--contamination", "-0.1"], "contamination"),
        (
            ["probe", "--layer", "0", "--no-build"],
            "is not built yet (--no-build); make it with: w2sprobe extract",
        ),
        (["probe", "--labels", "nonexistent"], "no label set 'nonexistent'"),
        (["sweep", "--k", "5,x"], "grid must be comma-separated numbers"),
        (["relabel", "--probe", "knn", "--name", "../escape"], "label set name"),
        (["filter", "--probe", "knn", "--name", "a/b"], "label set name"),
        (["filter", "--probe", "knn", "--name", ".."], "label set name"),
    ],
)
def test_bad_probe_input(capsys, cached, args, message):
    before = sorted(p.name for p in Path("c").rglob("*"))
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    # This workspace's weak labels come from elsewhere: a command that reads them says so first.
    err = "".join(line for line in err.splitlines(True) if not line.startswith(FALLBACK_WARNING))
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in Path("c").rglob("*")) == before


FALLBACK_WARNING = "warning: using the stored weak label set"


def test_a_sweep_out_folder_that_cannot_be_made_is_one_error_line(capsys, cached):
    Path("afile").write_text("x")
    code, out, err = run(capsys, "sweep", "--k", "5,10", "--out", "afile/sub")
    err = "".join(line for line in err.splitlines(True) if not line.startswith(FALLBACK_WARNING))
    assert code == 2 and err.startswith("error: cannot create sweep folder afile/sub")
    assert len(err.strip().splitlines()) == 1


def test_weak_labels_from_elsewhere_are_used_and_said(capsys, cached):
    code, out, err = run(capsys, "probe", "--k", "5", "--json")
    assert code == 0, err
    assert err.count(FALLBACK_WARNING) == 1
    notes = json.loads(out)["notes"]
    assert len(notes) == 1 and "made by no weak run here" in notes[0]


def test_label_set_with_foreign_ids_is_refused(capsys, cached):
    ids = {s: np.array([f"x{i}" for i in range(5)]) for s in ("strong_train", "val")}
    save_label_set(LabelSet("foreign", "sst2", ids, {s: np.full(5, 0.5) for s in ids}), Path("c"))
    code, _, err = run(capsys, "probe", "--labels", "foreign")
    assert code == 2 and "does not match sst2's splits" in err


def test_missing_weak_labels_say_where_they_come_from(capsys, cached):
    for folder in (Path("c") / "labels" / "sst2").iterdir():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    code, _, err = run(capsys, "relabel", "--probe", "knn", "--k", "50", "--no-build")
    assert code == 2 and "weak labels: train weak minilm on sst2 is not built yet" in err
    assert "make it with: w2sprobe train weak --dataset sst2" in err


# ------------------------------------------------------------------ label sets


def test_label_set_round_trip_align_and_ambiguity(tmp_path):
    ids = {"strong_train": np.array(["a", "b", "c"]), "val": np.array(["d"])}
    soft = {"strong_train": np.array([0.1, 0.9, 0.5]), "val": np.array([1.0])}
    first = LabelSet("weak", "toy", ids, soft, {"seed": 0})
    folder = save_label_set(first, tmp_path)
    loaded = load_label_set(folder)
    assert loaded.key == first.key and loaded.sizes() == {"strong_train": 3, "val": 1}
    np.testing.assert_array_equal(loaded.soft["strong_train"], np.float32([0.1, 0.9, 0.5]))
    mask, aligned = loaded.align("strong_train", np.array(["c", "x", "a", "b"]))
    assert mask.tolist() == [True, False, True, True]
    np.testing.assert_allclose(aligned[mask], [0.5, 0.1, 0.9], rtol=1e-6)
    assert find_label_set(tmp_path, "toy", "weak").key == first.key
    save_label_set(LabelSet("weak", "toy", ids, soft, {"seed": 1}), tmp_path)
    with pytest.raises(Exception, match="ambiguous"):
        find_label_set(tmp_path, "toy", "weak")
    assert find_label_set(tmp_path, "toy", first.key).manifest == {"seed": 0}


def test_sweep_output_of_a_file_dataset_stays_inside_the_cache(tmp_path):
    from w2sprobe.report.sweep_files import sweep_dir

    folder = sweep_dir(tmp_path / "cache", "/abs/data/reviews.jsonl", "0123abcd")
    assert folder.parent.parent == tmp_path / "cache" / "sweeps"
    assert folder.name == "0123abcd" and "/" not in folder.parent.name


def _toy_set(name: str, seed: int, parent: str = "weak") -> LabelSet:
    ids = {"strong_train": np.array(["a", "b"]), "val": np.array(["c"])}
    soft = {"strong_train": np.array([0.2, 0.8]), "val": np.array([0.6])}
    return LabelSet(name, "toy", ids, soft, {"seed": seed, "parent_name": parent})


def test_default_names_say_what_a_set_is_made_of():
    from w2sprobe.vocabulary import DerivedSet, parse_derived_set

    assert DerivedSet("knn", "relabel").name == "knn-relabel@weak"
    assert DerivedSet("knn", "filter", parent="gt").name == "knn-filter@gt"
    assert parse_derived_set("knn-relabel@gt") == DerivedSet("knn", "relabel", parent="gt")
    chained = parse_derived_set("logreg-filter@knn-relabel@weak")
    assert chained == DerivedSet("logreg", "filter", parent="knn-relabel@weak")
    assert parse_derived_set("knn-filter") == DerivedSet("knn", "filter", parent="weak")
    assert parse_derived_set("weak") is None and parse_derived_set("topo-relabel") is None


def test_short_name_finds_the_one_set_and_lists_several(tmp_path):
    weak_made = save_label_set(_toy_set("knn-relabel@weak", 0), tmp_path)
    assert find_label_set(tmp_path, "toy", "knn-relabel").key == weak_made.name
    save_label_set(_toy_set("knn-relabel@gt", 1, parent="gt"), tmp_path)
    # The full name is never ambiguous; the short one lists each candidate with its parent.
    assert find_label_set(tmp_path, "toy", "knn-relabel@weak").key == weak_made.name
    with pytest.raises(UsageError) as error:
        find_label_set(tmp_path, "toy", "knn-relabel")
    message = str(error.value)
    assert "ambiguous" in message and weak_made.name in message
    assert "= knn-relabel@weak (from weak, made 20" in message
    assert "= knn-relabel@gt (from gt, made 20" in message


def test_relabel_twice_from_different_parents_gives_two_names(capsys, cached):
    for parent in ("weak", "gt"):
        code, _, err = run(capsys, "relabel", "--probe", "knn", "--labels", parent, "--json")
        assert code == 0, err
    names = {m["name"] for m in list_label_sets(Path("c"), "sst2")}
    assert {"knn-relabel@weak", "knn-relabel@gt"} <= names
    code, _, err = run(capsys, "train", "student", "--labels", "knn-relabel", "--plan")
    assert code == 2 and "ambiguous" in err and "knn-relabel@gt (from gt" in err
