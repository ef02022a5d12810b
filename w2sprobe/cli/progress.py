"""Progress on stderr, whatever ``--json`` says: live bars on a terminal, plain lines in a log.

stdout belongs to the command's result (a table, or the one ``--json`` object); everything a
person watches goes to stderr:

* on a terminal, a live bar per stage being built: steps (with the latest loss and val AUC) or
  rows, elapsed time, rate and ETA, and a spinner while a model loads; when the stage is done,
  the bar gives way to one line with its result, which stays;
* when stderr is a file or a pipe (``2> run.log``, CI, ``nohup``), the same facts as plain lines,
  one every 10 % or 30 s, so a log of a long run says where it is without control characters;
* with ``--quiet``, nothing but warnings and errors.

The library reports through :class:`w2sprobe.graph.Reporter` hooks and the ``w2sprobe`` logger
(model loading, GGUF conversion, split loading); :func:`configure` routes that logger here, and
its "busy" records (:mod:`w2sprobe.models.busy`) become a spinner on a terminal.

A student's val AUC is measured against the labels it trains on (weak labels, a filtered set),
not the ground truth, and the bar says so: ``val AUC (vs training labels)``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
)
from rich.text import Text

from ..models.busy import BUSY

#: Progress, notices and warnings go to stderr; results to stdout.
stderr = Console(stderr=True)

#: Plain-line mode: a new line when progress crosses a tenth or this many seconds pass.
PLAIN_EVERY_S = 30.0


@dataclass
class OutputSettings:
    """What this process shows on stderr (one command per process)."""

    quiet: bool = False

    @property
    def live(self) -> bool:
        """Live bars only on a terminal; logs get plain lines."""
        return stderr.is_terminal


settings = OutputSettings()


class _StderrHandler(logging.Handler):
    """The ``w2sprobe`` logger's notices as plain stderr lines (no rich markup, no highlighting);
    on a terminal, a wait the library announces as busy is a spinner until it ends."""

    def emit(self, record: logging.LogRecord) -> None:
        state = getattr(record, BUSY, None)
        if state == "abort":
            _spinner.stop()  # the error that follows says what happened
            return
        if state == "start" and settings.live and record.levelno < logging.WARNING:
            _spinner.start(record.getMessage())
            return
        _spinner.stop()
        stderr.print(record.getMessage(), highlight=False, markup=False, soft_wrap=True)


class _Spinner:
    """At most one spinner on stderr (rich allows one live display at a time: a bar that starts
    stops it)."""

    def __init__(self) -> None:
        self._status: Any = None

    def start(self, message: str) -> None:
        self.stop()
        self._status = stderr.status(message, spinner="dots")
        self._status.start()

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


_spinner = _Spinner()


_handler = _StderrHandler()


def configure(quiet: bool) -> None:
    """Set up this command's output: ``--quiet`` hides progress and notices, not warnings."""
    settings.quiet = quiet
    logger = logging.getLogger("w2sprobe")
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one ``warning: ...`` line (the source line Python adds means nothing to a
    user; the message says what happened and what it affects)."""
    stderr.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)


def notice(message: str) -> None:
    """One line on stderr, unless ``--quiet``."""
    if not settings.quiet:
        stderr.print(message, highlight=False, markup=False, soft_wrap=True)


def clock(seconds: float) -> str:
    """``1:02`` / ``1:02:03``."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Elapsed(ProgressColumn):
    """``0:12 elapsed`` (ticks with every refresh)."""

    def render(self, task) -> Text:
        return Text(f"{clock(task.elapsed or 0)} elapsed", style="progress.elapsed")


class _Eta(ProgressColumn):
    """``ETA 0:30`` from the bar's own rate (model loading excluded), blank until known."""

    def render(self, task) -> Text:
        eta = task.fields.get("eta")
        return Text(f"ETA {eta}" if eta else "", style="progress.remaining")


class StageBar:
    """The progress of one piece of work: a live bar, plain lines, or nothing (``--quiet``).

    ``update(done, total, info)``: ``info`` is the trainer's dict (``loss``, ``val_auc``), or
    ``None``.  ``truth``: the val AUC it reports is against the ground truth (weak model,
    ceiling); otherwise it is against the run's own training labels, and says so.
    """

    def __init__(self, description: str, unit: str = "step", truth: bool = True):
        self.description, self.unit, self.truth = description, unit, truth
        self.started = time.monotonic()
        self._first: tuple[int, float] | None = None  # rate and ETA count from the first update
        self.scores = ""
        self._val = ""
        self._final_rate = ""
        self._live: Progress | None = None
        self._task: Any = None
        self._last_line = (-1, 0.0)  # (tenth, time) of the last plain line
        self._done = self._total = 0

    # ---------------------------------------------------------------- updates

    def update(self, done: int, total: int, info: Any = None) -> None:
        if settings.quiet:
            return
        if isinstance(info, dict):
            self._note_scores(info)
        if self._first is None:
            # Model loading and tokenizing happen before the first step; they are not its rate.
            self._first = (done, time.monotonic())
        self._done, self._total = done, total
        self._final_rate = self.rate()  # what the summary reports, untouched by what follows
        if settings.live:
            self._draw_live(done, total)
        else:
            self._maybe_print_line(done, total)

    def _note_scores(self, info: dict) -> None:
        if info.get("val_auc") is not None:
            auc = info["val_auc"]
            label = "val AUC" if self.truth else "val AUC (vs training labels)"
            self._val = f"  {label} {auc:.3f}" if auc == auc else f"  {label} n/a"  # nan: one class
        loss = f"  loss {info['loss']:.3f}" if info.get("loss") is not None else ""
        self.scores = loss + self._val

    def _per_second(self) -> float | None:
        if self._first is None:
            return None
        first_done, first_time = self._first
        seconds = time.monotonic() - first_time
        if self._done <= first_done or seconds <= 0:
            return None
        return (self._done - first_done) / seconds

    def rate(self) -> str:
        per_second = self._per_second()
        if per_second is None:
            return ""
        return (
            f"{per_second:.2f} {self.unit}/s"
            if per_second >= 1 or self.unit == "row"
            else f"{1 / per_second:.1f} s/{self.unit}"
        )

    def eta(self) -> str:
        per_second = self._per_second()
        if per_second is None or self._total <= self._done:
            return ""
        return clock((self._total - self._done) / per_second)

    def line(self) -> str:
        """The plain-text form of the current state (what a log gets)."""
        done, total = self._done, self._total
        percent = f" ({100 * done // total}%)" if total else ""
        eta = self.eta()
        return (
            f"  {self.description}: {self.unit} {done}/{total}{percent}{self.scores}"
            f"  {clock(time.monotonic() - self.started)} elapsed"
            + (f"  {self.rate()}" if self.rate() else "")
            + (f"  ETA {eta}" if eta else "")
        )

    # ---------------------------------------------------------------- output

    def _maybe_print_line(self, done: int, total: int) -> None:
        if done <= 0:
            return  # nothing to say yet (and a check that fails next stays one error line)
        tenth = 10 * done // total if total else 0
        now = time.monotonic()
        last_tenth, last_time = self._last_line
        if done >= total or tenth > last_tenth or now - last_time >= PLAIN_EVERY_S:
            self._last_line = (tenth, now)
            stderr.print(self.line(), highlight=False, markup=False, soft_wrap=True)

    def _draw_live(self, done: int, total: int) -> None:
        if self._live is None:
            _spinner.stop()
            self._live = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[scores]}", markup=False),
                _Elapsed(),
                TextColumn("{task.fields[rate]}", markup=False),
                _Eta(),
                console=stderr,
                transient=True,  # replaced by the stage's result line (GraphReporter.done)
            )
            self._live.start()
            self._task = self._live.add_task(
                self.description, total=total, scores="", rate="", eta=""
            )
        self._live.update(
            self._task,
            completed=done,
            total=total,
            scores=self.scores.strip(),
            rate=self.rate(),
            eta=self.eta(),
        )

    def summary(self) -> str:
        """What the work came to: ``in 1:12 (57/57 steps, 1.2 s/step)  val AUC 0.930`` (the
        time includes loading and predicting; the rate is the steps' own)."""
        took = clock(time.monotonic() - self.started)
        if not self._total:
            return f"in {took}"
        rate = f", {self._final_rate}" if self._final_rate else ""
        return f"in {took} ({self._done}/{self._total} {self.unit}s{rate}){self._val}"

    def close(self) -> None:
        _spinner.stop()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> "StageBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class GraphReporter:
    """Says on stderr what a command builds (prerequisites included) and how far it is.

    ``log_done``: also one line per finished node (``run``'s running log).
    """

    def __init__(self, quiet: bool = False, log_done: bool = False):
        self.quiet, self.log_done = quiet or settings.quiet, log_done
        self.min_gap: float | None = None  # the PGR rule's (--min-gap); None: as recorded
        self.bar: StageBar | None = None
        self.position = ""  # ``[2/16 cola · 3/9]`` while ``run`` works through its plan

    def stage(self, dataset: str, stage: str, place: tuple[int, int], step: tuple[int, int]):
        """``run`` is about to ask for stage ``step`` of dataset ``place`` (1-based, of totals)."""
        self.position = f"[{place[0]}/{place[1]} {dataset} · {step[0]}/{step[1]}] "

    def building(self, dataset: str, stage: str, what: str, prerequisite: bool) -> None:
        if not self.quiet:
            stderr.print(
                f"{self.position}building {what} ...", highlight=False, markup=False, soft_wrap=True
            )
        # weak and ceiling train on ground truth; every other run on a label set
        self.bar = StageBar(f"{dataset} {stage}", truth=stage in ("weak", "ceiling"))

    def progress(self, done: int, total: int, info: Any = None) -> None:
        if self.bar is None or self.quiet:
            return
        if not isinstance(info, dict):
            # Extraction reports rows (and passes its token count); training passes a dict.
            self.bar.unit, info = "row", None
        self.bar.update(done, total, info)

    def done(self, outcome) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()
        if self.quiet or outcome.status == "to run":
            return
        m = outcome.metrics
        scores = "" if m.get("auc") is None else f"  test AUC {m['auc']:.4f}"
        if m.get("pgr") is not None or m.get("pgr_constant"):
            from ..pgr_rule import show_pgr

            scores += f"  PGR {show_pgr(m, self.min_gap)}"
        if not self.log_done:
            # a single command: one line per stage it built, which stays when its bar goes
            if bar is not None and outcome.status == "ran":
                stderr.print(
                    f"  {outcome.dataset} {outcome.stage}: done {bar.summary()}{scores}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
            return
        error = f"  {m['error']}" if "error" in m else ""
        stderr.print(
            # run's default stages fit 26 (labels:logreg-relabel@weak); longer ones push
            f"{outcome.dataset:<14} {outcome.stage:<26} {outcome.status:<7} {outcome.seconds:7.1f}s"
            f"{scores}{error}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
