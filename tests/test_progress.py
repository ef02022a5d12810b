"""Progress on stderr: plain lines in logs, nothing with --quiet, and ``run --json`` not silent."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from w2sprobe.cli import progress
from w2sprobe.cli.progress import GraphReporter, StageBar, clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock_ = FakeClock()
    monkeypatch.setattr(progress.time, "monotonic", clock_)
    monkeypatch.setattr(progress.settings, "quiet", False)
    return clock_


def test_clock_formats():
    assert clock(0) == "0:00"
    assert clock(62) == "1:02"
    assert clock(3723) == "1:02:03"


def test_plain_lines_every_tenth_with_rate_and_eta(fake_clock, capsys):
    bar = StageBar("sst2 ceiling")
    fake_clock.now += 5.0  # loading the model: not part of the rate
    for step in range(1, 21):
        fake_clock.now += 2.0  # 2 s per step
        bar.update(step, 20, {"loss": 0.5, "val_auc": 0.8 if step >= 10 else None})
    lines = capsys.readouterr().err.splitlines()
    # Step 1 (tenth 0), then each tenth 1..10 once: steps 2, 4, ..., 20.
    assert len(lines) == 11
    assert lines[0].startswith("  sst2 ceiling: step 1/20 (5%)  loss 0.500")
    assert "ETA" not in lines[0]  # no rate is known from a single update
    # Step 10: 5 s of loading + 10 x 2 s elapsed; 9 steps in 18 s since step 1 -> 2 s/step,
    # 10 left -> 20 s.
    tenth = lines[5]
    assert tenth.startswith("  sst2 ceiling: step 10/20 (50%)  loss 0.500  val AUC 0.800")
    assert "0:25 elapsed" in tenth and "2.0 s/step" in tenth and "ETA 0:20" in tenth
    assert "ETA" not in lines[-1] and "(100%)" in lines[-1]


def test_plain_lines_also_every_30_seconds(fake_clock, capsys):
    bar = StageBar("x", unit="row")
    for done in range(1, 5):  # 4 updates of 1 row in 1000: same tenth, 31 s apart
        fake_clock.now += 31.0
        bar.update(done, 1000)
    assert len(capsys.readouterr().err.splitlines()) == 4


def test_nan_val_auc_is_shown_as_not_available(fake_clock, capsys):
    StageBar("x").update(1, 1, {"loss": 0.7, "val_auc": float("nan")})
    assert "val AUC n/a" in capsys.readouterr().err


def test_quiet_prints_nothing(fake_clock, capsys, monkeypatch):
    monkeypatch.setattr(progress.settings, "quiet", True)
    reporter = GraphReporter(log_done=True)
    reporter.building("sst2", "weak", "weak labels", True)
    reporter.progress(1, 2, {"loss": 0.1})
    progress.notice("loading")
    assert capsys.readouterr().err == ""


def test_reporter_counts_rows_for_extraction(fake_clock, capsys):
    reporter = GraphReporter()
    reporter.stage("cola", "extract", (2, 16), (4, 9))
    reporter.building("cola", "extract", "activations: extract mpnet", False)
    fake_clock.now += 1.0
    reporter.progress(32, 64, 4096)  # extraction passes its token count
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[2/16 cola · 4/9] building activations: extract mpnet ..."
    assert err[1].startswith("  cola extract: row 32/64 (50%)")


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    from w2sprobe.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_run_config(tmp_path_factory, tiny_models, shared_data) -> Path:
    folder = tmp_path_factory.mktemp("progress")
    config = folder / "w2sprobe.toml"
    config.write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "{folder / "c"}"\n'
        "n_train = 80\nn_val = 30\nn_test = 30\nepochs = 1\neval_every = 2\nwarmup_steps = 1\n"
    )
    return config


def test_run_json_shows_progress_on_stderr(tiny_run_config):
    code, out, err = _run_cli(
        ["run", "--config", str(tiny_run_config), "--experiments", "weak", "--json"]
    )
    assert code == 0, err
    summary = json.loads(out)  # stdout is exactly one JSON object
    assert [s["stage"] for s in summary["datasets"][0]["stages"]] == ["weak", "ceiling"]
    assert "[1/1 sst2 · 1/2] building weak labels" in err
    assert "[1/1 sst2 · 2/2] building ceiling" in err
    assert "loading model" in err
    assert "  sst2 ceiling: step 2/2 (100%)" in err
    assert "\x1b[" not in err  # not a terminal: plain lines, no control sequences

    # A rerun reads the cache: a line per stage, no bars; --quiet silences even those.
    code, out, err = _run_cli(
        ["run", "--config", str(tiny_run_config), "--experiments", "weak", "--json"]
    )
    assert code == 0 and "building" not in err and "cached" in err
    code, out, err = _run_cli(
        ["run", "--config", str(tiny_run_config), "--experiments", "weak", "--json", "--quiet"]
    )
    assert code == 0 and err == "" and json.loads(out)["failed"] == []
