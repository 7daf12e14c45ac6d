"""Embedding drift: a kernel two-sample test (MMD) and a domain classifier.

Both compare the reference embeddings (training + validation texts, embedded by the served
model) with a window of logged embeddings. The MMD p-value comes from permutations of the
POOLED sample: under "no drift" the reference and the window are exchangeable, so every
relabelling of the pooled rows is equally likely. Resampling the null from the reference
alone (as Evidently does) ignores the window's own sampling noise and flags drift far more
often than the nominal rate.
"""

from __future__ import annotations

import numpy as np

MIN_ROWS = 5
"""Fewer current rows than this: no test (the statistics come back NaN)."""


def _subsample(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if max_rows and len(x) > max_rows:
        return x[np.sort(rng.choice(len(x), max_rows, replace=False))]
    return x


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _mmd2_batch(k: np.ndarray, a: np.ndarray, m: int, n: int) -> np.ndarray:
    """Unbiased MMD^2 for each membership row of `a` ((P, N) 0/1, 1 = first sample).

    With k's diagonal all ones: sum_{i!=j in X} k = a'Ka - m, sum_{Y} = b'Kb - n with
    b = 1 - a, and b'Kb = 1'K1 - 2 a'K1 + a'Ka, a'Kb = a'K1 - a'Ka.
    """
    ka = a @ k  # (P, N)
    aka = np.einsum("pn,pn->p", ka, a)
    k1 = k.sum(axis=1)
    ak1 = a @ k1
    total = k1.sum()
    xx = (aka - m) / (m * (m - 1))
    yy = (total - 2.0 * ak1 + aka - n) / (n * (n - 1))
    xy = (ak1 - aka) / (m * n)
    return xx + yy - 2.0 * xy


def mmd_test(
    ref: np.ndarray,
    cur: np.ndarray,
    permutations: int = 500,
    seed: int = 0,
    max_ref: int = 1000,
) -> tuple[float, float]:
    """(unbiased MMD^2, permutation p-value) between `ref` (R, d) and `cur` (N, d).

    RBF kernel whose bandwidth is the median pairwise distance of the pooled sample (so it
    does not depend on which rows are labelled "current"); the pooled kernel matrix is built
    once and each permutation only relabels rows. p = (1 + #{perm >= observed}) / (1 + P),
    which is never 0 and is valid (super-uniform) under exchangeability. The reference is
    subsampled to `max_ref` rows (seeded) to bound the O((R+N)^2) cost.
    """
    rng = np.random.default_rng(seed)
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    if len(cur) < MIN_ROWS or len(ref) < MIN_ROWS:
        return float("nan"), float("nan")
    ref = _subsample(ref, max_ref, rng)
    m, n = len(ref), len(cur)
    z = np.concatenate([ref, cur])
    d2 = _sq_dists(z)
    iu = np.triu_indices(len(z), k=1)
    sigma2 = float(np.median(d2[iu]))
    if not np.isfinite(sigma2) or sigma2 <= 0:
        positive = d2[iu][d2[iu] > 0]
        sigma2 = float(np.median(positive)) if positive.size else 1.0
    k = np.exp(-d2 / (2.0 * sigma2))
    observed_a = np.zeros((1, m + n))
    observed_a[0, :m] = 1.0
    observed = float(_mmd2_batch(k, observed_a, m, n)[0])
    if permutations <= 0:
        return observed, float("nan")
    exceed = 0
    chunk = 100
    done = 0
    while done < permutations:
        p = min(chunk, permutations - done)
        a = np.zeros((p, m + n))
        idx = np.argsort(rng.random((p, m + n)), axis=1)[:, :m]
        np.put_along_axis(a, idx, 1.0, axis=1)
        exceed += int(np.sum(_mmd2_batch(k, a, m, n) >= observed - 1e-12))
        done += p
    return observed, (1.0 + exceed) / (1.0 + permutations)


def _cv_hat(x: np.ndarray, folds: np.ndarray, ridge: float) -> np.ndarray:
    """(N, N) matrix H with out-of-fold ridge predictions = H @ y for ANY label vector y
    whose per-fold training mean is fixed by the caller (intercept handled by centring)."""
    n, d = x.shape
    h = np.zeros((n, n))
    for f in np.unique(folds):
        test, train = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        mu = x[train].mean(axis=0)
        xt = x[train] - mu
        gram = xt.T @ xt + ridge * len(train) * np.eye(d)
        a = np.linalg.solve(gram, xt.T)  # (d, |T|); a @ 1 = 0 since xt is centred
        h[np.ix_(test, train)] = (x[test] - mu) @ a + 1.0 / len(train)
    return h


def _auc_rows(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUC of each row of `scores` (P, N) for the 0/1 rows of `positive` (P, N)."""
    ranks = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1) + 1.0
    n1 = positive.sum(axis=1)
    n0 = positive.shape[1] - n1
    u = (ranks * positive).sum(axis=1) - n1 * (n1 + 1) / 2.0
    return u / (n0 * n1)


def _stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    folds = np.empty(len(y), dtype=int)
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        folds[idx] = np.arange(len(idx)) % k
    return folds


def domain_classifier(
    ref: np.ndarray,
    cur: np.ndarray,
    seed: int = 0,
    max_ref: int = 1000,
    folds: int = 5,
    top: int = 10,
    permutations: int = 200,
    ridge: float = 0.1,
) -> tuple[float, float, list[int]]:
    """(AUC, p-value, indices of the most new-looking current rows) of a classifier that
    tells the window from the reference.

    The classifier is a ridge-regularised linear discriminant (least squares on the 0/1
    "is current" label, features standardised on the pooled sample) scored out of fold by a
    stratified k-fold, so every row is scored by a model that never saw it and an AUC near
    0.5 means "cannot tell them apart". Out-of-fold predictions of a ridge fit are linear
    in the labels (scores = H y), so the permutation test refits nothing: it permutes the
    labels within each fold (which keeps every fold's class counts, hence the fitted
    intercepts, and leaves the no-drift distribution unchanged) and multiplies by H.
    p = (1 + #{perm AUC >= observed}) / (1 + P).

    Why not a Mann-Whitney test on the out-of-fold scores: the scores of one fold share a
    model, so they are not independent and the U test's variance is too small; on
    no-shift data it flagged about 3x the nominal rate. `top` indexes into `cur`, most
    current-looking (highest out-of-fold score) first.
    """
    rng = np.random.default_rng(seed)
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    if len(cur) < MIN_ROWS or len(ref) < MIN_ROWS:
        return float("nan"), float("nan"), []
    ref = _subsample(ref, max_ref, rng)
    x = np.concatenate([ref, cur])
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    k = max(2, min(folds, len(cur), len(ref)))
    fold = _stratified_folds(y.astype(int), k, rng)
    h = _cv_hat(x, fold, ridge)
    scores = h @ y
    auc = float(_auc_rows(scores[None, :], y[None, :])[0])
    exceed = 0
    chunk = 100
    done = 0
    groups = [np.flatnonzero(fold == f) for f in range(k)]
    while done < permutations:
        p = min(chunk, permutations - done)
        yp = np.empty((p, len(y)))
        for g in groups:
            order = np.argsort(rng.random((p, len(g))), axis=1)
            yp[:, g] = y[g][order]
        perm_auc = _auc_rows(yp @ h.T, yp)
        exceed += int(np.sum(perm_auc >= auc - 1e-12))
        done += p
    p_value = (1.0 + exceed) / (1.0 + permutations) if permutations > 0 else float("nan")
    cur_scores = scores[len(ref) :]
    newest = [int(i) for i in np.argsort(-cur_scores, kind="stable")[:top]]
    return auc, float(p_value), newest
