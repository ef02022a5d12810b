"""Reports across datasets: tables, statistics and figures from result files only.

``build_report`` reads ``<cache>/runs/<dataset>/<key>/`` (plus sweeps and filtered label sets,
when present) and computes the numbers.
"""

from .build import DEFAULT_BASELINE, DEFAULT_N_BOOT, DEFAULT_SATURATION, Report, build_report
from .collect import Collection, RunResult, collect_results
from .stats import mean_se, paired_comparison, percentile_ci, resample_counts, weighted_auc

__all__ = [
    "DEFAULT_BASELINE", "DEFAULT_N_BOOT", "DEFAULT_SATURATION", "Collection", "Report", "RunResult",
    "build_report", "collect_results", "mean_se", "paired_comparison", "percentile_ci",
    "resample_counts", "weighted_auc",
]
