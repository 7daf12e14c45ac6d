"""The report of a run: report.html, its figures, the distillation table."""
