"""What stays on stderr once a stage is done, what the bar's numbers mean, and the spinner.

The live bar is transient (it is redrawn in place), so every stage a command builds ends with
one line that stays: what it did and its result.  The bar labels its two times, says when its
val AUC is measured against the run's own training labels rather than the ground truth, and a
model load (no count to show) is a spinner on a terminal.
"""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest
from rich.console import Console

from w2sprobe.cli import progress
from w2sprobe.cli.progress import GraphReporter, StageBar
from w2sprobe.graph import NodeOutcome
from w2sprobe.models.busy import busy


@pytest.fixture
def fake_clock(monkeypatch):
    now = SimpleNamespace(value=100.0)
    monkeypatch.setattr(progress.time, "monotonic", lambda: now.value)
    monkeypatch.setattr(progress.settings, "quiet", False)
    return now


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a 120-column terminal whose output the test reads."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(progress, "stderr", console)
    monkeypatch.setattr(progress.settings, "quiet", False)
    return buffer


def _outcome(stage: str, **metrics) -> NodeOutcome:
    return NodeOutcome("sst2", stage, "ran", "k" * 16, 12.0, metrics)


def test_a_single_command_keeps_one_result_line_per_stage_it_built(fake_clock, capsys):
    reporter = GraphReporter()  # a single command: no per-node log, unlike run
    reporter.building("sst2", "ceiling", "ceiling: train mpnet", False)
    for step in range(1, 11):
        fake_clock.value += 2.0
        reporter.progress(step, 10, {"loss": 0.4, "val_auc": 0.9 if step == 10 else None})
    reporter.done(_outcome("ceiling", auc=0.9312))
    reporter.done(NodeOutcome("sst2", "weak", "cached", "w" * 16))  # read: nothing to add
    lines = capsys.readouterr().err.splitlines()
    final = lines[-1]
    assert final.startswith("  sst2 ceiling: done in 0:20 (10/10 steps, 2.0 s/step)")
    assert "val AUC 0.900" in final and final.endswith("test AUC 0.9312")
    assert not any("weak" in line for line in lines)


def test_val_auc_says_when_it_is_against_the_training_labels(fake_clock, capsys):
    for stage, label in (
        ("weak", "val AUC 0.800"),
        ("knn-filter", "val AUC (vs training labels) 0.800"),
    ):
        reporter = GraphReporter()
        reporter.building("sst2", stage, stage, False)
        fake_clock.value += 1.0
        reporter.progress(1, 1, {"loss": 0.5, "val_auc": 0.8})
        reporter.done(_outcome(stage, auc=0.9))
        err = capsys.readouterr().err
        assert label in err, stage
        if stage == "weak":
            assert "training labels" not in err


def test_the_live_bar_labels_its_times_and_leaves_a_result_line(fake_clock, terminal):
    reporter = GraphReporter()
    reporter.building("sst2", "xent", "student xent", False)
    for step in range(1, 5):
        fake_clock.value += 3.0
        reporter.progress(step, 8, {"loss": 0.3, "val_auc": 0.7})
    reporter.bar._live.refresh()  # what the refresh thread would draw next
    text = terminal.getvalue()
    assert "elapsed" in text and "ETA 0:12" in text  # 4 steps left at 3 s a step
    reporter.done(_outcome("xent", auc=0.91, pgr=0.8))
    last = terminal.getvalue().rstrip().splitlines()[-1]
    assert "sst2 xent: done in 0:12 (4/8 steps, 3.0 s/step)" in last and "PGR +0.800" in last


def test_the_elapsed_and_eta_columns_say_which_is_which():
    task = SimpleNamespace(elapsed=75.0, fields={"eta": "0:30"})
    assert progress._Elapsed().render(task).plain == "1:15 elapsed"
    assert progress._Eta().render(task).plain == "ETA 0:30"
    assert progress._Eta().render(SimpleNamespace(elapsed=1.0, fields={"eta": ""})).plain == ""


def test_a_model_load_is_a_spinner_on_a_terminal_and_a_line_in_a_log(terminal, capsys):
    log = logging.getLogger("w2sprobe.models.loading")
    progress.configure(quiet=False)
    with busy(log, "loading model tiny"):
        assert progress._spinner._status is not None  # spinning while it loads
    assert progress._spinner._status is None
    assert "loading model tiny: done in" in terminal.getvalue()

    plain = io.StringIO()
    progress.stderr.file = plain  # the same console, no longer a terminal
    progress.stderr._force_terminal = False
    with busy(log, "loading model tiny"):
        assert progress._spinner._status is None
    lines = plain.getvalue().splitlines()
    assert lines[0] == "loading model tiny ..." and lines[1].startswith("loading model tiny: done")


def test_a_failed_load_stops_the_spinner_and_says_nothing_more(terminal):
    log = logging.getLogger("w2sprobe.models.loading")
    progress.configure(quiet=False)
    with pytest.raises(RuntimeError), busy(log, "loading model broken"):
        raise RuntimeError("no weights")
    assert progress._spinner._status is None and "failed" not in terminal.getvalue()


def test_a_bar_that_starts_stops_the_spinner(fake_clock, terminal):
    progress._spinner.start("loading model x ...")
    bar = StageBar("sst2 weak")
    fake_clock.value += 1.0
    bar.update(1, 4, {"loss": 0.5})
    assert progress._spinner._status is None
    bar.close()
