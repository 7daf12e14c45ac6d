"""Run-level parts of continual learning (`procedure: {name: continual}`).

The run calls `continual_setup` right after reading its data (so a bad replay or
old-validation file fails before any weights load): it mixes the replay rows into the
training split (training.procedures.continual.with_replay) and reads the earlier task's
held-out file. `ForgettingCheck` scores that file with the task's scorer on the starting
model and again on the trained one; results.json gets `forgetting: {before, after, drop}`.
Scoring lives here, not in training, which never imports evaluation.
"""

from __future__ import annotations

from numbers import Number

from tunelab.training.procedures.continual import read_earlier, with_replay


def _scalars(scores: dict) -> dict:
    return {
        k: float(v) for k, v in scores.items() if isinstance(v, Number) and not isinstance(v, bool)
    }


class ForgettingCheck:
    """The earlier task's held-out split, scored before and after training."""

    def __init__(self, cfg, task, labels, split, file: str):
        self.cfg, self.task, self.labels, self.split, self.file = cfg, task, labels, split, file
        self.before: dict | None = None
        self.feats = None

    def _score(self, model, score, pad_id) -> dict:
        was_training = model.training
        out = score(
            model, self.feats, self.labels, self.cfg.eval.batch_size, pad_id, split=self.split
        )
        model.train(was_training)
        return _scalars(out)

    def start(self, model, tokenizer, max_length, score) -> dict:
        """Score the starting model (call before training)."""
        self.feats = self.task.featurize(self.split, tokenizer, max_length)
        self.pad_id = tokenizer.pad_token_id
        self.score = score
        self.before = self._score(model, score, self.pad_id)
        return self.before

    def finish(self, model) -> dict:
        """Score the trained model; print and return {file, rows, before, after, drop}."""
        after = self._score(model, self.score, self.pad_id)
        drop = {k: round(self.before[k] - after[k], 6) for k in self.before if k in after}
        shown = [k for k in ("accuracy", "f1_macro", "f1", "loss") if k in drop] or list(drop)[:3]
        print(
            f"forgetting on {self.file} ({len(self.split)} rows): "
            + ", ".join(
                f"{k} {self.before[k]:.4f} -> {after[k]:.4f} (drop {drop[k]:+.4f})" for k in shown
            )
        )
        return {
            "file": self.file,
            "rows": len(self.split),
            "before": self.before,
            "after": after,
            "drop": drop,
        }


def continual_setup(cfg, task, data):
    """(data with replay rows in train, ForgettingCheck or None); a no-op unless the
    procedure is continual."""
    p = cfg.procedure
    if p.name != "continual":
        return data, None
    data = with_replay(cfg, task, data)
    check = None
    if p.old_validation:
        split = read_earlier(task, cfg, data.labels, p.old_validation, "old_validation")
        check = ForgettingCheck(cfg, task, data.labels, split, str(p.old_validation))
    return data, check
