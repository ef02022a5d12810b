"""The command line's help comes from the option fields: conventional, per command, instant."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_cli

from w2sprobe.options import SPECS


def help_of(capsys, *command: str) -> str:
    code, out, err = run_cli(capsys, *command, "--help")
    assert code == 0, err
    return out


def test_help_uses_conventional_metavars_and_one_default_format(capsys):
    text = help_of(capsys, "probe")
    assert "--k INTEGER" in text and "--l2 FLOAT" in text and "--labels TEXT" in text
    assert "--probe [knn|logreg|topo]" in text and "--standardize / --no-standardize" in text
    assert "<int>" not in text and "<bool>" not in text and "<float>" not in text
    assert "kNN neighbours. [default: 50]" in " ".join(text.split())


def test_each_command_lists_only_the_options_it_uses(capsys):
    ls = help_of(capsys, "cache", "ls")
    assert (
        "--cache-dir" in ls and "--seed" not in ls and "--device" not in ls and "--preset" not in ls
    )
    extract = help_of(capsys, "extract")
    assert "--preset" in extract and "--plan" in extract and "--no-build" in extract
    assert (
        "--extract-batch-size" in extract
        and "--loss" not in extract
        and "--minibatch" not in extract
    )
    train = help_of(capsys, "train")
    assert "--batch-size INTEGER" in train and "--extract-batch-size" not in train
    report = help_of(capsys, "report")
    assert "--dataset NAME" in report and "--datasets" not in report and "--k " not in report


def test_hidden_workspace_options_are_still_accepted(capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "cache",
        "ls",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["entries"] == []


def test_defaults_agree_between_help_config_show_and_the_options(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "config", "show", "--json")
    shown = json.loads(out)["options"]
    assert set(shown) == set(SPECS)
    for name, spec in SPECS.items():
        assert shown[name]["value"] == spec.default and shown[name]["source"] == "default", name
    train = " ".join(help_of(capsys, "train").split())
    assert (
        "Strong-to-strong iterations (each a student on the previous one's labels). [default: 2]"
        in train
    )


def test_an_option_is_checked_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "probe", "--probe", "lgreg")
    assert code == 2 and err == "error: option --probe: 'lgreg' is not one of knn, logreg, topo\n"
    code, _, err = run_cli(capsys, "train", "student", "--loss", "hinge")
    assert code == 2 and "option --loss: 'hinge' is not one of" in err
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow  # a subprocess: a fresh interpreter, so imports are measured, not inherited
def test_instant_commands_import_no_heavy_library(tmp_path):
    probe = (
        "import sys, io, contextlib\nfrom w2sprobe.cli.app import main\n"
        "for args in (['--help'], ['extract', '--help'], ['data', 'list'], ['cache', 'ls'], "
        "['config', 'show']):\n"
        "    try:\n"
        "        with contextlib.redirect_stdout(io.StringIO()):\n"
        "            main(args)\n"
        "    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'nnsight', 'datasets') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
