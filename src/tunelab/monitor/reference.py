"""The reference a served model's traffic is compared with: its run's training and validation
inputs, embedded, tokenized and (for classifiers) predicted by the very code serving uses.

Computed once from the run (the run's config.yaml beside model/, its data files and the model
itself) and cached beside the model as monitor_reference.npz + monitor_reference.json; the
cache is recomputed when a model file is newer than it. Drift tests then compare a window of
logged rows with these rows in the same 64-number embedding space (inference/embedding.py).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tunelab.errors import TunelabError

CACHE_NPZ = "monitor_reference.npz"
CACHE_JSON = "monitor_reference.json"
CACHE_VERSION = 1
MAX_TRAIN = 1000  # training texts in the reference (seeded subsample)
MAX_VALIDATION = 1000
SEED = 0
ARRAYS = ("embeddings", "n_tokens", "n_unk", "pred_labels", "val_probs", "val_labels")


@dataclass
class Reference:
    """What the served model saw and did on its own run's data (docs/monitoring.md)."""

    model: str
    task: str
    kind: str
    labels: list[str] | None
    embeddings: np.ndarray  # (R, 64) float32, training + validation texts
    n_tokens: np.ndarray  # (R,)
    n_unk: np.ndarray  # (R,)
    languages: dict[str, float]  # language share
    pred_labels: np.ndarray | None  # (V,) predicted label index on validation
    val_probs: np.ndarray | None  # (V, C) validation probabilities, in label order
    val_labels: np.ndarray | None  # (V,) true label index
    generation: dict | None  # {"prompt_tokens": [...], "nll": [...] | None} for causal LMs


def served_name(path: str | Path) -> str:
    """The name `tunelab serve PATH` logs under: the folder's name (the run's for model/)."""
    p = Path(str(path).rstrip("/"))
    return p.parent.name if p.name in ("model", "adapter") and p.parent.name else p.name


def run_dir_of(path: str | Path, model_dir: Path) -> Path | None:
    """The run folder holding config.yaml: PATH itself (a run dir) or the model's parent."""
    for candidate in (Path(path), model_dir.parent):
        if (candidate / "config.yaml").is_file():
            return candidate
    return None


def load_reference(model_dir: str | Path, refresh: bool = False) -> Reference:
    """The model's reference, from the cache beside it when that is newer than the model
    files, else computed from the run (and cached). TunelabError when the model's run config
    or data cannot be found."""
    from tunelab.methods.loading import resolve_model_dir

    folder = resolve_model_dir(model_dir)
    if not refresh:
        cached = read_cache(folder)
        if cached is not None:
            return cached
    model_mtime = _newest_model_file(folder)  # before: a change while computing is seen later
    ref = compute_reference(model_dir)
    write_cache(folder, ref, model_mtime)
    return ref


# -- cache --------------------------------------------------------------------------------


def _newest_model_file(folder: Path) -> float:
    times = [
        p.stat().st_mtime
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("monitor_reference")
    ]
    return max(times, default=0.0)


def read_cache(folder: Path) -> Reference | None:
    """The cached reference, or None when absent, stale (a model file changed since) or
    unreadable."""
    npz, meta = folder / CACHE_NPZ, folder / CACHE_JSON
    if not (npz.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("cache_version") != CACHE_VERSION:
            return None
        if _newest_model_file(folder) > float(info.get("model_mtime", 0.0)):
            return None  # a model file changed since the reference was computed
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: (data[k] if k in data.files else None) for k in ARRAYS}
    except (OSError, ValueError, KeyError):
        return None
    fields = {k: info[k] for k in ("model", "task", "kind", "labels", "languages", "generation")}
    return Reference(**fields, **arrays)


def write_cache(folder: Path, ref: Reference, model_mtime: float | None = None) -> None:
    """monitor_reference.npz + .json, each written atomically (npz first: the json marks it
    complete); the json keeps the newest model file's time the reference was computed from."""
    import io

    from tunelab.atomic import atomic_write_json

    if model_mtime is None:
        model_mtime = _newest_model_file(folder)

    buf = io.BytesIO()
    arrays = {k: getattr(ref, k) for k in ARRAYS if getattr(ref, k) is not None}
    np.savez_compressed(buf, **arrays)
    tmp = folder / (CACHE_NPZ + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(folder / CACHE_NPZ)
    info = {k: v for k, v in asdict(ref).items() if k not in ARRAYS}
    info |= {"cache_version": CACHE_VERSION, "model_mtime": model_mtime}
    atomic_write_json(folder / CACHE_JSON, info)


# -- computing ----------------------------------------------------------------------------


def _subsample(n: int, cap: int, seed: int = SEED) -> list[int]:
    index = list(range(n))
    if n > cap:
        index = sorted(random.Random(seed).sample(index, cap))
    return index


def _run_config(path: str | Path, model_dir: Path):
    from tunelab.config.legacy import read_run_config

    run_dir = run_dir_of(path, model_dir)
    if run_dir is None:
        raise TunelabError(
            f"{path}: no run config.yaml in {Path(path)} or {model_dir.parent}; the monitor's "
            "reference is computed from the run the model was trained by (its data files)"
        )
    return read_run_config(run_dir / "config.yaml")


def compute_reference(path: str | Path) -> Reference:
    """The reference of the model at `path` (a run or model folder), computed from its run."""
    from tunelab.methods.loading import load_trained, read_meta, resolve_model_dir
    from tunelab.tasks import get_task

    model_dir = resolve_model_dir(path)
    meta = read_meta(model_dir)
    if meta is None:
        raise TunelabError(f"{model_dir}: no tunelab.json; not a model tunelab trained")
    cfg = _run_config(path, model_dir)
    if cfg.task != meta.task:
        raise TunelabError(
            f"{model_dir}: tunelab.json says task '{meta.task}' but the run config says "
            f"'{cfg.task}'"
        )
    spec = get_task(meta.task)
    if spec.serve_kind is None:
        raise TunelabError(f"{model_dir}: a '{meta.task}' model is not served; nothing to monitor")
    data = spec.load_data(cfg)  # DataError naming a missing/broken file
    for split in ("train", "validation"):
        if split not in data.splits:
            raise TunelabError(f"{model_dir}: the run's data has no {split} split")
    trained = load_trained(model_dir)
    name = served_name(path)
    if spec.head_kind == "sequence":
        return _classifier(name, meta.task, trained, data)
    if spec.head_kind == "causal":
        return _causal(name, meta.task, trained, data, cfg)
    return _encoded(name, meta.task, spec.serve_kind, trained, data)


def _languages(texts: list[str]) -> dict[str, float]:
    from tunelab.monitor.health import languages

    return {str(k): float(v) for k, v in languages(texts).items()}


def _pick(values, index):
    return None if values is None else [values[i] for i in index]


def _classifier(name: str, task: str, trained, data) -> Reference:
    """Encoders with a class head: predict_texts(embed=True), the served forward pass."""
    from tunelab.inference.forward import predict_texts

    train, val = data.splits["train"], data.splits["validation"]
    ti = _subsample(len(train), MAX_TRAIN)
    vi = _subsample(len(val), MAX_VALIDATION)
    texts = _pick(train.texts, ti) + _pick(val.texts, vi)
    pairs = None
    if train.pairs is not None:
        pairs = _pick(train.pairs, ti) + _pick(val.pairs, vi)
    rows = predict_texts(trained, texts, pairs, embed=True)
    names = list(trained.labels.names)
    val_rows = rows[len(ti) :]
    probs = np.array([[r["scores"][n] for n in names] for r in val_rows], dtype=np.float64)
    multi = trained.labels.multi_label
    if not multi:
        probs = probs / probs.sum(axis=1, keepdims=True)  # the 6-digit rounding of the scores
    y = np.asarray(val.y)
    return Reference(
        model=name,
        task=task,
        kind="classify",
        labels=names,
        embeddings=np.stack([r["embedding"] for r in rows]).astype(np.float32),
        n_tokens=np.array([r["n_tokens"] for r in rows], dtype=np.int64),
        n_unk=np.array([r["n_unk"] for r in rows], dtype=np.int64),
        languages=_languages(texts),
        pred_labels=None if multi else probs.argmax(axis=1).astype(np.int64),
        val_probs=probs.astype(np.float32),
        val_labels=None if multi or y.ndim != 1 else y[vi].astype(np.int64),
        generation=None,
    )


def _inputs(split) -> tuple[list[str], list[str] | None]:
    """(texts, pairs) of a split as serving receives them: a tagger's words joined by spaces,
    a question answerer's question with its context, a seq2seq model's sources."""
    if hasattr(split, "words"):
        return [" ".join(w) for w in split.words], None
    if hasattr(split, "examples"):
        return [e.question for e in split.examples], [e.context for e in split.examples]
    if hasattr(split, "sources"):
        return list(split.sources), None
    return list(split.texts), getattr(split, "pairs", None)


def _from_ids(name, task, kind, trained, ids_list, texts, generation=None) -> Reference:
    from tunelab.inference.embedding import embed_token_ids, unk_counts

    return Reference(
        model=name,
        task=task,
        kind=kind,
        labels=None,
        embeddings=embed_token_ids(trained.model, ids_list).astype(np.float32),
        n_tokens=np.array([len(ids) for ids in ids_list], dtype=np.int64),
        n_unk=np.array(unk_counts(trained.tokenizer, ids_list), dtype=np.int64),
        languages=_languages(texts),
        pred_labels=None,
        val_probs=None,
        val_labels=None,
        generation=generation,
    )


def _encoded(name: str, task: str, kind: str, trained, data) -> Reference:
    """Taggers, question answerers, seq2seq: the served log's embedding (the mean input
    embedding of the tokens, serving/prediction_log.py) and input health only."""
    texts, pairs = [], []
    for split, cap in (("train", MAX_TRAIN), ("validation", MAX_VALIDATION)):
        t, p = _inputs(data.splits[split])
        index = _subsample(len(t), cap)
        texts += _pick(t, index)
        pairs = None if p is None or pairs is None else pairs + _pick(p, index)
    tok = trained.tokenizer
    ids_list = [
        tok(t, p, truncation=True)["input_ids"] for t, p in zip(texts, pairs or [None] * len(texts))
    ]
    return _from_ids(name, task, kind, trained, ids_list, texts)


def _prompt(record: dict, split, cfg) -> str | list[dict]:
    """A training row's prompt: the conversation before its first assistant turn (a chat
    row), or the row's text (raw text continued pretraining)."""
    from tunelab.tasks.causal_lm_data import to_messages

    if split.fmt == "text":
        return str(record.get("text", ""))
    msgs = to_messages(record, split.fmt, getattr(cfg.data, "fields", None), file=split.file)
    first = next(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[:first] or [{"role": "user", "content": ""}]


def _causal(name: str, task: str, trained, data, cfg) -> Reference:
    """Causal LMs: prompts rendered as the chat route renders them (the chat template with a
    generation prompt), embedded as the log embeds prompts."""
    tok = trained.tokenizer
    chat = bool(getattr(tok, "chat_template", None))
    texts, ids_list = [], []
    for split_name, cap in (("train", MAX_TRAIN), ("validation", MAX_VALIDATION)):
        split = data.splits[split_name]
        for i in _subsample(len(split), cap):
            prompt = _prompt(split.records[i], split, cfg)
            if chat and not isinstance(prompt, str):
                rendered = tok.apply_chat_template(
                    prompt, tokenize=False, add_generation_prompt=True
                )
                ids = tok(rendered, add_special_tokens=False)["input_ids"]
                texts.append(tok.decode(ids))  # what the chat route logs as the text
            else:
                prompt = (
                    prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
                )
                ids = tok(prompt)["input_ids"]
                texts.append(prompt)
            ids_list.append(list(ids))
    generation = {"prompt_tokens": [len(ids) for ids in ids_list], "nll": None}
    return _from_ids(name, task, "generate", trained, ids_list, texts, generation)
