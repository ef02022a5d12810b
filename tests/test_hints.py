"""Probe commands stay cheap, and every hint, run as printed, makes the artifact asked for.

The workspace is the cheapest real one: tiny random BERT (weak) and MPNet (strong) models, heads
instead of LoRA finetunes (``--weak-kind head --student head``), a few hundred SST-2 rows.
"""

from __future__ import annotations

import json
import shlex

import pytest
from conftest import run_cli

from w2sprobe.hints import COMMAND_FIELDS, command_line
from w2sprobe.metrics import pgr
from w2sprobe.options import SPECS, defaults
from w2sprobe.runs import find_runs

SIZES = ["--n-train", "200", "--n-val", "50", "--n-test", "100"]


@pytest.fixture
def flags(tmp_path, monkeypatch, shared_data, tiny_models):
    """Non-default models, sizes, seed, recipe and cache folder, all on the command line."""
    monkeypatch.chdir(tmp_path)
    return [
        "--data-dir",
        str(shared_data),
        "--cache-dir",
        "c",
        "--weak",
        str(tiny_models["bert"]),
        "--strong",
        str(tiny_models["mpnet"]),
        "--weak-kind",
        "head",
        "--student",
        "head",
        "--head-lr",
        "0.01",
        "--seed",
        "3",
        *SIZES,
    ]


def _runs(stage: str):
    return list(find_runs("c", "sst2", stage=stage))


def _follow(capsys, hint: str) -> None:
    words = shlex.split(hint)
    assert words[0] == "w2sprobe"
    code, _, err = run_cli(capsys, *words[1:])
    assert code == 0, err


def test_probe_builds_no_ceiling_unless_asked_and_says_what_pgr_needs(capsys, flags):
    code, out, err = run_cli(capsys, "probe", "--probe", "logreg", "--json", *flags)
    assert code == 0, err
    summary = json.loads(out)
    assert len(_runs("weak")) == 1 and _runs("ceiling") == []
    assert summary["pgr"] is None
    needs = summary["pgr_needs"]
    assert "the ceiling, which is not built" in needs and "--pgr" in needs
    hint = needs.split("build it with: ", 1)[1].split(" (or add --pgr", 1)[0]
    assert hint.startswith("w2sprobe train ceiling ") and "--head-lr 0.01" in hint
    _follow(capsys, hint)  # the printed command makes the ceiling the probe measures against
    assert len(_runs("ceiling")) == 1
    code, out, err = run_cli(capsys, "probe", "--probe", "logreg", "--json", "--no-build", *flags)
    assert code == 0, err
    again = json.loads(out)
    (weak,), (ceiling,) = _runs("weak"), _runs("ceiling")
    assert again["pgr"] == pytest.approx(pgr(again["auc"], weak.auc, ceiling.auc))
    assert again["pgr_needs"] is None and again["key"] == summary["key"]


def test_pgr_flag_builds_the_ceiling(capsys, flags):
    code, out, err = run_cli(capsys, "probe", "--probe", "knn", "--k", "5", "--pgr", *flags)
    assert code == 0, err
    (weak,), (ceiling,) = _runs("weak"), _runs("ceiling")
    assert "building ceiling" in err and "pgr" in out and "PGR:" not in out
    (run,) = _runs("probe")
    assert run.metrics["pgr"] == pytest.approx(pgr(run.auc, weak.auc, ceiling.auc))


def test_filter_relabel_and_sweep_build_no_ceiling(capsys, flags):
    for command in (["filter"], ["relabel"], ["sweep", "--k", "3,5"]):
        code, _, err = run_cli(capsys, *command, "--probe", "knn", *flags)
        assert code == 0, err
    assert _runs("ceiling") == [] and len(_runs("weak")) == 1


def test_no_build_hints_run_as_printed_make_what_was_asked_for(capsys, flags):
    """From an empty cache, follow each --no-build refusal's command until the probe runs."""
    followed = []
    for _ in range(6):
        code, out, err = run_cli(
            capsys, "relabel", "--probe", "knn", "--k", "5", "--no-build", *flags
        )
        if code == 0:
            break
        assert code == 2 and "make it with: " in err, err
        hint = err.split("make it with: ", 1)[1].strip()
        assert hint not in followed  # each command made what was missing
        followed.append(hint)
        _follow(capsys, hint)
    assert code == 0, err
    assert [shlex.split(h)[1] for h in followed] == ["extract", "train", "extract"]
    weak_model = flags[flags.index("--weak") + 1]
    own = {"extract": ("--strong",), "train": ("--weak", "--strong", "--weak-kind", "--head-lr")}
    for hint in followed:
        words = shlex.split(hint)
        for flag in ("--n-train", "--n-test", "--seed", "--cache-dir", *own[words[1]]):
            assert flag in words, (flag, hint)
    assert shlex.split(followed[0])[2:4] == ["--model", weak_model]  # the weak model's layers
    assert _runs("ceiling") == []


def test_every_hinted_option_is_accepted_by_the_command_it_names():
    import typer

    from w2sprobe.cli.app import app

    commands = typer.main.get_command(app).commands
    for name, fields in COMMAND_FIELDS.items():
        accepted = {p.name for p in commands[name].params}
        assert set(fields) <= accepted, (name, sorted(set(fields) - accepted))


def test_a_hint_spells_out_every_non_default_value():
    options = defaults(strong_lr=8e-5, lora=False, n_train=10_000, pooling=None, seed=2)
    line = command_line(options, "train", "ceiling")
    assert line == (
        "w2sprobe train ceiling --dataset sst2 --seed 2 --n-train 10000 --strong-lr 8e-05 --no-lora"
    )
    assert SPECS["pooling"].default is None  # a default None stays out of the line
