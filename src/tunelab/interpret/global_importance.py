"""Global token importance of a classifier: over a sample of a data file, which words push
the model toward each class.

For every sampled row and every class c, the chosen method (Integrated Gradients by default,
16 steps; gradient x input is one backward pass but ranked "worst" toward positive on the
SST-2 run, see docs/interpret.md) attributes the log-odds of c to the tokens; word pieces are merged into words (summed) and words are lower-cased. Per class
and word: `count` (occurrences), `pushes` (occurrences whose attribution toward c is
positive) and `mean` attribution. The report ranks, per class, the words seen at least
`min_count` times by mean attribution, keeping those that push toward the class on average.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from tunelab.errors import ConfigError
from tunelab.interpret import attributions as A
from tunelab.interpret.loading import Subject, load_subject


def _texts(
    data: str | Path,
    text: str | None,
    pair: str | None,
    rows: int,
    seed: int,
    subject: Subject,
    model,
) -> tuple[list[str], list[str] | None]:
    from tunelab.data import read_table, text_column
    from tunelab.errors import DataError
    from tunelab.methods.loading import read_meta

    if not Path(data).exists():
        raise DataError(str(data), "no such file")
    meta = read_meta(model) if Path(str(model)).exists() else None
    cols = meta.columns if meta is not None else {}
    df = read_table(data)
    texts = text_column(df, str(data), text or cols.get("text") or "text")
    pair = pair or cols.get("text_pair")
    pairs = text_column(df, str(data), pair) if pair else None
    index = list(range(len(texts)))
    if rows < len(index):
        index = sorted(random.Random(seed).sample(index, rows))
    return [texts[i] for i in index], [pairs[i] for i in index] if pairs else None


def global_importance(
    model: str | Path | Subject,
    data: str | Path,
    *,
    text: str | None = None,
    pair: str | None = None,
    rows: int = 200,
    top: int = 15,
    min_count: int = 3,
    method: str = "ig",
    ig_steps: int = 16,
    baseline: str = "auto",
    seed: int = 0,
    output: str | Path | None = None,
) -> dict:
    """Per class, the top words by mean attribution toward it over `rows` sampled rows of
    `data` (columns default to those the model trained on). With `output`, writes
    global.html (bar charts per class) and global.json."""
    from tunelab.interpret.explain import merge_words, prepare_output
    from tunelab.interpret.targets import prepare_classification

    if method not in A.METHODS:
        raise ConfigError(
            "--method", f"choose one of {', '.join(A.METHODS)}", method, has_value=True
        )
    for flag, v in (("--rows", rows), ("--top", top), ("--min-count", min_count)):
        if v < 1:
            raise ConfigError(flag, "must be >= 1", v, has_value=True)
    out = prepare_output(output) if output is not None else None
    subject = model if isinstance(model, Subject) else load_subject(model, "MODEL")
    if subject.kind != "sequence":
        raise ConfigError("--global", f"needs a classifier; {subject.name} is {subject.task}")
    texts, pairs = _texts(data, text, pair, rows, seed, subject, model)
    names = list(subject.labels.names)
    base_id = A.baseline_token_id(subject.tokenizer, baseline)
    stats = {c: defaultdict(lambda: [0, 0, 0.0]) for c in names}  # word -> count, pushes, sum
    for i, t in enumerate(texts):
        prep = prepare_classification(subject, t, pairs[i] if pairs else None, None)
        for c, name in enumerate(names):
            score = A.class_score(c, subject.labels.multi_label)
            r = A.attribute(subject.model, prep.inp, score, base_id, (method,), steps=ig_steps)
            for word, v in merge_words(prep.tokens, r["attributions"][method]):
                s = stats[name][word.lower()]
                s[0], s[1], s[2] = s[0] + 1, s[1] + (v > 0), s[2] + v
    classes = {}
    for name in names:
        words = [
            {"word": w, "mean": round(s[2] / s[0], 6), "count": s[0], "pushes": s[1]}
            for w, s in stats[name].items()
            if s[0] >= min_count and s[2] > 0
        ]
        classes[name] = sorted(words, key=lambda w: (-w["mean"], w["word"]))[:top]
    report = {
        "model": subject.name,
        "data": str(data),
        "rows": len(texts),
        "method": method,
        "min_count": min_count,
        "top": top,
        "classes": classes,
    }
    if out is not None:
        from tunelab.atomic import atomic_write_json, atomic_write_text
        from tunelab.interpret.render import render_global

        atomic_write_json(out / "global.json", report)
        atomic_write_text(out / "global.html", render_global(report))
        report["output"] = str(out)
    return report
