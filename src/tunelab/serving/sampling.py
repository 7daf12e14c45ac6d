"""Per-row next-token choice and stop-string handling for the generation engine.

Rows of one decoding batch carry their own settings (OpenAI's temperature, top_p, penalties,
seed), so the choice is made row by row on the (B, V) logits of a step; greedy rows, the
common case, take one vectorized argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Sampling:
    """One request's decoding settings (validated by the HTTP layer)."""

    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    generator: object = field(default=None, repr=False)  # torch.Generator, made on first use


# below this a temperature is greedy: logits / 1e-38 overflow float32 (inf -> NaN
# probabilities), and sampling this cold is argmax anyway
GREEDY_BELOW = 1e-5


def choose_tokens(
    logits, settings: Sequence[Sampling], generated: Sequence[list[int]]
) -> list[int]:
    """The next token of each row. logits: (B, V) float; generated: the tokens each row has
    produced so far (for the presence/frequency penalties)."""
    import torch

    logits = logits.float()
    out = logits.argmax(dim=-1).tolist()  # (B,) greedy choice for every row
    for i, s in enumerate(settings):
        penalized = s.presence_penalty or s.frequency_penalty
        greedy = s.temperature < GREEDY_BELOW
        if greedy and not penalized:
            continue
        row = logits[i].clone()  # (V,)
        if penalized and generated[i]:
            ids = torch.tensor(generated[i], device=row.device)
            counts = torch.bincount(ids, minlength=row.shape[0]).to(row.dtype)  # (V,)
            row -= s.frequency_penalty * counts + s.presence_penalty * (counts > 0).to(row.dtype)
        if greedy:
            out[i] = int(row.argmax())
            continue
        row = row / s.temperature
        if s.top_k:
            kth = torch.topk(row, min(s.top_k, row.shape[0])).values[-1]
            row[row < kth] = float("-inf")
        probs = torch.softmax(row, dim=-1)
        if s.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            # drop a token when the tokens before it already reach top_p (keeps at least one)
            drop = (torch.cumsum(sorted_p, dim=-1) - sorted_p) >= s.top_p
            drop[0] = False  # a top_p below float32's smallest (5e-324) compares as 0.0
            probs[order[drop]] = 0.0
            probs = probs / probs.sum()
        if s.generator is None:
            s.generator = torch.Generator(device=row.device)
            if s.seed is not None:
                s.generator.manual_seed(s.seed)
            else:
                s.generator.seed()
        out[i] = int(torch.multinomial(probs, 1, generator=s.generator))
    return out


def find_stop(text: str, stop: Sequence[str], start: int = 0) -> int | None:
    """Index of the earliest stop string in text[start:] (as an index into text), or None."""
    hits = [i for i in (text.find(s, start) for s in stop) if i >= 0]
    return min(hits) if hits else None


def safe_end(text: str, stop: Sequence[str]) -> int:
    """How much of `text` may be streamed now: everything but a tail that could still grow
    into a stop string, or an unfinished multi-byte character (decoded as U+FFFD)."""
    end = len(text)
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    hold = 0
    for s in stop:
        for n in range(min(len(s) - 1, end), 0, -1):
            if text[end - n : end] == s[:n]:
                hold = max(hold, n)
                break
    return end - hold
