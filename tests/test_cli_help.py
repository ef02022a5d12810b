"""The command line's help comes from the option fields: conventional, per command, instant."""

from __future__ import annotations

import json

import pytest
from conftest import modules_imported_by, run_cli

from w2sprobe.options import SPECS


def help_of(capsys, *command: str) -> str:
    code, out, err = run_cli(capsys, *command, "--help")
    assert code == 0, err
    return out


def test_help_uses_conventional_metavars_and_one_default_format(capsys):
    text = help_of(capsys, "probe")
    assert "--k INTEGER" in text and "--l2 FLOAT" in text and "--labels TEXT" in text
    assert "--probe [knn|logreg|topo|massmean|mlp|random|oracle|module:Class]" in text
    assert "--standardize / --no-standardize" in text
    assert "<int>" not in text and "<bool>" not in text and "<float>" not in text
    assert "against the fit labels. [default: 50]" in " ".join(text.split())
    assert "--k INTEGER|auto" in text and "--l2 FLOAT|auto" in text


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
    assert code == 2 and err.startswith("error: unknown probe 'lgreg'; known: knn, logreg, topo")
    code, _, err = run_cli(capsys, "train", "student", "--loss", "hinge")
    assert code == 2 and "option --loss: 'hinge' is not one of" in err
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow  # a subprocess: a fresh interpreter, so imports are measured, not inherited
def test_instant_commands_import_no_heavy_library(tmp_path):
    commands = [["--help"], ["extract", "--help"], ["probe", "--help"], ["run", "--help"],
                ["data", "list"], ["cache", "ls"], ["config", "show"]]  # fmt: skip
    heavy = ("torch", "transformers", "nnsight", "datasets")
    assert modules_imported_by(commands, heavy, tmp_path) == []


# --------------------------------------------------------------------------- issue 27: help


def sections(text: str) -> list[str]:
    """The section titles of a help text, in order (``Data:`` -> ``Data``)."""
    return [
        line[:-1] for line in text.splitlines() if line and line[0].isupper() and line[-1] == ":"
    ]


def test_options_are_listed_in_their_groups(capsys):
    probe = sections(help_of(capsys, "probe"))
    assert probe == [
        "Options",  # --pgr
        "Workspace",
        "Data",
        "Models",
        "Extraction",
        "Probes",
        "Training of the weak model and ceiling (when --labels weak, or probe --pgr, must be "
        "built)",
        "General",
    ]
    run = sections(help_of(capsys, "run"))
    assert run == [
        "Workspace",
        "Data",
        "Models",
        "Extraction",
        "Probes",
        "Training",
        "Study plan",
        "General",
    ]
    text = help_of(capsys, "run")
    block = text.split("\nStudy plan:\n", 1)[1].split("\n\n", 1)[0]
    assert "--experiments" in block and "--shard" in block and "--epochs" not in block
    general = text.split("\nGeneral:\n", 1)[1]
    assert "--config FILE" in general and "--json" in general and "-h, --help" in general
    extract = help_of(capsys, "extract")
    assert sections(extract)[:2] == ["Options", "Workspace"]  # its own options first
    assert "--model MODEL" in extract.split("\nModels:\n", 1)[1].split("\n\n", 1)[0]


def test_help_texts_say_what_each_command_does_with_an_option(capsys):
    flat = lambda text: " ".join(text.split())  # noqa: E731 - help wraps at 80 columns
    extract = flat(help_of(capsys, "extract"))
    assert "instead of --layers" in extract  # extract's --layer is the one layer to cache
    assert "(L+1)//2" not in extract and "probe layer" not in extract
    probe = help_of(capsys, "probe")
    weak_training = probe.split("\nTraining of the weak model", 1)[1].split("\n\n", 1)[0]
    assert "--epochs" in weak_training and "--weak-lr" in weak_training
    sweep = flat(help_of(capsys, "sweep"))
    assert "the k option" not in sweep and "the l2 option" not in sweep
    assert "[default: one point, k of the config file or preset, else 50]" in sweep
    report = flat(help_of(capsys, "report"))
    assert "--seed INTEGER Seed of the bootstrap resamples. [default: 0]" in report
    assert "Seed of the splits" not in report
    for command in ("filter", "relabel"):
        assert "[default: <probe>-<kind>@<parent>, e.g. knn-relabel@weak]" in flat(
            help_of(capsys, command)
        )


def test_arguments_show_metavars_not_python_types_and_choices_where_there_are_some(capsys):
    texts = {
        command: help_of(capsys, *command.split())
        for command in (
            "cache rm",
            "cache verify",
            "cache ls",
            "data show",
            "train",
            "models layers",
        )
    }
    for command, text in texts.items():
        assert "<str>" not in text and "<list[str]>" not in text and "[[" not in text, command
        assert "{KEY" not in text and "{STAGE" not in text, command
    assert "Usage: w2sprobe cache rm [OPTIONS] KEY...\n" in texts["cache rm"]
    assert "--kind [acts|tokens|runs|labels|probes|sweeps|reports]" in texts["cache rm"]
    assert "Usage: w2sprobe cache verify [OPTIONS] [PATH]...\n" in texts["cache verify"]
    assert "Usage: w2sprobe data show [OPTIONS] [NAME]\n" in texts["data show"]
    assert "Usage: w2sprobe train [OPTIONS] {weak|ceiling|student|s2s}\n" in texts["train"]


def test_command_summaries_are_whole_sentences(capsys):
    import typer

    from w2sprobe.cli.app import app
    from w2sprobe.cli.help import summary

    text = " ".join(help_of(capsys).split("\nCommands:\n", 1)[1].split())
    assert "..." not in text
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        first = summary(command)
        assert first.endswith(".") and " ".join(first.split()) in text, name
    assert "the --loss student of the weak labels, then --s2s-iters strong-to-strong" in text


def test_config_show_has_the_doc_column_and_takes_any_option(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text('weak = "smollm2"\n')
    code, out, err = run_cli(capsys, "config", "show", "--k", "10", "--preset", "blog")
    assert code == 0, err
    header = out.splitlines()[1].split()
    assert header == ["group", "key", "value", "source", "doc"]
    k = next(line for line in out.splitlines() if line.split()[:2] == ["probe", "k"])
    assert k.split()[2:4] == ["10", "command"] and k.endswith("against the fit labels.")
    weak = next(line for line in out.splitlines() if line.split()[1:2] == ["weak"])
    assert "(weak_model)" in weak and '"smollm2"' in weak and str(tmp_path) in weak
    code, out, _ = run_cli(capsys, "config", "show", "--json", "--strong", "x")
    shown = json.loads(out)["options"]
    assert shown["strong_model"]["key"] == "strong" and shown["strong_model"]["value"] == "x"
    assert shown["n_train"] == {**shown["n_train"], "value": 1200, "source": "default"}
    assert shown["pooling"]["aliases"] == ["pooling"] and shown["pooling"]["doc"]
    help_text = help_of(capsys, "config", "show")
    assert "--k INTEGER" in help_text and "--epochs INTEGER" in help_text


def test_shell_completion_is_available(capsys, monkeypatch):
    text = help_of(capsys)
    assert "--install-completion" in text and "--show-completion" in text
    monkeypatch.setenv("_W2SPROBE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "w2sprobe train s")
    monkeypatch.setenv("COMP_CWORD", "2")
    code, out, _ = run_cli(capsys)
    assert code == 0 and out.split() == ["student", "s2s"]
    monkeypatch.setenv("COMP_WORDS", "w2sprobe probe --probe l")
    monkeypatch.setenv("COMP_CWORD", "3")
    code, out, _ = run_cli(capsys)
    assert out.split() == ["logreg"]


def test_a_table_on_a_narrow_terminal_wraps_its_cells_whole(monkeypatch):
    """show_table folds a cell that does not fit rather than ending it in "…"."""
    import io

    from rich.console import Console
    from rich.table import Table

    from w2sprobe.cli import common

    screen = io.StringIO()
    monkeypatch.setattr(common, "stdout", Console(file=screen, width=40))
    table = Table("experiment", "test AUC", "PGR", "weak AUC", "run")
    table.add_row("logconf", "0.8868", "+0.445", "0.8526", "49b25134fd700cce")
    common.show_table(table)
    cells = [line.split("│")[1:-1] for line in screen.getvalue().splitlines() if "│" in line]
    columns = ["".join(cell.strip() for cell in column) for column in zip(*cells)]
    assert columns == ["logconf", "0.8868", "+0.445", "0.8526", "49b25134fd700cce"]
