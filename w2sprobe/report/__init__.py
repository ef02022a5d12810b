"""Reports across datasets: tables, statistics and figures from result files only.

``build_report`` reads ``<cache>/runs/<dataset>/<key>/`` (plus sweeps and filtered label sets,
when present) and computes the numbers; ``write_report`` draws the figures and writes
``report.json`` and ``report.html`` or ``report.md``::

    from w2sprobe.report import build_report, write_report
    report = build_report("cache", baseline="xent", n_boot=1000, seed=0)
    summary = write_report(report, fmt="html")   # -> <cache>/reports/<key>/report.html
"""

from .build import (
    DEFAULT_BASELINE,
    DEFAULT_MIN_GAP,
    DEFAULT_N_BOOT,
    DEFAULT_SATURATION,
    Report,
    build_report,
)
from .collect import Collection, RunResult, collect_results
from .render import FORMATS, default_out_dir, write_report
from .stats import mean_se, paired_comparison, percentile_ci, resample_counts, weighted_auc

__all__ = [
    "DEFAULT_BASELINE",
    "DEFAULT_MIN_GAP",
    "DEFAULT_N_BOOT",
    "DEFAULT_SATURATION",
    "FORMATS",
    "Collection",
    "Report",
    "RunResult",
    "build_report",
    "collect_results",
    "default_out_dir",
    "mean_se",
    "paired_comparison",
    "percentile_ci",
    "resample_counts",
    "weighted_auc",
    "write_report",
]
