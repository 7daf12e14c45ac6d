"""`explain`: token attributions of texts under one model (and a compared one), written as a
self-contained HTML page and JSON.

For each text the model decides (class / entities / generated span) and each chosen method
attributes that decision's score to the input tokens. With `compare`, a second model
explains the *same* decision (the first model's class, entities or span), so the two columns
of the page differ only by the model: "what changed" between base and fine-tuned.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.errors import ConfigError, RunDirError
from tunelab.interpret import attributions as A
from tunelab.interpret import targets as T
from tunelab.interpret.loading import Subject, check_compare, load_subject

OURS = ("explain.html", "explain.json", "global.html", "global.json")
SCORES = ("log_odds", "log_prob", "prob", "logit")


def check_methods(methods) -> tuple[str, ...]:
    methods = tuple(methods)
    bad = [m for m in methods if m not in A.METHODS]
    if bad or not methods:
        raise ConfigError(
            "--method",
            f"unknown method {', '.join(bad) or '(none)'}; choose from {', '.join(A.METHODS)}",
        )
    return methods


def default_output(model: str | Path) -> Path:
    """runs/explain-<name>: the run's folder name (a run's model/ folder names its run)."""
    p = Path(str(model).rstrip("/"))
    name = p.parent.name if p.name == "model" and p.parent.name else p.name
    return Path("runs") / f"explain-{name or 'model'}"


def prepare_output(output: str | Path) -> Path:
    """The output folder; refuse one holding files that are not explain's own."""
    out = Path(output)
    if out.exists():
        if not out.is_dir():
            raise RunDirError(f"--output {out}: exists and is not a folder")
        other = [
            f.name
            for f in out.iterdir()
            if f.name not in OURS and not f.name.startswith(("attention", "."))
        ]
        if other:
            raise RunDirError(
                f"--output {out}: holds other files ({', '.join(sorted(other)[:3])}"
                "); give an empty or new folder"
            )
    return out  # created when the files are written


def _prepare(subject: Subject, text: str, pair, opts: dict, decision=None) -> T.Prepared:
    if subject.kind == "sequence":
        return T.prepare_classification(
            subject, text, pair, opts["target"], decision, opts["score"]
        )
    if subject.kind == "token":
        return T.prepare_tokens(
            subject, text, opts["target"], opts["word"], decision, opts["score"]
        )
    return T.prepare_causal(subject, text, opts["target"], opts["max_new_tokens"], decision)


def _top(tokens: list[dict], values: list[float], k: int = 5) -> list[list]:
    """The k words with the largest |attribution| (sub-tokens merged into words)."""
    words = merge_words(tokens, values)
    return [[w, round(v, 6)] for w, v in sorted(words, key=lambda x: -abs(x[1]))[:k]]


def merge_words(tokens: list[dict], values: list[float]) -> list[tuple[str, float]]:
    """(word, summed attribution) over non-special tokens; a token without a space before
    it continues the previous word (word pieces, BPE continuations)."""
    out: list[list] = []
    glue = False
    for i, t in enumerate(tokens):
        v = values[i]
        if t["special"]:
            glue = False
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        trailing = _punct(t["text"]) and (nxt is None or nxt["space"] or nxt["special"])
        if "\u21b5" in t["text"]:  # a newline is a word of its own, and ends the word
            out.append([t["text"], v])
            glue = False
            continue
        if glue and not t["space"] and out and not trailing:
            out[-1][0] += t["text"]
            out[-1][1] += v
        else:
            out.append([t["text"], v])
        glue = True
    return [(w, float(v)) for w, v in out]


def _punct(text: str) -> bool:
    return bool(text) and not any(c.isalnum() for c in text)


def explain_one(subject: Subject, prep: T.Prepared, opts: dict) -> dict:
    """Attributions of every unit of one prepared input, under the chosen methods."""
    n = len(prep.tokens)
    base_id = A.baseline_token_id(subject.tokenizer, opts["baseline"])
    batch = opts["batch_size"] or (
        max(1, 2048 // prep.inp.length) if subject.kind == "causal" else None
    )
    units = []
    for unit in prep.units:
        r = A.attribute(
            subject.model,
            prep.inp,
            unit.score,
            base_id,
            opts["methods"],
            steps=opts["ig_steps"],
            batch_size=batch,
        )
        r["attributions"] = {m: v[:n] for m, v in r["attributions"].items()}
        r["top"] = {m: _top(prep.tokens, v) for m, v in r["attributions"].items()}
        entry = {"name": unit.name, **unit.info, **r}
        if "ig" in r["attributions"]:  # a sharp (saturated) model needs more steps
            gap = abs(r["score"] - r["baseline_score"])
            if abs(r["convergence_delta"]) > 0.05 * max(gap, 1e-3):
                entry["warning"] = (
                    f"IG is off by {r['convergence_delta']:+.3g} of {gap:.3g}; raise --ig-steps"
                )
        if unit.per_token is not None and opts["per_token_method"]:
            k = len(unit.info["span_tokens"])
            pt = A.attribute(
                subject.model,
                prep.inp,
                unit.per_token,
                base_id,
                (opts["per_token_method"],),
                steps=opts["ig_steps"],
                outputs=k,
                batch_size=batch,
            )
            m = opts["per_token_method"]
            matrix = [row[:n] for row in pt["attributions"][m]]  # (G, P)
            entry["per_token"] = {
                "method": m,
                "matrix": matrix,
                "score": pt["score"],
                "baseline_score": pt["baseline_score"],
            }
        units.append(entry)
    return {
        "model": subject.name,
        "tokens": prep.tokens,
        "prediction": prep.prediction,
        "units": units,
    }


def explain(
    model: str | Path | Subject,
    texts: list[str],
    *,
    pairs: list[str] | None = None,
    methods=A.METHODS,
    target: str | None = None,
    word: str | int | None = None,
    compare: str | Path | Subject | None = None,
    attention: bool = False,
    output: str | Path | None = None,
    ig_steps: int = 50,
    score: str = "log_odds",
    baseline: str = "auto",
    max_new_tokens: int = 32,
    per_token_method: str | None = "grad_x_input",
    batch_size: int | None = None,
) -> dict:
    """Explain `texts` (with `pairs` for a sentence-pair classifier) under `model`; with
    `output`, write explain.html and explain.json there (and attention-<i>.* when
    `attention`). Returns the report that explain.json holds."""
    methods = check_methods(methods)
    if score not in SCORES:
        raise ConfigError("--score", f"choose from {', '.join(SCORES)}", score, has_value=True)
    if ig_steps < 2:
        raise ConfigError("--ig-steps", "must be >= 2", ig_steps, has_value=True)
    if per_token_method not in (None, "ig", "grad_x_input", "occlusion"):
        raise ConfigError(
            "--per-token-method",
            "choose from ig, grad_x_input, occlusion",
            per_token_method,
            has_value=True,
        )
    if not texts:
        raise ConfigError("--text", "give at least one text")
    if pairs is not None and len(pairs) != len(texts):
        raise ConfigError("--pair", f"{len(pairs)} pairs for {len(texts)} texts; give one each")
    out = prepare_output(output) if output is not None else None
    subject = model if isinstance(model, Subject) else load_subject(model, "MODEL")
    if pairs is not None and subject.kind != "sequence":
        raise ConfigError("--pair", f"a {subject.task} model takes single texts")
    opts = {
        "methods": methods,
        "target": target,
        "word": word,
        "score": score,
        "baseline": baseline,
        "ig_steps": ig_steps,
        "max_new_tokens": max_new_tokens,
        "per_token_method": per_token_method if subject.kind == "causal" else None,
        "batch_size": batch_size,
    }
    if target is not None and subject.kind != "causal":
        from tunelab.interpret.loading import label_index

        label_index(subject, target)  # fail before any work, naming --target and the labels
    other = None
    if compare is not None:
        other = compare if isinstance(compare, Subject) else load_subject(compare, "--compare")
        check_compare(subject, other)
    report = {
        "model": subject.name,
        "task": subject.task,
        "methods": list(methods),
        "compare": other.name if other else None,
        "settings": {
            "ig_steps": ig_steps,
            "score": score,
            "baseline": baseline,
            "baseline_token": subject.tokenizer.convert_ids_to_tokens(
                A.baseline_token_id(subject.tokenizer, baseline)
            ),
            "target": target,
            "word": word,
        },
        "texts": [],
    }
    attention_files = []
    for i, text in enumerate(texts):
        pair = pairs[i] if pairs else None
        prep = _prepare(subject, text, pair, opts)
        entry = {"text": text, "pair": pair, **explain_one(subject, prep, opts)}
        if other is not None:
            prep2 = _prepare(other, text, pair, opts, decision=prep.decision)
            entry["compare"] = explain_one(other, prep2, opts)
            if subject.kind == "causal":  # what the compared model says by itself
                own = _prepare(other, text, None, {**opts, "target": None})
                entry["compare"]["own_generation"] = own.prediction["generated"]
        if attention:
            attention_files.append((i, prep.text_for_attention, pair))
        report["texts"].append(entry)
    if out is not None:
        write_report(report, out, subject, attention_files)
    return report


def write_report(report: dict, out: Path, subject: Subject, attention_files: list) -> None:
    """Attention files first (through interpret.attention), then JSON, then the HTML that
    links them; each file is written to a temp name and renamed."""
    from tunelab.atomic import atomic_write_json, atomic_write_text
    from tunelab.interpret.render import render_report

    if attention_files:
        from tunelab.interpret.attention import attention_maps
        from tunelab.interpret.attention_files import write_attention

        for i, text, pair in attention_files:
            maps = attention_maps(subject.model, subject.tokenizer, text, pair)
            paths = write_attention(maps, out, stem=f"attention-{i + 1}")
            report["texts"][i]["attention"] = {k: Path(v).name for k, v in paths.items()}
    atomic_write_json(out / "explain.json", report)
    atomic_write_text(out / "explain.html", render_report(report))
    report["output"] = str(out)
