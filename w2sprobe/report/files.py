"""A report's folder on disk: ``report.json`` (written last: the report is complete iff it
exists), ``report.md`` / ``report.html`` and ``figures/*``.

``<cache>/reports/<key>/`` (or ``report --out DIR``).  Every file is written atomically; a
report written over a finished one first removes ``report.json``, so a kill leaves a report
that ``cache ls`` calls unfinished, never a torn document or figure in one that looks
complete.  ``report.json``'s ``integrity`` records the byte count and SHA-256 of every other
file of the report, which ``cache verify`` checks (reports written before it existed: every
listed file must exist).

This module is the one reader of the format (``report``, ``cache ls`` and ``cache verify``);
:mod:`w2sprobe.report.render` writes through it.  It imports nothing heavy.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import file_record, record_problem, write_json
from ..errors import first_line
from ..jsonutil import finite
from ..workspace import kind_root

REPORT_JSON = "report.json"
DOCUMENTS = ("md", "html")


def report_folders(cache_dir: Path) -> list[Path]:
    """Every report folder under ``<cache>/reports`` (dot-named folders are not reports)."""
    root = kind_root(cache_dir, "reports")
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_summary(folder: Path) -> dict | None:
    """``report.json`` of a finished report, or None (unfinished, or not a JSON object)."""
    try:
        summary = json.loads((Path(folder) / REPORT_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def begin(folder: Path, key: str) -> dict[str, Path]:
    """Start (re)writing the report ``key`` in ``folder``: returns the documents a previous
    report of the same inputs left there (``{"md": path}`` ...), then removes ``report.json``
    so the folder is unfinished until :func:`finish`."""
    previous = read_summary(folder) or {}
    documents: dict[str, Path] = {}
    if previous.get("key") == key and isinstance(previous.get("files"), dict):
        for fmt in DOCUMENTS:
            path = previous["files"].get(fmt)
            if isinstance(path, str) and Path(path).is_file():
                documents[fmt] = Path(path)
    (Path(folder) / REPORT_JSON).unlink(missing_ok=True)
    return documents


def finish(folder: Path, summary: dict, files: list[Path]) -> dict:
    """Record every file of the report (``integrity``) and write ``report.json`` last."""
    folder = Path(folder)
    summary["integrity"] = {
        _relative(path, folder): file_record(path)
        for path in sorted(set(map(Path, files)))
        if path.name != REPORT_JSON or path.parent != folder
    }
    write_json(folder / REPORT_JSON, finite(summary), indent=1, default=str, allow_nan=False)
    return summary


def verify_report(folder: Path) -> list[str]:
    """Problems of one report folder (empty: intact): ``cache verify``'s check."""
    folder = Path(folder)
    path = folder / REPORT_JSON
    if not path.is_file():
        return [f"unfinished: no {REPORT_JSON} (run the report again, or w2sprobe cache gc)"]
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{REPORT_JSON} is unreadable ({first_line(exc)})"]
    if not isinstance(summary, dict):
        return [f"{REPORT_JSON} is not a JSON object"]
    integrity = summary.get("integrity")
    if isinstance(integrity, dict):
        problems = [
            problem
            for name, record in sorted(integrity.items())
            if (problem := _file_problem(folder, name, record))
        ]
        return problems
    listed = summary.get("all_files") if isinstance(summary.get("all_files"), list) else []
    return [f"{Path(p).name} is missing" for p in listed if not Path(p).is_file()]


def _file_problem(folder: Path, name: str, record: dict) -> str | None:
    path = folder / name
    if not path.is_file():
        return f"{name} is missing"
    problem = record_problem(path, record)
    return problem.replace(path.name, name, 1) if problem else None


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return str(path)
