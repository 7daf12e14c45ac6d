"""Find exact and near-duplicate texts, and decide which copies to drop.

Duplicates inflate a split's weight, leak between train and test, and, when their labels
disagree, teach the model noise. Exact duplicates share a normalized key (`dedup_key`).
Near-duplicates are found with MinHash over word 3-gram shingles plus LSH banding, done in
numpy over all texts at once (no per-row Python hashing), because prepare must keep up with
thousands of rows a second. Results depend only on the texts and `seed`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from hashlib import blake2b

import numpy as np

_PUNCT = re.compile(r"[^\w\s]|_")  # what remains: letters, digits, whitespace
_ASCII_DROP = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))
# lowercase, and \x1c-\x1f (str whitespace, not bytes whitespace) to spaces
_ASCII_MAP = bytes.maketrans(
    bytes(range(65, 91)) + bytes(range(28, 32)), bytes(range(97, 123)) + b" " * 4
)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # splitmix64
_K = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
_SHORT, _EMPTY = np.uint64(0xD6E8FEB86659FD93), np.uint64(0xA0761D6478BD642F)
_CHUNK = 4096  # shingles per MinHash block: (4096, num_perm) uint64 stays in cache
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
_WINDOW = 64  # in an LSH bucket, each row is compared with at most this many earlier rows


def dedup_key(text: str) -> str:
    """The text as exact dedup compares it: NFKC, casefolded, no punctuation, single spaces.

    Copies that differ only in case, punctuation or spacing ("Great movie!" / "great movie")
    are the same training example, so they share a key.
    """
    if text.isascii():  # fast path, same result: NFKC is a no-op, casefold is lower
        return b" ".join(text.encode().translate(_ASCII_MAP, _ASCII_DROP).split()).decode()
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub("", folded).split())


def exact_groups(texts: list[str]) -> list[list[int]]:
    """Groups (size >= 2) of positions whose texts share a `dedup_key`.

    Each group is sorted; groups are ordered by their first position.
    """
    by_key: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_key.setdefault(dedup_key(text), []).append(i)
    return sorted((g for g in by_key.values() if len(g) > 1), key=lambda g: g[0])


def near_groups(
    texts: list[str],
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 0,
    *,
    false_negative_weight: float = 0.95,
) -> list[list[int]]:
    """Groups (size >= 2) of positions whose texts are near-duplicates.

    Two texts are near-duplicates when the MinHash estimate of the Jaccard similarity of
    their word 3-gram shingles (of `dedup_key`; a text under 3 words uses its word set) is
    >= `threshold`. LSH banding proposes candidate pairs, each verified on the full
    signature: a false candidate costs a comparison, never precision. So the banding
    (`lsh_params`) weights misses 0.95 against 0.05; datasketch's equal weights (0.5)
    give (9, 13) at 0.8/128, proposing only 40% of pairs at similarity 0.8, 69% at 0.85.
    Groups are connected components of verified pairs (exact duplicates always group),
    sorted, ordered by first position; deterministic in `seed`.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = len(texts)
    if n < 2:
        return []
    sig = minhash_signatures(texts, num_perm, seed)  # (N, P)
    bands, rows = lsh_params(threshold, num_perm, false_negative_weight)
    # identical signatures are duplicates outright; LSH only looks at one row of each
    row_hash = _hash_rows(sig)
    _, rep_idx, inverse = np.unique(row_hash, return_index=True, return_inverse=True)
    rep_of = rep_idx[inverse]
    clash = ~(sig == sig[rep_of]).all(axis=1)  # 64-bit hash collisions: keep them apart
    rep_of[clash] = np.flatnonzero(clash)
    reps = np.flatnonzero(rep_of == np.arange(n))
    pairs = _candidate_pairs(sig[reps], bands, rows)  # (C, 2) into reps
    if len(pairs):
        need = int(np.ceil(threshold * num_perm - 1e-9))  # agreeing slots for estimate >= t
        keep = np.zeros(len(pairs), dtype=bool)
        for s in range(0, len(pairs), 65536):
            p = reps[pairs[s : s + 65536]]
            keep[s : s + 65536] = (sig[p[:, 0]] == sig[p[:, 1]]).sum(axis=1) >= need
        pairs = reps[pairs[keep]]
    edges = np.concatenate([pairs.reshape(-1, 2), np.stack([np.arange(n), rep_of], 1)])
    return _components(n, edges)


def minhash_signatures(texts: list[str], num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """(N, num_perm) uint32 MinHash signatures of the texts' shingle sets.

    Shingles hash once to uint64 (blake2b per distinct word, then arithmetic per 3-gram);
    the permutations `(a * h + b) mod 2**64`, keeping the top 32 bits (multiply-add-shift,
    a universal family), run over blocks of all texts' shingles with `np.minimum.reduceat`.
    """
    sh, owner = _shingles(texts)  # (S,) uint64 hashes, (S,) text index, sorted by text
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    starts = np.searchsorted(owner, np.arange(len(texts) + 1))  # every text has >= 1 shingle
    sig = np.empty((len(texts), num_perm), dtype=np.uint32)
    buf = np.empty((_CHUNK, num_perm), dtype=np.uint64)
    t0 = 0
    while t0 < len(texts):
        t1 = max(int(np.searchsorted(starts, starts[t0] + _CHUNK, side="right")) - 1, t0 + 1)
        s0, s1 = starts[t0], starts[t1]
        block = buf[: s1 - s0] if s1 - s0 <= _CHUNK else np.empty((s1 - s0, num_perm), np.uint64)
        np.multiply(sh[s0:s1, None], a, out=block)  # (S_chunk, P), wraps mod 2**64
        block += b
        low = np.minimum.reduceat(block, starts[t0:t1] - s0, axis=0)
        sig[t0:t1] = low >> np.uint64(32)  # the top 32 bits: the good ones
        t0 = t1
    return sig


@lru_cache(maxsize=64)
def lsh_params(
    threshold: float, num_perm: int, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows per band) minimizing weighted false-positive + false-negative mass.

    datasketch's `_optimal_param` criterion: (1 - w) * the integral of P(candidate | s)
    over s < threshold plus w * that of P(miss | s) over s > threshold, w the FN weight.
    """
    if not 0 < false_negative_weight < 1:
        raise ValueError(f"false_negative_weight must be in (0, 1), got {false_negative_weight}")
    w = false_negative_weight
    best, best_err = (1, num_perm), np.inf
    s_lo, s_hi = np.linspace(0, threshold, 401), np.linspace(threshold, 1, 401)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _trapezoid(1 - (1 - s_lo**r) ** b, s_lo)
            fn = _trapezoid((1 - s_hi**r) ** b, s_hi)
            if (1 - w) * fp + w * fn < best_err:
                best, best_err = (b, r), (1 - w) * fp + w * fn
    return best


def resolve_duplicates(
    groups: list[list[int]], labels: list | None, policy: str = "majority"
) -> tuple[list[int], dict]:
    """Positions to drop so that one row of each duplicate group remains, and counts.

    The first row of a group is kept. When a group's labels disagree (label lists compare
    as sorted tuples, multi-hot rows as they are), `policy="majority"` keeps the first row
    with the most common label and drops the rest (a tie drops the whole group: no label
    can be trusted), and `policy="drop"` drops the whole group. `conflict_rows_dropped`
    counts every row dropped from a group whose labels disagree.
    """
    if policy not in ("majority", "drop"):
        raise ValueError(f"policy must be 'majority' or 'drop', got {policy!r}")
    drop: list[int] = []
    stats = dict.fromkeys(["rows_dropped", "conflicting_groups", "conflict_rows_dropped"], 0)
    for group in groups:
        keys = [_label_key(labels[i]) for i in group] if labels is not None else None
        if keys is None or len(set(keys)) == 1:
            drop.extend(group[1:])
            continue
        stats["conflicting_groups"] += 1
        top = Counter(keys).most_common(2)
        if policy == "drop" or top[0][1] == top[1][1]:
            gone = list(group)
        else:
            keep = group[keys.index(top[0][0])]
            gone = [i for i in group if i != keep]
        drop.extend(gone)
        stats["conflict_rows_dropped"] += len(gone)
    return sorted(drop), {"groups": len(groups), **stats, "rows_dropped": len(drop)}


def _label_key(label: object) -> object:
    """Hashable label: label lists as sorted tuples (order carries no meaning), multi-hot
    rows (ndarray) as tuples in place (position is the label)."""
    if isinstance(label, np.ndarray):
        return tuple(label.tolist())
    if isinstance(label, (list, tuple)):
        return tuple(sorted(label, key=repr))
    return label.item() if isinstance(label, np.generic) else label


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over all 64 output bits."""
    x = x ^ (x >> np.uint64(30))
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    return x ^ (x >> np.uint64(31))


def _shingles(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of every text's shingles (with repeats) and the text index of each.

    Word 3-grams for texts of >= 3 words; the words themselves for 1-2 words; one fixed
    hash for texts with no words, so that all of those are duplicates of each other.
    """
    keys = [dedup_key(t) for t in texts]
    lengths = np.array([k.count(" ") + 1 if k else 0 for k in keys], dtype=np.int64)
    words = " ".join(keys).split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # first-seen order
    codes = np.fromiter(map(vocab.__getitem__, words), np.int64, len(words))
    word_hash = np.fromiter(
        (int.from_bytes(blake2b(w.encode(), digest_size=8).digest(), "little") for w in vocab),
        np.uint64,
        len(vocab),
    )
    h = word_hash[codes]  # (W,) one per word of every text
    text_of = np.repeat(np.arange(len(texts)), lengths)
    pos = np.arange(len(h)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    gram = _mix(h[:-2] * _K[0] + h[1:-1] * _K[1] + h[2:] * _K[2])  # (W-2,) any window
    ok = pos[:-2] <= lengths[text_of[:-2]] - 3  # windows inside one text
    parts, owners = [gram[ok]], [text_of[:-2][ok]]
    short = lengths[text_of] < 3
    parts.append(_mix(h[short] ^ _SHORT))
    owners.append(text_of[short])
    empty = np.flatnonzero(lengths == 0)
    parts.append(np.full(len(empty), _EMPTY))
    owners.append(empty)
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    return np.concatenate(parts)[order], owner[order]


def _hash_rows(x: np.ndarray) -> np.ndarray:
    """64-bit hash of each row of `x` (N, W); a column at a time to stay small in memory."""
    h = np.zeros(len(x), dtype=np.uint64)
    for j in range(x.shape[1]):
        h = _mix(h ^ x[:, j].astype(np.uint64))
    return h


def _candidate_pairs(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(C, 2) row pairs (i < j) that share at least one band of their signatures.

    Rows sharing a band's values form a bucket; each row is paired with up to `_WINDOW`
    earlier rows of its bucket, so a huge bucket cannot explode into quadratic pairs.
    """
    m = len(sig)
    found = []
    for k in range(bands):
        key = _hash_rows(sig[:, k * rows : (k + 1) * rows])  # (M,) one bucket key per row
        order = np.argsort(key, kind="stable")
        kb = key[order]
        same = kb[1:] == kb[:-1]
        if not same.any():
            continue
        inrun = np.zeros(m, dtype=bool)
        inrun[1:] |= same
        inrun[:-1] |= same
        members, mk = order[inrun], kb[inrun]  # rows in buckets of >= 2, bucket-contiguous
        for d in range(1, min(_WINDOW, len(members) - 1) + 1):
            hit = mk[d:] == mk[:-d]
            if not hit.any():
                break
            found.append(np.stack([members[:-d][hit], members[d:][hit]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    code = np.unique(pairs[:, 0] * np.int64(m) + pairs[:, 1])  # dedup across bands
    return np.stack([code // m, code % m], axis=1)


def _components(n: int, edges: np.ndarray) -> list[list[int]]:
    """Connected components (size >= 2) of an undirected graph, as sorted position lists,
    ordered by first position. Union-find (path halving); a root is its component's
    smallest position. Plain Python: edges are few, and scipy's import alone costs more."""
    edges = edges[edges[:, 0] != edges[:, 1]]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for u, v in edges.tolist():
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    root = np.arange(n)
    touched = np.unique(edges)
    root[touched] = [find(i) for i in touched.tolist()]
    rows = np.flatnonzero(np.bincount(root, minlength=n)[root] > 1)
    if not len(rows):  # no component of 2: no groups (the cuts below would make one empty)
        return []
    order = rows[np.argsort(root[rows], kind="stable")]  # by root, ascending within
    cuts = [0, *(np.flatnonzero(np.diff(root[order])) + 1).tolist(), len(order)]
    flat = order.tolist()
    return [flat[i:j] for i, j in zip(cuts[:-1], cuts[1:])]
