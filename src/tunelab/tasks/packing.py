"""Fit causal-LM examples into sequences: truncate, pack, and collate packed batches.

Packing puts several examples in one row of max_length tokens so no compute goes to padding
(the bulk of tunelab's speed-up over pad-every-row SFT scripts). It must not let examples see
each other: each example's position ids restart at 0, its first label is -100 (never predict
an example from the previous one's last token), and attention is block-diagonal.

What transformers 5.23 does with restarting position ids (checked in
tests/tasks/test_causal_lm_data.py): `create_causal_mask` derives a block-diagonal mask from
position-id resets only when `attention_mask is None` AND there is no cache. Llama's forward
creates a DynamicCache whenever `use_cache` is true, which is the config default, even in
training; and any 2-D padding mask also turns detection off. In both cases examples silently
attend across boundaries. So `collate_packed` builds the mask itself: a 4-D additive mask
(B, 1, T, T) that eager and sdpa attention take as is. `attention="position_ids"` instead
omits the mask and relies on the detection (the caller must pass `use_cache=False`); it skips
materializing the (B, T, T) mask here and is what flash_attention_2 (varlen) wants.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import torch

IGNORE = -100  # same as causal_lm_data.IGNORE: a label the loss skips


def truncate(
    ids: list[int], labels: list[int], max_length: int, policy: str = "truncate"
) -> tuple[list[int], list[int]] | None:
    """Fit a row into max_length: keep the head ("truncate") or drop it ("drop").

    Returns None for a dropped row, including a truncated row left with no trained token
    (its answer lay wholly beyond max_length: training on it would teach nothing).
    """
    if policy not in ("truncate", "drop"):
        raise ValueError(f"policy must be 'truncate' or 'drop', got {policy!r}")
    if len(ids) <= max_length:
        return ids, labels
    if policy == "drop":
        return None
    ids, labels = ids[:max_length], labels[:max_length]
    return (ids, labels) if any(x != IGNORE for x in labels) else None


def truncate_all(
    rows: Iterable[tuple[list[int], list[int]]], max_length: int, policy: str = "truncate"
) -> tuple[list[tuple[list[int], list[int]]], dict[str, int]]:
    """truncate() every row. The counts {"too_long", "truncated", "dropped"} let the caller
    warn once ("12 rows were longer than max_length 512: 10 truncated, 2 dropped")."""
    kept, counts = [], {"too_long": 0, "truncated": 0, "dropped": 0}
    for ids, labels in rows:
        out = truncate(ids, labels, max_length, policy)
        if len(ids) > max_length:
            counts["too_long"] += 1
            counts["dropped" if out is None else "truncated"] += 1
        if out is not None:
            kept.append(out)
    return kept, counts


def bins(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Indices grouped into bins of total length <= max_length, best-fit decreasing.

    Longest first, each into the fullest bin it still fits (bisect on remaining room), so a
    run is O(n log n) and nearly as tight as optimal; deterministic for given lengths.
    """
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        raise ValueError(
            f"{len(too_long)} examples are longer than max_length {max_length} "
            f"(first: index {too_long[0]}); truncate them first"
        )
    out: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (remaining room, bin index), sorted
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        k = bisect.bisect_left(room, (lengths[i], -1))
        if k == len(room):
            out.append([i])
            bisect.insort(room, (max_length - lengths[i], len(out) - 1))
        else:
            left, b = room.pop(k)
            out[b].append(i)
            bisect.insort(room, (left - lengths[i], b))
    return out


def pack(rows: Sequence[tuple[list[int], list[int]]], max_length: int) -> list[dict]:
    """Pack (input_ids, labels) examples into sequences of at most max_length tokens.

    Each packed sequence holds `input_ids`, `labels`, `position_ids` (restarting at 0 per
    example), `seq_lens` and `examples` (the row indices, in order). The first label of every
    example is -100: HF causal LMs shift labels (labels[t] is predicted from token t-1), so a
    label there would train predicting one example from the end of the previous one.
    """
    return [_sequence(rows, group) for group in bins([len(ids) for ids, _ in rows], max_length)]


def one_per_row(rows: Sequence[tuple[list[int], list[int]]]) -> list[dict]:
    """The same sequences as pack() but one example each (packing off; batches are then
    grouped by length so padding stays small)."""
    return [_sequence(rows, [i]) for i in range(len(rows))]


def _sequence(rows: Sequence[tuple[list[int], list[int]]], group: list[int]) -> dict:
    """One training sequence holding the examples `group` back to back."""
    ids, labels, pos = [], [], []
    for i in group:
        x, y = rows[i]
        ids += x
        labels += [IGNORE, *y[1:]]
        pos += range(len(x))
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": pos,
        "seq_lens": [len(rows[i][0]) for i in group],
        "examples": group,
    }


def block_causal_mask(seq_lens: list[list[int]], width: int, dtype=torch.float32) -> torch.Tensor:
    """Additive (B, 1, T, T) mask: 0 where query t may see key s (same example, s <= t),
    dtype's min elsewhere. Each pad token sees only itself, so no softmax row is empty (NaN)."""
    segs = []
    for lens in seq_lens:
        seg = torch.repeat_interleave(torch.arange(len(lens)), torch.tensor(lens, dtype=torch.long))
        pad = width - len(seg)
        segs.append(torch.cat([seg, len(lens) + torch.arange(pad)]))  # unique id per pad
    seg = torch.stack(segs)  # (B, T)
    same = seg[:, :, None] == seg[:, None, :]  # (B, T, T): query t, key s in one example
    causal = torch.ones(width, width, dtype=torch.bool).tril()  # (T, T)
    allowed = same & causal
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[:, None]  # (B, 1, T, T)


def collate_packed(
    batch: list[dict], pad_id: int, *, attention: str = "4d", dtype=torch.float32
) -> dict[str, torch.Tensor]:
    """Pad packed sequences to the longest of the batch and add the attention inputs.

    Returns input_ids (B, T) padded with pad_id, labels (B, T) padded with -100, position_ids
    (B, T) padded with 0, and with attention="4d" an `attention_mask` (B, 1, T, T) from
    block_causal_mask in `dtype` (use the model's compute dtype: sdpa wants them equal).
    With attention="position_ids" there is no mask and the model must be called with
    use_cache=False (see the module docstring). With attention="2d" (rows holding one example
    each) a plain (B, T) padding mask and no position ids: what a model wrapped by prompt
    tuning (which prepends positions) can take.
    """
    if attention not in ("4d", "position_ids", "2d"):
        raise ValueError(f"attention must be '4d', 'position_ids' or '2d', got {attention!r}")
    width = max(len(b["input_ids"]) for b in batch)

    def padded(key: str, value: int) -> torch.Tensor:
        rows = [b[key] + [value] * (width - len(b[key])) for b in batch]
        return torch.tensor(rows, dtype=torch.long)  # (B, T)

    out = {
        "input_ids": padded("input_ids", pad_id),
        "labels": padded("labels", IGNORE),
        "position_ids": padded("position_ids", 0),
    }
    if attention == "4d":
        out["attention_mask"] = block_causal_mask([b["seq_lens"] for b in batch], width, dtype)
    elif attention == "2d":
        if any(len(b["seq_lens"]) != 1 for b in batch):
            raise ValueError("attention='2d' needs one example per row (data.packing: false)")
        del out["position_ids"]
        lengths = torch.tensor([len(b["input_ids"]) for b in batch])
        out["attention_mask"] = (torch.arange(width)[None] < lengths[:, None]).long()  # (B, T)
    return out


def padding_waste(lengths: Sequence[int], batch_size: int, packed: bool, max_length: int) -> float:
    """Share of computed token slots that are padding, for reporting (0.0 = none).

    Unpacked: rows batched in the given order (pass them in batch order), each batch padded
    to its longest row. Packed: rows packed as pack() would, then packed rows batched alike.
    """
    rows = [min(n, max_length) for n in lengths]
    if packed:
        rows = [sum(rows[i] for i in group) for group in bins(rows, max_length)]
    total = sum(
        len(rows[i : i + batch_size]) * max(rows[i : i + batch_size])
        for i in range(0, len(rows), batch_size)
    )
    return 1.0 - sum(rows) / total if total else 0.0
