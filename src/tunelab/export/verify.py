"""Verify an export against its source: the same held-out inputs through both models.

Held-out inputs are the run's test (else validation) rows when its config.yaml names a file
that is still there, else built-in sentences. Figures: max / mean absolute logit difference,
argmax agreement (per row, per token for token classification) and, for causal LMs, greedy
token agreement. A check that misses its tolerance raises ExportError, and the orchestrator
then leaves nothing at the destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunelab.config.model_meta import ModelMeta, model_meta
from tunelab.errors import TunelabError
from tunelab.tasks import get_task

# Max |logit difference| each format may show against the source model (fp32 CPU). int8 and
# q8_0 change the numbers by design: they are held to argmax / greedy agreement instead.
TOLERANCE = {
    "merged": 1e-4,
    "adapter": 1e-4,
    "onnx": 1e-4,
    "gguf-f32": 1e-4,
    "gguf-f16": 1e-1,
}
MIN_AGREEMENT = {"int8": 0.9, "gguf-q8_0": 0.75}  # share of argmax / greedy tokens that match

SENTENCES = [
    "a gripping, beautifully shot film with a moving story",
    "the plot was dull and the actors seemed bored",
    "Angela Merkel visited Paris on Tuesday .",
    "I would not recommend this product to anyone .",
    "The service was quick and the staff were friendly .",
    "an utterly forgettable sequel",
    "John Smith works for the United Nations in Geneva .",
    "This is the best thing I have bought all year !",
    "The weather in Oslo was cold and grey .",
    "a charming , funny and surprisingly warm comedy",
    "terrible acting , worse script",
    "Maria moved from Rome to Berlin in 2019 .",
]
PROMPTS = [
    "The capital of France is",
    "Give three tips for staying healthy.",
    "Once upon a time, there was a",
    "def fibonacci(n):",
    "Translate to French: good morning",
    "The best way to learn a language is",
]


class ExportError(TunelabError):
    """An export that failed its check, or a format that does not fit the model."""


@dataclass
class Heldout:
    """Inputs for the check: texts (+ pairs), or pre-split words for token classification;
    gold label ids when they came from a labelled file."""

    source: str  # the file, or "built-in sentences"
    texts: list[str] = field(default_factory=list)
    pairs: list[str] | None = None
    words: list[list[str]] | None = None
    gold: list | None = None  # (N,) class ids, or per-row word tag ids

    def __len__(self) -> int:
        return len(self.words if self.words is not None else self.texts)


def heldout_inputs(run_dir: Path | None, meta: ModelMeta | dict, limit: int | None = 64) -> Heldout:
    """The run's test (else validation) rows, at most `limit`; built-in sentences when the
    run's config or its files are not at hand."""
    meta = model_meta(meta)
    task = get_task(meta.task)
    cfg = _run_config(run_dir)
    if cfg is not None and task.labelled and task.read_split is not None:
        for split in ("test", "validation"):
            path = getattr(cfg.data, split, None)
            if path and Path(path).is_file():
                return _read_rows(split, Path(path), cfg, meta, limit)
    if task.head_kind == "token":
        words = [s.split() for s in SENTENCES]
        return Heldout("built-in sentences", texts=SENTENCES, words=words)
    if task.head_kind == "causal":
        return Heldout("built-in prompts", texts=PROMPTS)
    return Heldout("built-in sentences", texts=SENTENCES)


def _run_config(run_dir: Path | None):
    """The run's resolved config (config.yaml beside model/), or None."""
    if run_dir is None or not (run_dir / "config.yaml").is_file():
        return None
    from tunelab.config.legacy import read_run_config

    try:
        return read_run_config(run_dir / "config.yaml")  # one written by an older tunelab too
    except TunelabError:
        return None


def _read_rows(split: str, path: Path, cfg, meta: ModelMeta, limit: int | None) -> Heldout:
    from tunelab.data.labels import LabelSpace
    from tunelab.data.readers import read_table

    df = read_table(path)
    if limit is not None and len(df) > limit:
        attrs = df.attrs
        df = df.head(limit)
        df.attrs.update(attrs)
    labels = LabelSpace.from_dict(meta.labels)
    task = get_task(cfg.task)
    rows = task.read_split(split, df, cfg.data, labels)
    if task.head_kind == "token":
        return Heldout(str(path), words=rows.words, gold=list(rows.tags))
    gold = None if labels.multi_label else list(rows.y)
    return Heldout(str(path), texts=rows.texts, pairs=rows.pairs, gold=gold)


def encode(tokenizer, held: Heldout, max_length: int, names: list[str]) -> dict[str, np.ndarray]:
    """Model inputs (N, T) int64, padded to the longest row; only the inputs in `names`."""
    if held.words is not None:
        enc = tokenizer(
            held.words,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding="longest",
            return_tensors="np",
        )
    else:
        enc = tokenizer(
            held.texts,
            held.pairs,
            truncation=True,
            max_length=max_length,
            padding="longest",
            return_tensors="np",
        )
    return {k: enc[k].astype(np.int64) for k in names if k in enc}


def torch_runner(model) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """feeds -> logits with a torch model, in inference mode on CPU."""
    import torch

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        return out.logits.float().numpy()

    return run


def batched_logits(
    run: Callable, feeds: dict[str, np.ndarray], batch_size: int = 32, by_length: bool = False
) -> np.ndarray:
    """Logits of all rows, `batch_size` rows at a time: (N, C) or (N, T, C).

    by_length: batch rows of similar length and cut each batch to its longest row (about half
    the work on SST-2-like lengths), for passes over many rows; rows come back in their order,
    per-token logits padded back to T with zeros. Off for the checks, which should see rows
    padded as a caller's batch would be."""
    n = len(next(iter(feeds.values())))
    if not by_length or "attention_mask" not in feeds:
        parts = [
            run({k: v[i : i + batch_size] for k, v in feeds.items()})
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    lengths = feeds["attention_mask"].sum(1)
    order = np.argsort(lengths, kind="stable")
    width = next(iter(feeds.values())).shape[1]
    parts = []
    for i in range(0, n, batch_size):
        rows = order[i : i + batch_size]
        cut = max(1, int(lengths[rows].max()))
        out = run({k: np.ascontiguousarray(v[rows, :cut]) for k, v in feeds.items()})
        if out.ndim == 3:  # (b, cut, C) -> (b, T, C)
            out = np.pad(out, ((0, 0), (0, width - out.shape[1]), (0, 0)))
        parts.append(out)
    if not parts:
        return np.zeros((0, 0), np.float32)
    ordered = np.concatenate(parts)
    result = np.empty_like(ordered)
    result[order] = ordered
    return result


def compare_logits(ref: np.ndarray, out: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Max / mean |ref - out| and argmax agreement; `mask` (N, T) keeps the real tokens of
    (N, T, C) logits."""
    if ref.shape != out.shape:
        raise ExportError(f"export gives logits of shape {out.shape}, the source {ref.shape}")
    if mask is not None and ref.ndim == 3:
        keep = mask.astype(bool)
        ref, out = ref[keep], out[keep]  # (K, C): the real tokens only
    diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
    agree = ref.argmax(-1) == out.argmax(-1)
    return {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "argmax_agreement": float(agree.mean()) if agree.size else 1.0,
        "n": int(agree.size),
    }


def check(name: str, figures: dict, *, greedy: bool = False) -> dict:
    """Hold `figures` to format `name`'s tolerance (TOLERANCE: logits, with every argmax or
    greedy token equal) or minimum agreement (MIN_AGREEMENT); raise ExportError on a miss."""
    key = "greedy_agreement" if greedy else "argmax_agreement"
    failures = []
    if name in TOLERANCE:
        tol = TOLERANCE[name]
        figures["tolerance"] = tol
        if not figures["max_abs_diff"] <= tol:
            failures.append(f"max |logit diff| {figures['max_abs_diff']:.3g} > {tol:g}")
        if figures[key] < 1.0:
            failures.append(f"{key} {figures[key]:.3f} < 1")
    if name in MIN_AGREEMENT:
        need = MIN_AGREEMENT[name]
        figures["min_agreement"] = need
        if figures[key] < need:
            failures.append(f"{key} {figures[key]:.3f} < {need}")
    figures["passed"] = not failures
    if failures:
        raise ExportError(
            f"{name} export failed its check against the source on {figures.get('n')} "
            f"held-out values: " + "; ".join(failures)
        )
    return figures


def lm_outputs(
    model, tokenizer, prompts: list[str], new_tokens: int = 12
) -> tuple[list, list, list]:
    """Per prompt: its token ids, the logits over it (T, V) and `new_tokens` greedy ids."""
    import torch

    ids, logits, greedy = [], [], []
    for prompt in prompts:
        x = tokenizer(prompt, return_tensors="pt")["input_ids"]  # (1, T)
        with torch.inference_mode():
            logits.append(model(input_ids=x).logits[0].float().numpy())  # (T, V)
            g = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        ids.append(x[0].tolist())
        greedy.append(g[0, x.shape[1] :].tolist())
    return ids, logits, greedy


def compare_lm(ref: tuple, out: tuple) -> dict:
    """Figures of two lm_outputs on the same prompts: logit diffs over every position and
    the share of greedy tokens (and of whole greedy continuations) that match."""
    ref_ids, ref_logits, ref_greedy = ref
    out_ids, out_logits, out_greedy = out
    figures = compare_logits(np.concatenate(ref_logits), np.concatenate(out_logits))
    same = [a == b for r, o in zip(ref_greedy, out_greedy) for a, b in zip(r, o)]
    figures.update(
        tokenizer_match=all(a == b for a, b in zip(ref_ids, out_ids)),
        greedy_agreement=float(np.mean(same)) if same else 1.0,
        greedy_identical=sum(r == o for r, o in zip(ref_greedy, out_greedy)),
        prompts=len(ref_greedy),
    )
    if not figures["tokenizer_match"]:
        raise ExportError("the exported tokenizer splits the held-out prompts differently")
    return figures
