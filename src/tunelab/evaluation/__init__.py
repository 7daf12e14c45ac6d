"""Evaluation: classification metrics, baselines, plots and the HTML run report.

Import-light on purpose: numpy only at import time; scikit-learn, torch and matplotlib
load inside the functions that need them, so `import tunelab.evaluation` stays fast.
"""

from tunelab.evaluation.baselines.text import (
    frozen_embeddings,
    linear_probe_baseline,
    majority_baseline,
    tfidf_logreg_baseline,
)
from tunelab.evaluation.run_report.page import format_results_table, write_report
from tunelab.evaluation.run_report.plots import plot_confusion_matrix, plot_training_curves
from tunelab.metrics.classification import classification_metrics, primary_metric_mode

__all__ = [
    "classification_metrics",
    "format_results_table",
    "frozen_embeddings",
    "linear_probe_baseline",
    "majority_baseline",
    "plot_confusion_matrix",
    "plot_training_curves",
    "primary_metric_mode",
    "tfidf_logreg_baseline",
    "write_report",
]
