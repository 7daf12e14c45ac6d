"""Evaluation: classification metrics, baselines, plots and the HTML run report.

Import-light on purpose: numpy only at import time; scikit-learn, torch and matplotlib
load inside the functions that need them, so `import tunelab.evaluation` stays fast.
"""

from tunelab.evaluation.baselines import (
    frozen_embeddings,
    linear_probe_baseline,
    majority_baseline,
    tfidf_logreg_baseline,
)
from tunelab.evaluation.metrics import classification_metrics, primary_metric_mode
from tunelab.evaluation.plots import plot_confusion_matrix, plot_training_curves
from tunelab.evaluation.report import format_results_table, write_report

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
