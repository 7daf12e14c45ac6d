"""`tunelab eval`: per-row outputs of each model on one file, statistics, report.json + report.html."""
