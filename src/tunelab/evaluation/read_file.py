"""A labelled file read the way a trained model was trained: the columns of its tunelab.json,
its task's reader. Shared by `tunelab eval`, the robustness check and plain file scoring."""

from __future__ import annotations

from tunelab.config.schema import DataConfig
from tunelab.data import read_table, require_columns
from tunelab.tasks import get_task


def read_eval_split(trained, path, *, text=None, text_pair=None, label=None, rows=None):
    """A labelled file read the way `trained` was trained (columns from its tunelab.json unless
    given; the first `rows` rows when set), as its task's split."""
    cols = trained.meta.columns
    df = read_table(path)
    cfg = DataConfig(
        train=str(path),
        text=text or cols.get("text", "text"),
        text_pair=text_pair if text_pair is not None else cols.get("text_pair"),
        label=label or cols.get("label", "label"),
        target=cols.get("target", "target"),  # seq2seq
        references=cols.get("references") if cols.get("references") in df.columns else None,
        prefix=cols.get("prefix"),
        packing=trained.meta.packing,  # causal-lm: rows as the model trained on
    )
    needed = [cfg.text, cfg.text_pair] + ([cfg.label] if trained.labels is not None else [])
    task = get_task(trained.task)
    if task.head_kind != "causal":  # a causal LM tells chat/instruction/text rows by their keys
        require_columns(df, str(path), [c for c in needed if c])
    if rows is not None:
        attrs = df.attrs
        df = df.head(rows)
        df.attrs.update(attrs)
    return task.read_split("eval", df, cfg, trained.labels)
