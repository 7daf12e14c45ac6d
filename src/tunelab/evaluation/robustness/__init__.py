"""Robustness of a classifier to small, label-preserving edits of its input."""
