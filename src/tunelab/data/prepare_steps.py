"""The steps of the prepare stage, one function each: frames in, frames out, counts logged.

`frames` maps split names to DataFrames whose index is the source row number, so a row can
always be traced back to its file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunelab.config.schema import (
    AugmentConfig,
    BalanceConfig,
    CleanConfig,
    DataConfig,
    DedupConfig,
    PIIConfig,
    PrepareConfig,
)
from tunelab.errors import ConfigError

Frames = dict[str, pd.DataFrame]


def _joined(df: pd.DataFrame, text_cols: list[str]) -> list[str]:
    if len(text_cols) == 1:
        return df[text_cols[0]].astype(str).tolist()
    return [
        " [SEP] ".join(parts) for parts in zip(*(df[c].astype(str).tolist() for c in text_cols))
    ]


def clean(frames: Frames, text_cols: list[str], cfg: CleanConfig, log) -> Frames:
    if not cfg.enabled:
        return frames
    from tunelab.data.clean import clean_texts

    out, changed, rows_in = {}, {}, 0
    dropped = {"empty": 0, "too_short": 0, "too_long": 0}
    for name, df in frames.items():
        df = df.copy()
        rows_in += len(df)
        keep = np.ones(len(df), dtype=bool)
        for col in text_cols:
            texts, counts = clean_texts(df[col].astype(str).tolist(), cfg)
            df[col] = texts
            for k, v in counts.items():
                changed[k] = changed.get(k, 0) + v
            lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
            rules = {"empty": lengths == 0 if cfg.drop_empty else None}
            rules["too_short"] = lengths < cfg.min_chars if cfg.min_chars else None
            rules["too_long"] = lengths > cfg.max_chars if cfg.max_chars else None
            for why, mask in rules.items():
                if mask is not None:
                    dropped[why] += int((mask & keep).sum())
                    keep &= ~mask
        out[name] = df[keep]
    log.add(
        "clean",
        rows_in,
        sum(len(d) for d in out.values()),
        **{f"dropped_{k}": v for k, v in dropped.items()},
        changed=changed,
    )
    return out


def anonymize(frames: Frames, text_cols: list[str], cfg: PIIConfig, log) -> Frames:
    if cfg.action == "off":
        return frames
    from tunelab.data.pii import find_pii, redact

    out, found, rows_in = {}, {}, 0
    for name, df in frames.items():
        df = df.copy()
        rows_in += len(df)
        keep = np.ones(len(df), dtype=bool)
        for col in text_cols:
            texts = df[col].tolist()
            for i, text in enumerate(texts):
                if cfg.action == "replace":
                    new, counts = redact(text, cfg.types)
                    texts[i] = new
                else:
                    matches = find_pii(text, cfg.types)
                    counts = {}
                    for m in matches:
                        counts[m.type] = counts.get(m.type, 0) + 1
                    if matches:
                        keep[i] = False
                for k, v in counts.items():
                    found[k] = found.get(k, 0) + v
            df[col] = texts
        out[name] = df[keep]
    log.add(
        "pii",
        rows_in,
        sum(len(d) for d in out.values()),
        action=cfg.action,
        found=dict(sorted(found.items())),
    )
    return out


def deduplicate(
    frames: Frames, text_cols: list[str], label: str, cfg: DedupConfig, seed: int, log
) -> Frames:
    """Exact (normalized) then near duplicates, within each split; conflicts by policy."""
    from tunelab.data.dedup import exact_groups, near_groups, resolve_duplicates

    out, rows_in = {}, 0
    stats = {"exact_rows": 0, "near_rows": 0, "conflicting_groups": 0}
    for name, df in frames.items():
        rows_in += len(df)
        for kind, enabled in (("exact", cfg.exact), ("near", cfg.near)):
            if not enabled or len(df) < 2:
                continue
            texts = _joined(df, text_cols)
            if kind == "exact":
                groups = exact_groups(texts)  # normalizes with dedup_key itself
            else:
                groups = near_groups(
                    texts, threshold=cfg.threshold, num_perm=cfg.num_perm, seed=seed
                )
            drop, s = resolve_duplicates(groups, df[label].tolist(), cfg.conflicts)
            stats[f"{kind}_rows"] += len(drop)
            stats["conflicting_groups"] += s.get("conflicting_groups", 0)
            mask = np.ones(len(df), dtype=bool)
            mask[list(drop)] = False
            df = df[mask]
        out[name] = df
    log.add("dedup", rows_in, sum(len(d) for d in out.values()), **stats, policy=cfg.conflicts)
    return out


def _label_ids(df: pd.DataFrame, data: DataConfig) -> np.ndarray:
    from tunelab.data.labels import discover_labels, encode_labels

    return encode_labels(df, data.label, discover_labels([df], data.label, data.label_names))


def split(frames: Frames, data: DataConfig, cfg: PrepareConfig, log) -> Frames:
    s = cfg.split
    if s.ratios is None:
        return frames
    if len(frames) > 1:
        raise ConfigError(
            "data.prepare.split.ratios",
            "splits by ratio need a single input file; drop data.validation/data.test or the ratios",
        )
    from tunelab.data.splits import ratio_split

    df = frames["train"]
    y = _label_ids(df, data) if s.stratify else None
    groups = df[s.group].astype(str).to_numpy() if s.group else None
    try:
        parts = ratio_split(len(df), s.ratios, cfg.seed, y=y, groups=groups, stratify=s.stratify)
    except ValueError as exc:
        from tunelab.errors import DataError

        raise DataError(
            df.attrs.get("source", "train"), f"cannot split {len(df)} rows by {s.ratios}: {exc}"
        ) from None
    out = {name: df.iloc[np.sort(idx)] for name, idx in parts.items()}
    log.add(
        "split",
        len(df),
        sum(len(d) for d in out.values()),
        **{name: len(d) for name, d in out.items()},
    )
    return out


def remove_leakage(frames: Frames, text_cols: list[str], enabled: bool, log) -> Frames:
    """Drop validation/test rows whose normalized text also occurs in train."""
    if not enabled or "train" not in frames or len(frames) == 1:
        return frames
    from tunelab.data.dedup import dedup_key
    from tunelab.data.splits import leaked

    train_keys = {dedup_key(t) for t in _joined(frames["train"], text_cols)}
    out, removed = {"train": frames["train"]}, {}
    for name, df in frames.items():
        if name == "train":
            continue
        bad = leaked(train_keys, [dedup_key(t) for t in _joined(df, text_cols)])
        mask = np.ones(len(df), dtype=bool)
        mask[bad] = False
        out[name], removed[name] = df[mask], int(len(bad))
    rows = sum(len(d) for d in frames.values())
    log.add("leakage", rows, sum(len(d) for d in out.values()), **removed)
    return out


def balance(df: pd.DataFrame, y: np.ndarray, cfg: BalanceConfig, seed: int, log) -> pd.DataFrame:
    if cfg.method in ("none", "class_weights"):
        if cfg.method == "class_weights":
            log.add("balance", len(df), len(df), method="class_weights (handed to the loss)")
        return df
    from tunelab.data.balance import oversample, undersample

    try:
        idx = (oversample if cfg.method == "oversample" else undersample)(y, seed)
    except ValueError as exc:
        raise ConfigError(
            "data.prepare.balance.method", str(exc), cfg.method, has_value=True
        ) from None
    out = df.iloc[np.sort(idx)]
    log.add("balance", len(df), len(out), method=cfg.method)
    return out


def augment(df: pd.DataFrame, text: str, cfg: AugmentConfig, seed: int, log) -> pd.DataFrame:
    if cfg.multiplier <= 0:
        return df
    from tunelab.data.augment import augment as run_augment

    new_texts, sources, counts = run_augment(df[text].tolist(), cfg, seed)
    extra = df.iloc[sources].copy()
    extra[text] = new_texts
    out = pd.concat([df, extra])
    log.add("augment", len(df), len(out), **counts)
    return out


def folds(
    df: pd.DataFrame, data: DataConfig, cfg: PrepareConfig
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    from tunelab.data.splits import kfold_indices

    s = cfg.split
    groups = df[s.group].astype(str).to_numpy() if s.group else None
    y = _label_ids(df, data) if s.stratify else None
    return [
        (df.iloc[tr], df.iloc[va])
        for tr, va in kfold_indices(len(df), s.folds, cfg.seed, y=y, groups=groups)
    ]
