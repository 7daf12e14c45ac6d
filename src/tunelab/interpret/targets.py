"""What to explain, per task: tokenize one input, let the model decide (class, entities,
generated span), and build the scores to attribute ("units").

- classification: the predicted class (or `target`), scored by its log-probability.
- token classification: each predicted entity (or the word `word`), scored by the summed
  log-probability of its words' tags on their first sub-tokens.
- causal LM: the greedy continuation of the (chat-templated) prompt, or the `target` text,
  scored by its log-likelihood; plus a per-generated-token score vector.

A `decision` taken by one model (label, entities, span) can be handed to another model's
prepare (the `--compare` model), so both explain the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tunelab.errors import ConfigError
from tunelab.interpret import attributions as A
from tunelab.interpret.loading import Subject, label_index


@dataclass
class Unit:
    name: str
    score: Callable
    per_token: Callable | None = None  # (B, G) scores of a generated span
    info: dict = field(default_factory=dict)


@dataclass
class Prepared:
    inp: A.ModelInput
    tokens: list[dict]  # display tokens of the attributed part (the prompt of a causal LM)
    prediction: dict
    units: list[Unit]
    decision: object = None
    text_for_attention: str = ""


def display_tokens(tokenizer, ids, offsets, sources, seq_ids) -> list[dict]:
    """[{"text", "space", "special"}] per token: the token's own characters from its source
    string (so "##ing" shows as "ing" glued to its word, "Ġworld" as "world" after a space)."""
    special = set(tokenizer.all_special_ids)
    out, prev_end = [], {}
    for tid, (s, e), sid in zip(ids, offsets, seq_ids):
        if tid in special or sid is None or e <= s:
            out.append(
                {"text": tokenizer.convert_ids_to_tokens(int(tid)), "space": True, "special": True}
            )
            continue
        src = sources[sid]
        piece = src[s:e]
        gap = src[prev_end.get(sid, 0) : s] if sid in prev_end else " "
        text = piece.strip() or piece.replace("\n", "\u21b5").replace(" ", "\u2423")
        out.append({"text": text, "space": bool(gap) or piece[:1].isspace(), "special": False})
        prev_end[sid] = e
    return out


def _tensor_input(enc, keys=("attention_mask", "token_type_ids")) -> tuple:
    import torch

    ids = torch.tensor([enc["input_ids"]])
    extra = {k: torch.tensor([enc[k]]) for k in keys if k in enc}
    return ids, extra


def _attributable(tokenizer, ids) -> object:
    import torch

    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    return ~torch.isin(ids[0], special)


def prepare_classification(
    subject: Subject,
    text: str,
    pair: str | None,
    target: str | None,
    decision: str | None = None,
    score_kind: str = "log_odds",
) -> Prepared:
    tok = subject.tokenizer
    enc = tok(
        text, pair, truncation=True, max_length=subject.max_length, return_offsets_mapping=True
    )
    ids, extra = _tensor_input(enc)
    inp = A.ModelInput(ids, extra, _attributable(tok, ids))
    probs = A.scores(subject.model, inp, lambda z: z)[0]  # (C,) logits
    multi = subject.labels.multi_label
    probs = probs.sigmoid() if multi else probs.softmax(-1)
    names = list(subject.labels.names)
    pred = int(probs.argmax())
    idx = label_index(subject, decision or target)
    idx = pred if idx is None else idx
    tokens = display_tokens(
        tok, enc["input_ids"], enc["offset_mapping"], [text, pair or ""], enc.sequence_ids()
    )
    prediction = {
        "label": names[pred],
        "score": round(float(probs[pred]), 6),
        "scores": {n: round(float(p), 6) for n, p in zip(names, probs)},
    }
    unit = Unit(
        names[idx],
        A.class_score(idx, multi, score_kind),
        info={"target": names[idx], "probability": round(float(probs[idx]), 6)},
    )
    return Prepared(inp, tokens, prediction, [unit], names[idx], text)


def _word_index(word: str | int, words: list[str]) -> int:
    if isinstance(word, int) or str(word).isdigit():
        i = int(word)
        if 0 <= i < len(words):
            return i
    elif word in words:
        return words.index(word)
    raise ConfigError(
        "--word", f"'{word}' is not a word (or 0-based index) of the text; words: {' '.join(words)}"
    )


def prepare_tokens(
    subject: Subject,
    text: str,
    target: str | None,
    word: str | int | None,
    decision: list | None = None,
    score_kind: str = "log_odds",
) -> Prepared:
    """NER: one unit per predicted entity, or for `word` alone; `target` names a tag."""
    from tunelab.evaluation.scoring.entities import bio_entities, split_words
    from tunelab.tasks.token_classification import first_subtokens

    tok, names = subject.tokenizer, list(subject.labels.names)
    spans = split_words(text)
    words = [w for w, _, _ in spans]
    if not words:
        raise ConfigError("--text", "an empty text has no words to tag")
    enc = tok(
        [words],
        is_split_into_words=True,
        truncation=True,
        max_length=subject.max_length,
        return_offsets_mapping=True,
    )
    row = {k: enc[k][0] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    ids, extra = _tensor_input(row)
    inp = A.ModelInput(ids, extra, _attributable(tok, ids))
    word_ids = enc.word_ids(0)
    firsts = first_subtokens(word_ids)  # position of each visible word's first sub-token
    probs = A.scores(subject.model, inp, lambda z: z)[0].softmax(-1)  # (T, C)
    tags = [names[int(probs[p].argmax())] for p in firsts]
    tag_idx = label_index(subject, target)
    if decision is None:
        if word is not None:
            w = _word_index(word, words)
            decision = [("word", w, w + 1)]
        else:
            decision = bio_entities(tags)
    units = []
    for type_, s, e in decision:
        pos = [firsts[w] for w in range(s, min(e, len(firsts)))]
        if not pos:
            continue
        chosen = [tag_idx if tag_idx is not None else int(probs[p].argmax()) for p in pos]
        label = names[chosen[0]] if type_ == "word" else type_
        units.append(
            Unit(
                f"{label}: {' '.join(words[s:e])}",
                A.tag_score(pos, chosen, score_kind),
                info={"words": [s, e], "tags": [names[c] for c in chosen]},
            )
        )
    tokens = display_tokens(tok, row["input_ids"], enc["offset_mapping"][0], words, word_ids)
    prediction = {
        "words": words[: len(tags)],
        "tags": tags,
        "entities": [
            {"type": t, "text": " ".join(words[s:e]), "words": [s, e]}
            for t, s, e in bio_entities(tags)
        ],
    }
    return Prepared(inp, tokens, prediction, units, decision, text)


def render_prompt(tokenizer, prompt: str) -> tuple[str, bool]:
    """The prompt as the model sees it (chat template with a generation prompt when the
    tokenizer has one), and whether the template was used."""
    if getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), True
    return prompt, False


def greedy_span(subject: Subject, ids, mask, max_new_tokens: int) -> list[int]:
    """Greedy continuation ids, cut before the first end-of-turn/eos token."""
    import torch

    model, tok = subject.model, subject.tokenizer
    eos = {tok.eos_token_id}
    conf = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos |= set(conf) if isinstance(conf, (list, tuple)) else {conf}
    eos = sorted(i for i in eos if i is not None)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id,
        )
    new = out[0, ids.shape[1] :].tolist()
    end = next((i for i, t in enumerate(new) if t in eos), len(new))
    return new[:end]


def prepare_causal(
    subject: Subject,
    prompt: str,
    target: str | None,
    max_new_tokens: int = 32,
    decision: dict | None = None,
) -> Prepared:
    """The prompt's tokens explain the span: the greedy continuation, `target` (a text to
    score), or a decision from another model (its span text, or ids with the same vocab)."""
    import torch

    tok = subject.tokenizer
    rendered, chat = render_prompt(tok, prompt)
    enc = tok(
        rendered,
        add_special_tokens=not chat,
        truncation=True,
        max_length=subject.max_length,
        return_offsets_mapping=True,
    )
    p_ids = torch.tensor([enc["input_ids"]])
    if decision is not None and decision.get("vocab") == len(tok):
        span = list(decision["ids"])
    elif decision is not None or target is not None:
        text = decision["text"] if decision is not None else target
        span = tok(text, add_special_tokens=False)["input_ids"]
    else:
        span = greedy_span(subject, p_ids, torch.ones_like(p_ids), max_new_tokens)
    if not span:
        raise ConfigError(
            "--target" if target is not None else "--max-new-tokens",
            "the span to explain is empty (the model ended its turn at once)",
        )
    p = p_ids.shape[1]
    ids = torch.cat([p_ids, torch.tensor([span])], dim=1)  # (1, P + G)
    attributable = _attributable(tok, ids)
    attributable[p:] = False  # the span itself is held fixed
    inp = A.ModelInput(ids, {"attention_mask": torch.ones_like(ids)}, attributable)
    tokens = display_tokens(tok, enc["input_ids"], enc["offset_mapping"], [rendered], [0] * p)
    span_text = tok.decode(span, skip_special_tokens=True)
    span_tokens = [
        t["text"]
        for t in display_tokens(
            tok, span, _offsets(tok, span), [_joined(tok, span)], [0] * len(span)
        )
    ]
    prediction = {
        "generated": span_text,
        "tokens": span_tokens,
        "source": "target" if target is not None else "greedy",
    }
    unit = Unit(
        "generated span",
        A.span_score(p, span),
        A.span_score(p, span, per_token=True),
        info={"span": span_text, "span_tokens": span_tokens},
    )
    decision = {"text": span_text, "ids": span, "vocab": len(tok)}
    return Prepared(inp, tokens, prediction, [unit], decision, rendered)


def _joined(tok, ids) -> str:
    return "".join(tok.decode([i]) for i in ids)


def _offsets(tok, ids) -> list[tuple[int, int]]:
    out, pos = [], 0
    for i in ids:
        n = len(tok.decode([i]))
        out.append((pos, pos + n))
        pos += n
    return out
