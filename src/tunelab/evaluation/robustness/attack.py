"""Robustness of a classifier to small, label-preserving edits of its input.

Four attacks on the (first) text of each row, deterministic under a seed:

- `typo`: character typos (swap / drop / insert / keyboard neighbour) in some words;
- `synonym`: WordNet/MyThes synonym swaps (the EDA edit of data/augment.py);
- `drop`: random word deletion (EDA's);
- `greedy`: a TextFooler-style search (Jin et al. 2020): rank content words by how much
  deleting each lowers the true class's probability, then, most important first, put in the
  synonym that lowers it most, until the prediction flips or `budget` words are changed.
  Only rows the model gets right are attacked (the others are wrong already).

Per attack: accuracy under attack, attack success rate (share of the originally correct rows
whose prediction flips), mean words changed (over the rows the attack edited) and a few
examples. The attacks only need `predict_proba(texts, pairs) -> (N, C)`, so any model fits.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from tunelab.data.augment import STOPWORDS, match_case, word_tokens
from tunelab.data.batching import Features
from tunelab.errors import TunelabError
from tunelab.evaluation.read_file import read_eval_split
from tunelab.evaluation.report.columns import column_hint
from tunelab.evaluation.robustness import perturb
from tunelab.inference.forward import logits_for
from tunelab.tasks import get_task
from tunelab.tasks.classification import predict

ATTACKS = ("typo", "synonym", "drop", "greedy")
Proba = Callable[[list[str], list[str] | None], np.ndarray]


def _row_rng(seed: int, attack: str, row: int) -> random.Random:
    """One stream per (seed, attack, row): a row's edit does not depend on which rows ran."""
    return random.Random(f"{seed}:{attack}:{row}")


def greedy_attack(
    proba: Proba, text: str, pair: str | None, label: int, thesaurus, budget: int, candidates: int
) -> tuple[str, int]:
    """(perturbed text, words changed) after a greedy synonym-substitution attack on `text`."""
    toks = word_tokens(text)

    def pairs(n: int) -> list[str] | None:
        return None if pair is None else [pair] * n

    def join(ts) -> str:
        return " ".join(map(str, ts))

    pos = [i for i, t in enumerate(toks) if t.core and t.core.lower() not in STOPWORDS]
    if not pos:
        return text, 0
    without = [join(t for j, t in enumerate(toks) if j != i) for i in pos]
    p_del = proba(without, pairs(len(without)))[:, label]  # low: the word mattered
    current = float(proba([text], pairs(1))[0, label])
    changed = 0
    for k in np.argsort(p_del, kind="stable"):
        if changed >= budget:
            break
        i = pos[int(k)]
        syns = thesaurus.synonyms(toks[i].core)[:candidates]
        if not syns:
            continue
        word = toks[i].core
        texts = []
        for s in syns:
            toks[i].core = match_case(s, word)
            texts.append(join(toks))
        p = proba(texts, pairs(len(texts)))  # (K, C)
        flips = np.flatnonzero(p.argmax(axis=1) != label)
        best = int(flips[np.argmin(p[flips, label])]) if len(flips) else int(np.argmin(p[:, label]))
        if not len(flips) and p[best, label] >= current:
            toks[i].core = word  # no synonym helps: keep the word, spend no budget
            continue
        toks[i].core, current = match_case(syns[best], word), float(p[best, label])
        changed += 1
        if len(flips):
            break
    return join(toks), changed


def attack_rows(
    proba: Proba,
    texts: list[str],
    pairs: list[str] | None,
    y: np.ndarray,
    attacks: list[str] | tuple[str, ...] = ATTACKS,
    *,
    seed: int = 0,
    rate: float = 0.2,
    budget: float = 0.25,
    candidates: int = 20,
    thesaurus=None,
    label_names: list[str] | None = None,
    examples: int = 3,
    progress: bool = False,
) -> dict:
    """Run `attacks` on rows (texts, pairs, y: (N,) class ids); figures per attack.

    rate: share of words the random attacks edit (at least one); budget: the greedy attack
    changes at most max(1, round(budget * words)) words; candidates: synonyms tried per word.
    """
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise TunelabError(f"--attacks: unknown attack(s) {unknown}; choose from {list(ATTACKS)}")
    if thesaurus is None and any(a in ("synonym", "greedy") for a in attacks):
        from tunelab.data.thesaurus import default_thesaurus

        thesaurus = default_thesaurus()
    y = np.asarray(y)
    names = label_names or [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    before = proba(texts, pairs).argmax(axis=1)
    correct = before == y
    out = {
        "n": len(texts),
        "seed": seed,
        "clean_accuracy": float(correct.mean()) if len(y) else 0.0,
        "attacks": {},
    }
    for attack in attacks:
        new, changed, edited = list(texts), np.zeros(len(texts), dtype=np.int64), []
        rows = range(len(texts))
        if progress:
            from tqdm.auto import tqdm

            rows = tqdm(rows, desc=attack, unit="row", leave=False)
        for i in rows:
            rng = _row_rng(seed, attack, i)
            if attack == "typo":
                new[i], changed[i] = perturb.typos(texts[i], rate, rng)
            elif attack == "synonym":
                new[i], changed[i] = perturb.synonyms(texts[i], rate, rng, thesaurus)
            elif attack == "drop":
                new[i], changed[i] = perturb.word_drops(texts[i], rate, rng)
            elif correct[i]:  # greedy: only rows the model gets right
                n_words = sum(1 for t in word_tokens(texts[i]) if t.core)
                words = max(1, round(budget * n_words))
                pair = None if pairs is None else pairs[i]
                new[i], changed[i] = greedy_attack(
                    proba, texts[i], pair, int(y[i]), thesaurus, words, candidates
                )
            if attack != "greedy" or correct[i]:
                edited.append(i)
        after = proba(new, pairs).argmax(axis=1)
        flipped = correct & (after != before)
        shown = [i for i in edited if flipped[i]] + [i for i in edited if not flipped[i]]
        out["attacks"][attack] = {
            "accuracy": float((after == y).mean()) if len(y) else 0.0,
            "success_rate": float(flipped.sum() / max(correct.sum(), 1)),
            "flipped": int(flipped.sum()),
            "attacked": int(correct.sum()),
            "mean_words_changed": float(changed[edited].mean()) if edited else 0.0,
            "examples": [
                {
                    "row": i,
                    "label": names[int(y[i])],
                    "original": texts[i],
                    "perturbed": new[i],
                    "before": names[int(before[i])],
                    "after": names[int(after[i])],
                }
                for i in shown[:examples]
            ],
        }
    return out


def model_proba(trained, batch_size: int = 64) -> Proba:
    """predict_proba of a trained single-label classifier (softmax of its logits)."""

    def proba(texts: list[str], pairs: list[str] | None) -> np.ndarray:
        enc = trained.tokenizer(texts, pairs, truncation=True, max_length=trained.max_length)
        cols = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        logits = logits_for(
            trained.model, Features(cols), batch_size, trained.tokenizer.pad_token_id
        )
        return predict(logits, False)[1]

    return proba


def robustness_file(
    trained,
    path,
    *,
    attacks: list[str] | None = None,
    rows: int | None = None,
    seed: int = 0,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
    batch_size: int = 64,
    **settings,
) -> dict:
    """attack_rows on the first `rows` rows of a labelled file; columns default to training's."""
    if (
        get_task(trained.task).head_kind != "sequence"
        or trained.labels is None
        or trained.labels.multi_label
    ):
        raise TunelabError(
            f"robustness attacks need a single-label classification model; this one is "
            f"'{trained.task}'{' (multi-label)' if trained.labels and trained.labels.multi_label else ''}"
        )
    if rows is not None and rows <= 0:
        raise TunelabError(f"--rows: must be > 0, got {rows}")
    cols = trained.meta.columns
    given = {"text": text, "text_pair": text_pair, "label": label}
    used = {r: given[r] or cols.get(r) for r in given}
    with column_hint(given, used):
        split = read_eval_split(
            trained, path, text=text, text_pair=text_pair, label=label, rows=rows
        )
    out = attack_rows(
        model_proba(trained, batch_size),
        split.texts,
        split.pairs,
        split.y,
        list(attacks or ATTACKS),
        seed=seed,
        label_names=trained.labels.names,
        progress=True,
        **settings,
    )
    return {"data": str(path), **out}


def format_table(result: dict) -> str:
    """The figures as a plain-text table, then a few examples per attack."""
    lines = [
        f"robustness on {result.get('data', 'data')}: {result['n']} rows, seed {result['seed']}, "
        f"clean accuracy {result['clean_accuracy']:.4f}",
        f"{'attack':10s} {'accuracy':>9s} {'change':>8s} {'success':>8s} {'flipped':>9s} {'words':>6s}",
    ]
    for name, a in result["attacks"].items():
        lines.append(
            f"{name:10s} {a['accuracy']:9.4f} {a['accuracy'] - result['clean_accuracy']:+8.4f} "
            f"{a['success_rate']:8.4f} {a['flipped']:>4d}/{a['attacked']:<4d} {a['mean_words_changed']:6.2f}"
        )
    for name, a in result["attacks"].items():
        for ex in a["examples"]:
            lines.append(
                f"\n[{name}] row {ex['row']}, label {ex['label']}: {ex['before']} -> {ex['after']}"
            )
            lines.append(f"  - {ex['original']}\n  + {ex['perturbed']}")
    return "\n".join(lines)
