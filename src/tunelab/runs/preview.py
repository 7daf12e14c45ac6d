"""`tunelab data preview`: rows as the model will see them, after tokenizing."""

from __future__ import annotations

from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.models.loading import load_tokenizer
from tunelab.models.sources import resolve_model
from tunelab.tasks import all_tasks, get_task
from tunelab.tasks.causal_lm_data import encode_row, preview


def preview_rows(cfg: RunConfig, split: str = "train", n: int = 5) -> list[dict]:
    """The first `n` rows of `split`: text, label, token pieces, and whether they were cut."""
    task = get_task(cfg.task)
    if task.head_kind not in ("sequence", "causal"):
        shown = [t.name for t in all_tasks() if t.head_kind in ("sequence", "causal")]
        raise ConfigError(
            "task", f"data preview shows {' and '.join(shown)} rows", cfg.task, has_value=True
        )
    data = task.load_data(cfg)
    if split not in data.splits:
        raise ConfigError(
            "--split", f"no such split; have {sorted(data.splits)}", split, has_value=True
        )
    part = data.splits[split]
    tokenizer = load_tokenizer(resolve_model(cfg.model))
    if task.head_kind == "causal":
        return _causal_rows(part, tokenizer, cfg.data.max_length, n)
    max_length = cfg.data.max_length or min(getattr(tokenizer, "model_max_length", 512), 512)
    rows = []
    for i in range(min(n, len(part))):
        pair = part.pairs[i] if part.pairs else None
        full = tokenizer(part.texts[i], pair)["input_ids"]
        ids = tokenizer(part.texts[i], pair, truncation=True, max_length=max_length)[
            "input_ids"
        ]  # what the model gets
        label = part.y[i]
        names = data.labels.names
        shown = (
            [names[j] for j, on in enumerate(label) if on]
            if data.labels.multi_label
            else names[int(label)]
        )
        rows.append(
            {
                "row": part.rows[i] if part.rows else i + 1,
                "text": part.texts[i],
                "text_pair": pair,
                "label": shown,
                "label_id": label.tolist() if hasattr(label, "tolist") else label,
                "tokens": tokenizer.convert_ids_to_tokens(ids),
                "n_tokens": len(full),
                "truncated": len(full) > max_length,
            }
        )
    return rows


def _causal_rows(part, tokenizer, max_length: int | None, n: int) -> list[dict]:
    """Rendered conversations with the trained tokens (answers + end-of-turn) in «…»."""
    rows = []
    for record, row in list(zip(part.records, part.rows))[:n]:
        ids, labels = encode_row(record, part.fmt, tokenizer, file=part.file, row_number=row)
        rows.append(
            {
                "row": row,
                "format": part.fmt,
                "rendered": preview(ids, labels, tokenizer),
                "n_tokens": len(ids),
                "trained_tokens": sum(1 for x in labels if x != -100),
                "truncated": max_length is not None and len(ids) > max_length,
            }
        )
    return rows
