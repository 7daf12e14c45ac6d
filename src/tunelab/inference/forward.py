"""Batched forward passes for evaluation and prediction."""

from __future__ import annotations

import numpy as np

from tunelab.data.batching import Features, collate, sorted_batches
from tunelab.tasks import classification as task


def logits_for(model, features: Features, batch_size: int, pad_id: int) -> np.ndarray:
    """Logits (N, C) in the rows' original order; batches sorted by length to pad little."""
    import torch

    device = next(model.parameters()).device
    out: np.ndarray | None = None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = collate(Features(features.columns), index, pad_id)
            logits = (
                model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
            )
            if out is None:
                out = np.zeros((len(features), logits.shape[-1]), dtype=np.float32)
            out[index] = logits
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def predict_texts(
    trained, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64
) -> list[dict]:
    """[{"label", "score", "scores": {label: p}}] per text (multi-label: "labels" above 0.5)."""
    enc = trained.tokenizer(
        texts, pairs, truncation=True, max_length=trained.max_length, padding=False
    )
    columns = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    logits = logits_for(
        trained.model, Features(columns), batch_size, trained.tokenizer.pad_token_id
    )
    ids, probs = task.predict(logits, trained.labels.multi_label)
    names = trained.labels.names
    out = []
    for i in range(len(texts)):
        scores = {n: round(float(p), 6) for n, p in zip(names, probs[i])}
        if trained.labels.multi_label:
            out.append({"labels": [n for n, on in zip(names, ids[i]) if on], "scores": scores})
        else:
            out.append(
                {"label": names[int(ids[i])], "score": scores[names[int(ids[i])]], "scores": scores}
            )
    return out
