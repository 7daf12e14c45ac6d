"""Training-set augmentation: EDA (Wei & Zou 2019) and back-translation.

More varied training rows help small datasets most. EDA's four cheap edits (synonym
replacement, random insertion, deletion and swap) need only a thesaurus (see
`thesaurus.py`); back-translation paraphrases through any seq2seq translation model that
`resolve_model` can find. Everything is deterministic under a seed, and rows the edit left
unchanged are retried once and otherwise dropped, so the augmented split never holds
verbatim copies that would only re-weight the data.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from tunelab.config.schema import AugmentConfig
from tunelab.data.thesaurus import Thesaurus, default_thesaurus
from tunelab.errors import ModelSourceError, TunelabError

__all__ = ["EDA_OPS", "STOPWORDS", "Thesaurus", "augment", "back_translate", "eda"]

EDA_OPS = ("synonym", "insert", "delete", "swap")
_NEEDS_THESAURUS = ("synonym", "insert")

# Words EDA never picks for synonyms: replacing "the" or "a" adds noise, not variety.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t n't 's 're 've 'd 'll""".split()
)

# A whitespace token = leading punctuation + one word + trailing punctuation ("(great!)").
# Tokens that do not fit (pure punctuation, "U.S.") are kept as they are and never edited.
_TOKEN = re.compile(r"^(\W*)(\w(?:[\w'’-]*\w)?)(\W*)$")


@dataclass
class _Tok:
    pre: str
    core: str  # the word; "" for a token EDA leaves alone
    post: str

    def __str__(self) -> str:
        return f"{self.pre}{self.core}{self.post}"


def word_tokens(text: str) -> list[_Tok]:
    out = []
    for piece in text.split():
        m = _TOKEN.match(piece)
        out.append(_Tok(*m.groups()) if m else _Tok(piece, "", ""))
    return out


def _same(a: str, b: str) -> bool:
    """Equal up to whitespace: EDA re-joins tokens with single spaces."""
    return a.split() == b.split()


def match_case(word: str, like: str) -> str:
    if len(like) > 1 and like.isupper():
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def _content_words(toks: list[_Tok]) -> list[str]:
    """Distinct lowercase non-stopwords, in order of first appearance (deterministic)."""
    words = (t.core.lower() for t in toks if t.core)
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


def _synonym(toks: list[_Tok], n: int, rng: random.Random, th: Thesaurus) -> None:
    words = _content_words(toks)
    rng.shuffle(words)
    done = 0
    for word in words:
        syns = th.synonyms(word)
        if not syns:
            continue
        new = rng.choice(syns)
        for t in toks:  # every occurrence, as in EDA, so the text stays consistent
            if t.core.lower() == word:
                t.core = match_case(new, t.core)
        done += 1
        if done >= n:
            return


def _insert(toks: list[_Tok], n: int, rng: random.Random, th: Thesaurus) -> None:
    words = _content_words(toks)
    for _ in range(n):
        for _try in range(10):
            syns = th.synonyms(rng.choice(words)) if words else []
            if syns:
                toks.insert(rng.randint(0, len(toks)), _Tok("", rng.choice(syns), ""))
                break


def _delete(toks: list[_Tok], p: float, rng: random.Random) -> list[_Tok]:
    # Only bare words go: deleting "end." would take the full stop with it.
    cands = [i for i, t in enumerate(toks) if t.core and not t.pre and not t.post]
    drop = {i for i in cands if rng.random() < p}
    if not drop and len(cands) > 1:
        drop = {rng.choice(cands)}
    kept = [t for i, t in enumerate(toks) if i not in drop]
    if drop and not any(t.core for t in kept):  # never leave no word at all
        drop.discard(rng.choice(sorted(drop)))
        kept = [t for i, t in enumerate(toks) if i not in drop]
    return kept


def _swap(toks: list[_Tok], n: int, rng: random.Random) -> None:
    idx = [i for i, t in enumerate(toks) if t.core]
    if len(idx) < 2:
        return
    for _ in range(n):
        i, j = rng.sample(idx, 2)  # words move, punctuation stays in place
        toks[i].core, toks[j].core = toks[j].core, toks[i].core


def eda(
    text: str, ops: list[str], alpha: float, rng: random.Random, thesaurus: Thesaurus | None
) -> str:
    """One EDA edit of `text`, the op drawn from `ops`; deterministic given `rng`.

    synonym: n = max(1, alpha * words) distinct non-stopwords replaced (every occurrence);
    insert: a synonym of a random non-stopword inserted at a random place, n times;
    delete: each bare word dropped with probability alpha (at least one, never all);
    swap: two random words swap places, n times. Punctuation stays where it was. Without a
    thesaurus, synonym and insert are not drawn. The result is re-joined with single spaces.
    """
    unknown = [op for op in ops if op not in EDA_OPS]
    if unknown:
        raise ValueError(f"eda: unknown op(s) {unknown}; choose from {list(EDA_OPS)}")
    usable = [op for op in ops if thesaurus is not None or op not in _NEEDS_THESAURUS]
    if not usable:
        raise ValueError(f"eda: ops {ops} need a thesaurus, and none was given")
    op = rng.choice(usable)
    toks = word_tokens(text)
    n = max(1, int(alpha * sum(1 for t in toks if t.core)))
    if op == "synonym":
        _synonym(toks, n, rng, thesaurus)
    elif op == "insert":
        _insert(toks, n, rng, thesaurus)
    elif op == "delete":
        toks = _delete(toks, alpha, rng)
    else:
        _swap(toks, n, rng)
    return " ".join(map(str, toks))


def _load_seq2seq(spec: str):
    """Tokenizer and model of any seq2seq reference `resolve_model` accepts."""
    from transformers import AutoModelForSeq2SeqLM

    from tunelab.models.loading import load_tokenizer, quiet_transformers
    from tunelab.models.sources import resolve_model

    source = resolve_model(spec)
    tok = load_tokenizer(source)  # raises the clear offline error for unreachable hub ids
    kwargs: dict = {"trust_remote_code": False, "use_safetensors": True}
    if source.kind == "hub":
        from tunelab.models.hub import check_hub_model

        kwargs["local_files_only"] = check_hub_model(source.path)
    try:
        with quiet_transformers():
            model = AutoModelForSeq2SeqLM.from_pretrained(source.path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(
            f"back-translation model '{spec}' could not be loaded as a seq2seq (translation) "
            f"model: {str(exc).splitlines()[0]}"
        ) from None
    return tok, model.eval()


def _translate(texts: list[str], spec: str, max_new_tokens: int, batch_size: int, bar) -> list[str]:
    import torch

    tok, model = _load_seq2seq(spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    # Fast tokenizers without a known limit report 1e30; the position table is the real cap.
    max_len = min(getattr(tok, "model_max_length", 512) or 512, 512)
    max_len = min(max_len, getattr(model.config, "max_position_embeddings", None) or max_len)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    out = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tok(
            [texts[i] for i in chunk],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_len,
        ).to(device)
        with torch.inference_mode():
            ids = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1
            )  # (B, T')
        for i, t in zip(chunk, tok.batch_decode(ids, skip_special_tokens=True)):
            out[i] = t.strip()
        bar.update(len(chunk))
    return out


def back_translate(
    texts: list[str], forward: str, backward: str, max_new_tokens: int = 128, batch_size: int = 16
) -> list[str]:
    """Paraphrase `texts` by greedy translation source -> pivot (`forward`) -> source
    (`backward`), batched; one output per input, "" where the models gave nothing."""
    from tqdm.auto import tqdm

    if not texts:
        return []
    with tqdm(total=2 * len(texts), desc="back-translation", unit="text") as bar:
        pivot = _translate(texts, forward, max_new_tokens, batch_size, bar)
        return _translate(pivot, backward, max_new_tokens, batch_size, bar)


def _plan(n_rows: int, total: int, rng: random.Random) -> list[int]:
    """Source rows for `total` new rows: each pass is a fresh shuffle of all rows, so every
    row is used before any is used twice, and a row meets different methods across passes."""
    plan: list[int] = []
    while len(plan) < total:
        order = list(range(n_rows))
        rng.shuffle(order)
        plan.extend(order[: total - len(plan)])
    return plan


def _retry_op(failed: str, ops: list[str], text: str, rng: random.Random) -> str:
    """Another op, of the kind that can still change `text`: delete and swap always change
    a text of two or more words; a one-word text can only change through the thesaurus."""
    others = [op for op in ops if op != failed] or ops
    short = sum(1 for t in word_tokens(text) if t.core) < 2
    likely = [op for op in others if (op in _NEEDS_THESAURUS) == short]
    return rng.choice(likely or others)


def augment(
    texts: list[str], cfg: AugmentConfig, seed: int, thesaurus: Thesaurus | None = None
) -> tuple[list[str], list[int], dict[str, int]]:
    """New rows only: (new_texts, source_positions, counts per method).

    round(multiplier * len(texts)) rows are planned, methods cycling over `cfg.methods`;
    back-translation runs batched over all its rows. A result equal to its source (or
    empty) is retried once with another EDA op, else dropped, so there may be fewer rows.
    """
    counts = {m: 0 for m in cfg.methods}
    total = round(cfg.multiplier * len(texts))
    if total == 0:
        return [], [], counts
    rng = random.Random(seed)
    plan = _plan(len(texts), total, rng)
    methods = [cfg.methods[i % len(cfg.methods)] for i in range(total)]
    eda_ops = [m for m in cfg.methods if m in EDA_OPS]
    if thesaurus is None and any(m in _NEEDS_THESAURUS for m in eda_ops):
        thesaurus = default_thesaurus()

    translated: dict[int, str] = {}
    bt_rows = [k for k, m in enumerate(methods) if m == "back_translation"]
    if bt_rows:
        bt = cfg.back_translation
        if bt is None:
            raise TunelabError("augment: back_translation needs forward and backward models")
        outs = back_translate(
            [texts[plan[k]] for k in bt_rows], bt.forward, bt.backward, bt.max_new_tokens
        )
        translated = dict(zip(bt_rows, outs))

    new_texts: list[str] = []
    positions: list[int] = []
    for k, (pos, method) in enumerate(zip(plan, methods)):
        source = texts[pos]
        if method == "back_translation":
            new = translated[k]
        else:
            new = eda(source, [method], cfg.alpha, rng, thesaurus)
        if not new.strip() or _same(new, source):
            if not eda_ops:
                continue
            method = _retry_op(method, eda_ops, source, rng)
            new = eda(source, [method], cfg.alpha, rng, thesaurus)
            if not new.strip() or _same(new, source):
                continue
        new_texts.append(new)
        positions.append(pos)
        counts[method] += 1
    return new_texts, positions, counts
