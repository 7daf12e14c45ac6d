"""Per-row outputs of generative models (causal-lm, seq2seq) for the `tunelab eval` report.

Each row keeps what its metrics are built from, so `metric_fn(indices)` (bootstrap resamples,
slices, paired tests) recomputes everything without a model call:

- every row: the summed negative log-likelihood of its answer/target tokens and their count,
  so perplexity over any set of rows is exp(sum nll / sum tokens), the token-weighted value
  `tunelab eval` always printed (not a mean of per-row perplexities);
- the first `generate_rows` rows that have a prompt and a reference answer: the generated
  text and the per-row text statistics of metrics/text_rows.py (corpus BLEU/chrF from
  summed n-gram counts, ROUGE-L/token F1 as means of per-row values).

Generation metrics of a set of rows use only its rows that were generated for; the rest are
ignored (a set with none gives NaN). Raw-text causal-LM files have no answers, so they get
perplexity only. The row order is the file's, so models compared on one file see the same
rows.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tunelab.config.generation import GenerationConfig
from tunelab.evaluation.read_file import read_eval_split
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.scoring.seq2seq import generate_rows as decode_rows
from tunelab.inference.generation import complete
from tunelab.inference.row_nll import lm_row_nll, seq2seq_row_nll
from tunelab.metrics.text_rows import TextRows, text_rows
from tunelab.tasks.causal_lm import generation_prompts
from tunelab.tasks.causal_lm_data import encode_row
from tunelab.tasks.seq2seq import featurize

PROMPT_CHARS = 2000  # prompts/sources are shortened to this in the per-row details


def _perplexity(nll: float, tokens: int) -> dict[str, float]:
    if tokens <= 0:
        return {"loss": float("nan"), "perplexity": float("nan")}
    loss = nll / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def _length_stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": float(np.max(values)),
    }


def _build(
    name: str,
    task: str,
    nll: np.ndarray,
    tokens: np.ndarray,
    gen: dict | None,
    headline: tuple[str, ...],
) -> RowOutputs:
    """RowOutputs from per-row NLL and (optionally) the generated rows `gen`: {"rows" (G,)
    positions, "texts": TextRows, "gen_tokens", "ref_tokens", "stopped" (G,) or None, and the
    display fields "prompts", "references", "generated", "finish"}."""
    n = len(nll)
    pos = np.full(n, -1, dtype=np.int64)  # row -> its position among the generated rows
    if gen is not None:
        pos[gen["rows"]] = np.arange(len(gen["rows"]))

    def metric_fn(indices) -> dict[str, float]:
        idx = np.asarray(indices, dtype=np.int64)
        out = _perplexity(float(nll[idx].sum()), int(tokens[idx].sum()))
        if gen is None:
            return out
        g = pos[idx]
        g = g[g >= 0]  # the chosen rows that were generated for (repeats kept)
        corpus = gen["texts"].corpus(g)
        for key in headline:
            if key in corpus:
                out[key] = corpus[key]
        if gen["stopped"] is not None:
            out["stop_rate"] = float(gen["stopped"][g].mean()) if g.size else float("nan")
        out["gen_tokens_mean"] = float(gen["gen_tokens"][g].mean()) if g.size else float("nan")
        return out

    everything = np.arange(n)
    metrics: dict = {**metric_fn(everything), "tokens": int(tokens.sum())}
    details: dict = {"unscored_rows": int((tokens == 0).sum())}
    if gen is not None:
        texts: TextRows = gen["texts"]
        metrics.update(
            {k: v for k, v in texts.corpus(np.arange(len(texts))).items() if k not in metrics}
        )
        metrics["generated_rows"] = len(texts)
        details.update(_gen_details(gen))
    return RowOutputs(
        name=name, task=task, n=n, metric_fn=metric_fn, metrics=metrics, details=details
    )


def _gen_details(gen: dict) -> dict:
    texts: TextRows = gen["texts"]
    g_len, r_len = gen["gen_tokens"].astype(float), gen["ref_tokens"].astype(float)
    r4 = lambda x: round(float(x), 4)  # noqa: E731
    per_row = [
        {
            "row": int(row) + 1,  # the file's row number, as a user looks it up (1-based)
            "prompt": gen["prompts"][k][:PROMPT_CHARS],
            "reference": gen["references"][k],
            "generated": gen["generated"][k],
            "finish": gen["finish"][k] if gen["finish"] else None,
            "token_f1": r4(texts.token_f1[k]),
            "rougeL": r4(texts.rouge["rougeL"][k]),
            "bleu": r4(texts.bleu[k]),
            "gen_tokens": int(g_len[k]),
            "ref_tokens": int(r_len[k]),
        }
        for k, row in enumerate(gen["rows"])
    ]
    finish = gen["finish"] or []
    return {
        "lengths": {
            "unit": "tokens",
            "generated": _length_stats(g_len),
            "reference": _length_stats(r_len),
            "ratio": float(g_len.mean() / r_len.mean()) if len(r_len) and r_len.mean() else None,
        },
        "per_row": per_row,
        "distributions": {
            "token_f1": [p["token_f1"] for p in per_row],
            "rougeL": [p["rougeL"] for p in per_row],
            "bleu": [p["bleu"] for p in per_row],
            "gen_tokens": [p["gen_tokens"] for p in per_row],
            "ref_tokens": [p["ref_tokens"] for p in per_row],
        },
        "finish": {k: finish.count(k) for k in ("eos", "stop", "length") if finish},
        "generation": gen["settings"],
        "generate_seconds": round(gen["seconds"], 3),
    }


def _settings(trained, gen):
    """The decoding settings: `gen` when given, else the run's `generation:` (greedy default)."""
    if gen is not None:
        return gen if isinstance(gen, GenerationConfig) else GenerationConfig(**gen)
    return GenerationConfig(**(trained.meta.generation or {}))


def _count_tokens(tokenizer, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0, dtype=np.int64)
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return np.array([len(x) for x in ids], dtype=np.int64)


def causal_lm_rows(
    trained,
    path,
    name: str,
    *,
    generate_rows: int | None = 50,
    gen=None,
    batch_size: int = 16,
    text: str | None = None,
) -> RowOutputs:
    """A causal LM on every row of a chat / instruction / prompt-completion / raw-text file:
    per-row answer NLL (perplexity, loss), and for the first `generate_rows` rows (None: all,
    0: none) with a non-blank reference answer a generation from the conversation up to its
    last answer, scored against it ("token_f1", "rougeL", "bleu" 0-100, "stop_rate" 0-1:
    share ended by EOS or a stop string, "gen_tokens_mean")."""
    model, tok = trained.model, trained.tokenizer
    split = read_eval_split(trained, path, text=text)
    encoded = [
        encode_row(r, split.fmt, tok, file=split.file, row_number=row)
        for r, row in zip(split.records, split.rows)
    ]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    nll, tokens = lm_row_nll(model, encoded, trained.max_length, pad_id, batch_size)
    generated = None
    prompts, refs = generation_prompts(split, generate_rows) if generate_rows != 0 else ([], [])
    rows = [i for i, r in enumerate(refs) if isinstance(r, str) and r.strip()]  # raw text: none
    if rows:
        settings = _settings(trained, gen)
        t0 = time.perf_counter()
        outs = complete(
            model,
            tok,
            [prompts[i] for i in rows],
            settings,
            batch_size=batch_size,
            progress=f"{name}: generating",
        )
        texts = [o["text"] for o in outs]
        references = [refs[i] for i in rows]
        generated = {
            "rows": np.array(rows, dtype=np.int64),
            "texts": text_rows(texts, [[r] for r in references]),
            "gen_tokens": np.array([o["tokens"] for o in outs], dtype=np.int64),
            "ref_tokens": _count_tokens(tok, references),
            "stopped": np.array([o["finish"] != "length" for o in outs], dtype=bool),
            "prompts": [prompts[i][-1]["content"] for i in rows],
            "references": references,
            "generated": texts,
            "finish": [o["finish"] for o in outs],
            "settings": settings.model_dump(),
            "seconds": time.perf_counter() - t0,
        }
    headline = ("token_f1", "rougeL", "bleu")
    return _build(name, trained.task, nll, tokens, generated, headline)


def seq2seq_rows(
    trained,
    path,
    name: str,
    *,
    generate_rows: int | None = None,
    gen=None,
    batch_size: int = 16,
    text: str | None = None,
) -> RowOutputs:
    """A seq2seq model on every (source, target) row: per-row target NLL (perplexity, loss),
    and for the first `generate_rows` rows (None: all, 0: none) the decoded output scored
    against the row's references ("bleu", "chrf", "rougeL", "token_f1", "exact_match" 0-100,
    "gen_tokens_mean"), decoded as evaluation/scoring/seq2seq.py does (`gen`, else the run's
    `generation:`; at most the target limit in new tokens)."""
    model, tok = trained.model, trained.tokenizer
    split = read_eval_split(trained, path, text=text)
    settings = _settings(trained, gen)
    split.settings.generation = settings
    features = featurize(split, tok, trained.max_length)  # eval rows: cut, never dropped
    pad_id = tok.pad_token_id
    nll, tokens = seq2seq_row_nll(model, features, pad_id, batch_size)
    n = len(features)
    rows = list(range(n if generate_rows is None else min(generate_rows, n)))
    generated = None
    if rows:
        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            texts = decode_rows(model, features, rows, batch_size, pad_id)
        finally:
            model.train(was_training)
        refs = [features.references[i] for i in rows]
        generated = {
            "rows": np.array(rows, dtype=np.int64),
            "texts": text_rows(texts, refs),
            "gen_tokens": _count_tokens(tok, texts),
            "ref_tokens": _count_tokens(tok, [r[0] for r in refs]),
            "stopped": None,
            "prompts": [features.sources[i] for i in rows],
            "references": [r[0] for r in refs],
            "generated": texts,
            "finish": None,
            "settings": settings.model_dump(),
            "seconds": time.perf_counter() - t0,
        }
    headline = ("bleu", "chrf", "rougeL", "token_f1", "exact_match")
    return _build(name, trained.task, nll, tokens, generated, headline)
