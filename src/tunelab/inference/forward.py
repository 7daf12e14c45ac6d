"""Batched forward passes for evaluation and prediction."""

from __future__ import annotations

import numpy as np

from tunelab.data.batching import Features, collate, sorted_batches
from tunelab.tasks import classification as task


def logits_for(model, features: Features, batch_size: int, pad_id: int, pooled: bool = False):
    """Logits (N, C) in the rows' original order; batches sorted by length to pad little.
    With `pooled`: (logits, (N, H) mean-pooled last hidden states) from the same passes."""
    import torch

    from tunelab.inference.embedding import mean_pool

    device = next(model.parameters()).device
    out: np.ndarray | None = None
    hidden: np.ndarray | None = None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = {
                k: v.to(device)
                for k, v in collate(Features(features.columns), index, pad_id).items()
            }
            result = model(**batch, output_hidden_states=pooled)
            logits = result.logits.float().cpu().numpy()
            if out is None:
                out = np.zeros((len(features), logits.shape[-1]), dtype=np.float32)
            out[index] = logits
            if pooled:
                vec = mean_pool(result.hidden_states[-1], batch["attention_mask"]).float().cpu()
                if hidden is None:
                    hidden = np.zeros((len(features), vec.shape[-1]), dtype=np.float32)
                hidden[index] = vec.numpy()
    model.train(was_training)
    out = out if out is not None else np.zeros((0, 0), dtype=np.float32)
    if pooled:
        return out, hidden if hidden is not None else np.zeros((0, 0), dtype=np.float32)
    return out


def encode(trained, texts: list[str], pairs: list[str] | None = None) -> Features:
    """The model's input columns for `texts` (and their pairs), truncated, unpadded."""
    enc = trained.tokenizer(
        texts, pairs, truncation=True, max_length=trained.max_length, padding=False
    )
    return Features(
        {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    )


def predict_texts(
    trained,
    texts: list[str],
    pairs: list[str] | None = None,
    batch_size: int = 64,
    embed: bool = False,
) -> list[dict]:
    """[{"label", "score", "scores": {label: p}}] per text (multi-label: "labels" above 0.5).
    With `embed`, each also holds "embedding": its EMBED_DIM vector (inference/embedding.py)
    from the same forward pass, and "n_tokens"/"n_unk" (for the prediction log)."""
    features = encode(trained, texts, pairs)
    pad = trained.tokenizer.pad_token_id
    if embed:
        from tunelab.inference.embedding import project, unk_counts

        logits, pooled = logits_for(trained.model, features, batch_size, pad, pooled=True)
        vectors = project(pooled)
        ids_list = features.columns["input_ids"]
        unks = unk_counts(trained.tokenizer, ids_list)
    else:
        logits = logits_for(trained.model, features, batch_size, pad)
    ids, probs = task.predict(logits, trained.labels.multi_label)
    names = trained.labels.names
    out = []
    for i in range(len(texts)):
        scores = {n: round(float(p), 6) for n, p in zip(names, probs[i])}
        if trained.labels.multi_label:
            row = {"labels": [n for n, on in zip(names, ids[i]) if on], "scores": scores}
        else:
            top = names[int(ids[i])]
            row = {"label": top, "score": scores[top], "scores": scores}
        if embed:
            row |= {"embedding": vectors[i], "n_tokens": len(ids_list[i]), "n_unk": unks[i]}
        out.append(row)
    return out
