"""Reports across datasets: tables, statistics and figures from result files only."""
