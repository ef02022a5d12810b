"""Reports across datasets: tables, statistics and figures from result files only.

``build_report`` reads ``<cache>/runs/<dataset>/<key>/`` (plus sweeps and filtered label sets,
when present) and computes the numbers; ``write_report`` draws the figures and writes
``report.json`` and ``report.html`` or ``report.md``::

    from w2sprobe.report import build_report, write_report
    report = build_report("cache", baseline="xent", n_boot=1000, seed=0)
    summary = write_report(report, fmt="html")   # -> <cache>/reports/<key>/report.html
"""

from importlib import import_module

#: Public name -> the submodule defining it.  Imported on first use (PEP 562): the file-format
#: modules (``report.sweep_files``, ``report.files``) must stay light for ``cache ls``, and
#: importing a submodule imports this package first.
_EXPORTS = {
    "DEFAULT_BASELINE": "build",
    "DEFAULT_MIN_GAP": "build",
    "DEFAULT_N_BOOT": "build",
    "DEFAULT_SATURATION": "build",
    "Report": "build",
    "build_report": "build",
    "Collection": "collect",
    "RunResult": "collect",
    "collect_results": "collect",
    "FORMATS": "render",
    "default_out_dir": "render",
    "write_report": "render",
    "mean_se": "stats",
    "paired_comparison": "stats",
    "percentile_ci": "stats",
    "resample_counts": "stats",
    "weighted_auc": "stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
