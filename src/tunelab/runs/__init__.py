"""Runs: one module per kind of run (train, multitask, continual, kfold, search, preview).

They sit above training, evaluation and serving and wire them together; `api.py` and the
CLI call them.
"""
