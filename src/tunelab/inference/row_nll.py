"""Per-row negative log-likelihood of causal-LM answers and seq2seq targets.

The split-level scorers (causal_lm.score_lm_features, seq2seq.target_loss) sum one number per
split; `tunelab eval` needs it per row, so that perplexity over any set of rows is
exp(sum nll / sum tokens) of those rows. Each row is scored as its own sequence (no packing),
batched by length, with the same cut and label layout as training.
"""

from __future__ import annotations

import numpy as np

from tunelab.data.batching import sorted_batches
from tunelab.tasks.packing import collate_packed, one_per_row, truncate
from tunelab.tasks.seq2seq import collate, decoder_start_id


def lm_row_nll(
    model, encoded: list, max_length: int, pad_id: int, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(nll (N,), tokens (N,)): per row, the summed cross-entropy of its labelled tokens and how
    many there are. Rows are (input_ids, labels) as the task encodes them, cut to max_length
    (keeping the head, as training did); a row whose answer lies wholly past it scores 0 tokens.
    Each row is its own sequence (no packing), so nothing leaks between rows."""
    import torch
    import torch.nn.functional as F

    fitted = [truncate(ids, labels, max_length, "truncate") for ids, labels in encoded]
    scored = np.array([i for i, r in enumerate(fitted) if r is not None], dtype=np.int64)
    nll, tokens = np.zeros(len(encoded)), np.zeros(len(encoded), dtype=np.int64)
    if scored.size == 0:
        return nll, tokens
    seqs = one_per_row([fitted[i] for i in scored])  # first label of each row: -100
    lengths = np.array([len(s["input_ids"]) for s in seqs])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for index in sorted_batches(lengths, batch_size):
                batch = collate_packed([seqs[i] for i in index], pad_id, attention="2d")
                labels = batch.pop("labels")[:, 1:].to(device)  # (B, T-1)
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
                logits = logits[:, -labels.shape[1] - 1 : -1].float()  # (B, T-1, V); prompt
                # tuning prepends virtual positions, so count from the end
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)),
                    labels.reshape(-1),
                    ignore_index=-100,
                    reduction="none",
                ).view(labels.shape)  # (B, T-1)
                nll[scored[index]] = loss.sum(1).double().cpu().numpy()
                tokens[scored[index]] = (labels != -100).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    return nll, tokens


def seq2seq_row_nll(
    model, features, pad_id: int, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(nll (N,), tokens (N,)): per row, the summed teacher-forced cross-entropy of its target
    tokens (the labels featurize cut to the target limit) and their count."""
    import torch
    import torch.nn.functional as F

    n = len(features)
    nll, tokens = np.zeros(n), np.zeros(n, dtype=np.int64)
    device = next(model.parameters()).device
    start = decoder_start_id(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for index in sorted_batches(features.lengths, batch_size):
                batch = collate(features, np.asarray(index), pad_id, decoder_start=start)
                labels = batch.pop("labels").to(device)  # (B, L)
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (B, L, V)
                loss = F.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)),
                    labels.reshape(-1),
                    ignore_index=-100,
                    reduction="none",
                ).view(labels.shape)  # (B, L)
                nll[index] = loss.sum(1).double().cpu().numpy()
                tokens[index] = (labels != -100).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    return nll, tokens
