"""Hub sources: the resolution table, the parquet-branch fallback, errors, local parquet exports.

Offline: ``datasets.load_dataset`` is replaced by fakes that raise the messages datasets 5.2
really raises (copied from its ``load.py``) or return small in-memory datasets.
"""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict
from datasets.exceptions import DatasetNotFoundError

from w2sprobe.data import REGISTRY, SplitSizes, get_spec, load_splits
from w2sprobe.data import hub as hub_module
from w2sprobe.data.hub import HUB_SOURCES, PARQUET_REVISION, HubSource, load_with_fallback
from w2sprobe.errors import UsageError

pytestmark = pytest.mark.usefixtures("no_hub")

#: The real hub access, captured before the ``no_hub`` fixture replaces it.
REAL_LOAD_HUB_DATASET = hub_module.load_hub_dataset

# Repos/ids whose main revision is known (public evidence) to hold only a loading script.
KNOWN_SCRIPT_ONLY = {
    "piqa",
    "ybisk/piqa",
    "social_i_qa",
    "allenai/social_i_qa",
    "cosmos_qa",
    "allenai/cosmos_qa",
    "dream",
    "dataset-org/dream",
    "mc_taco",
    "CogComp/mc_taco",
    "quail",
    "textmachinelab/quail",
    "hendrycks/ethics",
    "EleutherAI/hendrycks_ethics",
}
# Bare ids of the reference study that have moved to a namespaced repo.
LEGACY_BARE = {
    "boolq",
    "cosmos_qa",
    "dream",
    "mc_taco",
    "super_glue",
    "paws",
    "piqa",
    "quail",
    "sciq",
    "social_i_qa",
    "amazon_polarity",
    "story_cloze",
}


def script_error(name: str) -> RuntimeError:
    return RuntimeError(f"Dataset scripts are no longer supported, but found {name}.py")


@pytest.fixture
def fake_datasets(monkeypatch):
    """Route hub loads to the real ``load_hub_dataset``.

    It runs over a scripted ``datasets.load_dataset``.
    """
    monkeypatch.setattr(hub_module, "load_hub_dataset", REAL_LOAD_HUB_DATASET)
    calls: list[dict] = []

    def install(respond):
        def fake(path, name=None, **kwargs):
            calls.append({"path": path, "name": name, **kwargs})
            return respond(path, name, **kwargs)

        monkeypatch.setattr(datasets, "load_dataset", fake)
        return calls

    return install


def piqa_rows(split: str, n: int = 40) -> list[dict]:
    return [
        {"goal": f"{split} goal {i}", "sol1": f"a{i}", "sol2": f"b{i}", "label": i % 2}
        for i in range(n)
    ]


# --- the table ------------------------------------------------------------------------------


def test_every_registry_entry_has_one_resolved_source():
    assert list(HUB_SOURCES) == list(REGISTRY)  # one table, same 29 names, same order
    assert len(HUB_SOURCES) == 29


@pytest.mark.parametrize("name", list(REGISTRY))
def test_resolution_entry_is_complete_and_loadable_without_a_script(name):
    source, spec = HUB_SOURCES[name], get_spec(name)
    assert "/" in source.repo and source.repo not in LEGACY_BARE
    assert source.splits and set(spec.hub_splits) <= set(source.splits)
    assert len(source.why) > 20  # every decision carries its evidence
    if source.repo in KNOWN_SCRIPT_ONLY:
        assert source.revision == PARQUET_REVISION and source.config == "default"
    if source.revision not in (None, PARQUET_REVISION):
        assert len(source.revision) == 40 and int(source.revision, 16) >= 0  # a pinned commit
    assert spec.hub_id == source.repo


def test_known_moves_and_swaps():
    assert HUB_SOURCES["social_i_qa"].repo == "lighteval/siqa"  # lm-eval #3943, content-verified
    assert "3943" in HUB_SOURCES["social_i_qa"].why
    piqa = HUB_SOURCES["piqa"]
    assert (piqa.repo, piqa.revision, piqa.config) == ("ybisk/piqa", PARQUET_REVISION, "default")
    assert "1624" in piqa.why
    ethics = HUB_SOURCES["ethics-justice"]
    assert (ethics.config, ethics.export_dir) == ("default", "justice")
    assert get_spec("ethics-justice").hub_config == "justice"  # as users know it
    assert HUB_SOURCES["wic"].repo == HUB_SOURCES["multirc"].repo == "aps/super_glue"


# --- the fallback ---------------------------------------------------------------------------


def test_script_only_main_retries_the_parquet_branch_with_the_config_mapped(fake_datasets):
    def respond(path, name, revision=None, **kwargs):
        if revision != PARQUET_REVISION:
            raise script_error("piqa")
        return Dataset.from_list(piqa_rows(kwargs["split"]))

    calls = fake_datasets(respond)
    loaded = load_with_fallback(HubSource("ybisk/piqa", "plain_text", ("train",)), "train", "piqa")
    assert [(c["path"], c["name"], c.get("revision")) for c in calls] == [
        ("ybisk/piqa", "plain_text", None),
        ("ybisk/piqa", "default", PARQUET_REVISION),
    ]
    assert calls[1]["data_files"] == {"train": "plain_text/train/*.parquet"}
    assert len(loaded.data) == 40 and loaded.source.revision == PARQUET_REVISION
    assert "holds only a loading script" in loaded.notice and PARQUET_REVISION in loaded.notice


def test_fallback_without_a_config_lets_datasets_infer_the_splits(fake_datasets):
    calls = fake_datasets(
        lambda path, name, revision=None, **kw: (
            Dataset.from_list(piqa_rows("train"))
            if revision == PARQUET_REVISION
            else (_ for _ in ()).throw(script_error("x"))
        )
    )
    load_with_fallback(HubSource("org/x", None, ("train",)), "train", "x")
    assert (calls[1]["name"], calls[1]["revision"], calls[1].get("data_files")) == (
        "default",
        PARQUET_REVISION,
        None,
    )


def test_registry_load_reports_the_fallback_in_the_split_report(fake_datasets, monkeypatch):
    # cola resolves to a parquet main; make main script-only to see the generic path end to end.
    def respond(path, name, revision=None, split=None, data_files=None):
        if revision != PARQUET_REVISION:
            raise script_error("glue")
        assert data_files == {split: f"cola/{split}/*.parquet"}
        return Dataset.from_list(
            [{"sentence": f"{split} s{i}", "label": i % 2, "idx": i} for i in range(40)]
        )

    calls = fake_datasets(respond)
    split_set = load_splits("cola", sizes=SplitSizes(n_train=10, n_val=4, n_test=10))
    # main is tried once; the split after the first goes straight to the branch that worked
    assert [c.get("revision") for c in calls] == [None, PARQUET_REVISION, PARQUET_REVISION]
    assert any(
        "nyu-mll/glue@main holds only a loading script" in note
        for note in split_set.report["notes"]
    )
    assert len(split_set.splits["test"]) == 10


def test_only_the_script_error_triggers_a_retry(fake_datasets):
    def respond(path, name, **kwargs):
        raise DatasetNotFoundError(
            f"Dataset '{path}' doesn't exist on the Hub or cannot be accessed."
        )

    calls = fake_datasets(respond)
    with pytest.raises(UsageError) as error:
        load_with_fallback(HubSource("nobody/nothing", None, ("train",)), "train", "mine")
    assert len(calls) == 1
    assert str(error.value) == (
        "dataset mine: hub repo nobody/nothing @main was not found on the hub "
        "(or is gated); pass --data-dir with a local mirror, or give the rows "
        "as a file or folder"
    )


def test_script_only_repo_without_a_parquet_branch(fake_datasets):
    def respond(path, name, revision=None, **kwargs):
        if revision == PARQUET_REVISION:
            raise DatasetNotFoundError(
                f"Revision '{revision}' doesn't exist for dataset '{path}' on the Hub."
            )
        raise script_error("old")

    fake_datasets(respond)
    with pytest.raises(
        UsageError,
        match=r"^dataset old: hub repo org/old .*holds only a loading script "
        r"and has no parquet branch; pass --data-dir",
    ):
        load_with_fallback(HubSource("org/old", None, ("train",)), "train", "old")


def test_config_not_in_the_repo(fake_datasets):
    fake_datasets(
        lambda path, name, **kw: (_ for _ in ()).throw(
            ValueError(f"BuilderConfig '{name}' not found. Available: ['cola', 'sst2']")
        )
    )
    with pytest.raises(
        UsageError,
        match=r"hub repo nyu-mll/glue \(nope\) @main has no config 'nope' "
        r"\(\['cola', 'sst2'\]\); pick one of those configs",
    ):
        load_with_fallback(
            HubSource("nyu-mll/glue", "nope", ("train",)), "train", "hub:nyu-mll/glue:nope"
        )


def test_config_folder_missing_on_the_parquet_branch(fake_datasets):
    def respond(path, name, revision=None, **kwargs):
        if revision != PARQUET_REVISION:
            raise script_error("x")
        raise datasets.exceptions.DataFilesNotFoundError(
            f"No (supported) data files found in {path}"
        )

    fake_datasets(respond)
    with pytest.raises(
        UsageError, match=r"has no folder 'nope' on its parquet branch; check the config name"
    ):
        load_with_fallback(HubSource("org/x", "nope", ("train",)), "train", "x")


# --- local parquet exports --------------------------------------------------------------------


def write_export(root, folder: str, config: str, splits: dict[str, list[dict]]):
    for split, rows in splits.items():
        path = root / folder / config / split
        path.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path / "0000.parquet")


def write_jsonl_mirror(root, folder: str, splits: dict[str, list[dict]]):
    (root / folder).mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (root / folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_local_parquet_export_loads_like_the_jsonl_mirror(tmp_path):
    rows = {"train": piqa_rows("train", 200), "validation": piqa_rows("validation", 80)}
    write_export(tmp_path / "export", "piqa", "plain_text", rows)
    write_jsonl_mirror(tmp_path / "jsonl", "piqa", rows)
    sizes = SplitSizes(n_train=60, n_val=10, n_test=30)
    from_export = load_splits("piqa", data_dir=tmp_path / "export", sizes=sizes)
    from_jsonl = load_splits("piqa", data_dir=tmp_path / "jsonl", sizes=sizes)
    assert from_export.fingerprint == from_jsonl.fingerprint
    assert from_export.splits["test"].texts == from_jsonl.splits["test"].texts
    assert from_export.report["pools"]["train"]["rows_loaded"] == 200


def test_local_export_uses_the_same_call_as_the_hub_parquet_branch(
    tmp_path, fake_datasets, monkeypatch
):
    splits = {
        split: [{"sentence": f"{split} {i}", "label": i % 2, "idx": i} for i in range(40)]
        for split in ("train", "validation")
    }
    write_export(tmp_path, "cola", "cola", splits)
    real = datasets.load_dataset
    local_calls = []

    def spy(path, name=None, **kwargs):
        local_calls.append({"name": name, **kwargs})
        return real(path, name, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    load_splits("cola", data_dir=tmp_path, sizes=SplitSizes(n_train=10, n_val=4, n_test=10))
    hub_calls = fake_datasets(
        lambda path, name, revision=None, split=None, **kw: (
            Dataset.from_list(splits[split])
            if revision == PARQUET_REVISION
            else (_ for _ in ()).throw(script_error("glue"))
        )
    )
    load_splits("cola", sizes=SplitSizes(n_train=10, n_val=4, n_test=10))
    assert [(c["name"], c["data_files"], c["split"]) for c in local_calls] == [
        (c["name"], c["data_files"], c["split"]) for c in hub_calls if c.get("revision")
    ]


def test_hub_is_never_used_with_a_data_dir(tmp_path):
    # The no_hub fixture (pytestmark) fails the test on any hub access: only the error may happen.
    (tmp_path / "mirror").mkdir()
    with pytest.raises(UsageError, match="has no folder piqa/"):
        load_splits("piqa", data_dir=tmp_path / "mirror")


def test_export_with_several_configs_picks_the_registry_config(tmp_path):
    rows = [{"sentence": f"s{i}", "label": i % 2, "idx": i} for i in range(60)]
    other = [{"sentence": f"other {i}", "label": i % 2, "idx": i} for i in range(60)]
    write_export(tmp_path, "cola", "cola", {"train": rows, "validation": rows[:30]})
    write_export(tmp_path, "cola", "sst2", {"train": other, "validation": other[:30]})
    split_set = load_splits(
        "cola", data_dir=tmp_path, sizes=SplitSizes(n_train=10, n_val=4, n_test=10)
    )
    assert all(not t.startswith("other") for s in split_set.splits.values() for t in s.texts)


def test_hub_source_datasetdict_for_user_hub_sources(fake_datasets):
    calls = fake_datasets(
        lambda path, name, **kw: DatasetDict({"train": Dataset.from_list(piqa_rows("train"))})
    )
    loaded = load_with_fallback(HubSource("org/y", "c", ()), None, "hub:org/y:c")
    assert calls[0]["split"] is None and list(loaded.data) == ["train"]
