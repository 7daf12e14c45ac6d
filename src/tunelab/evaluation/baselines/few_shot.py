"""Size base_few_shot's prompts for its shots, and count the shots each row actually got.

The task's `few_shot_featurize` drops demonstrations, oldest first, from a row that would not
fit the length it is given. Given the run's `data.max_length` (chosen for rows without
examples), every example could be dropped and base_few_shot would silently score the same
tokens as base_model. So the prompts get the length the longest row needs with all its shots,
within what the model takes (its position limit), and each row's shots are counted.

The task does not say how many examples it kept in front of a row, so they are counted here
from rendered lengths alone: a row's versions strictly shrink as examples are dropped, and
asking the task for a length one token under the current version returns the next smaller
one. Rows that fit every example (the usual case) need no such step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

_UNBOUNDED = 10**9  # a length every row fits: all examples kept


@dataclass
class FewShotFit:
    features: object | None  # None: no row has a single example in front of it
    max_length: int  # the length the prompts were fitted to
    shots: list[int]  # examples in front of each row of the split, in order
    available: int  # examples the training split offered (at most the shots asked for)

    def rows_by_shots(self) -> dict[str, int]:
        """{"3": 14, "1": 2}: how many rows had each number of examples in front, most first."""
        return {str(k): n for k, n in sorted(Counter(self.shots).items(), reverse=True)}


def position_limit(model, tokenizer) -> int | None:
    """The most tokens the model takes (its config's position limit and the tokenizer's
    model_max_length, the smaller); None when neither says."""
    config = getattr(model, "config", None)
    limits = [
        getattr(config, name, None)
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length")
    ]
    limits.append(getattr(tokenizer, "model_max_length", None))
    limits = [x for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else None


def fit_few_shot(
    task, split, train, tokenizer, max_length: int, limit: int | None, shots: int, seed: int
) -> FewShotFit | None:
    """The split's few-shot features at a length that fits `shots` examples in front of every
    row, capped by the model's `limit` (never below `max_length`); None when the task has no
    turns to put examples in (raw text)."""
    one = replace(split, packing=False, too_long="truncate")  # one sequence per row, none dropped
    full = task.few_shot_featurize(one, train, tokenizer, _UNBOUNDED, shots, seed)
    if full is None:
        return None
    plain = [len(ids) for ids in task.featurize(one, tokenizer, None).columns["input_ids"]]
    full_len = [int(n) for n in full.lengths]
    need = max(full_len)
    length = max(max_length, min(limit, need)) if limit else max_length
    ref = min(range(len(plain)), key=lambda i: full_len[i])
    available = _drops(task, one, train, tokenizer, ref, full_len[ref], plain[ref], shots, seed)
    used = []
    for i, (n_full, n_plain) in enumerate(zip(full_len, plain, strict=True)):
        if n_full <= length:
            used.append(available)
        elif n_plain >= length:  # no room for an example (or the row alone is truncated)
            used.append(0)
        else:
            used.append(
                available - _drops(task, one, train, tokenizer, i, n_full, length, shots, seed)
            )
    if not any(used):
        return FewShotFit(None, length, used, available)
    features = task.few_shot_featurize(split, train, tokenizer, length, shots, seed)
    return FewShotFit(features, length, used, available)


def _drops(task, one, train, tokenizer, i: int, n: int, fit: int, shots: int, seed: int) -> int:
    """How many examples row i loses, from its full version of n tokens, before it is at most
    `fit` tokens long (fit: the row's length without examples counts every example); never
    more than `shots`, whatever the chat template does."""
    row = replace(one, records=[one.records[i]], rows=[one.rows[i]])
    dropped = 0
    while n > fit and dropped < shots:
        n = int(task.few_shot_featurize(row, train, tokenizer, n - 1, shots, seed).lengths[0])
        dropped += 1
    return dropped
