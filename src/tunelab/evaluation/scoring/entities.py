"""Entity-level scores and entity predictions for token classification (NER).

NER is judged on whole entities, not tokens: a predicted entity counts only when its type,
start and end all match a gold one (CoNLL's conlleval, seqeval's default mode). Entities
are read from tags with seqeval's default (lenient, conlleval-like) rules, so IOB2, IOB1
and BIOES tags all decode the way seqeval decodes them, and the numbers here match
seqeval's micro precision/recall/F1 and its per-type report.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from tunelab.config.schema import DataConfig
from tunelab.data import read_table
from tunelab.data.batching import Features, collate, sorted_batches
from tunelab.data.labels import LabelSpace
from tunelab.tasks import token_classification as task

Entity = tuple[str, int, int]  # (type, start, end exclusive), in words


def _parse(tag: str) -> tuple[str, str]:
    """(prefix, type): "B-PER" -> ("B", "PER"); a bare type "PER" is read as "I-PER" (IO tags)."""
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 1 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:] or "_"
    if tag in ("B", "I", "E", "S"):
        return tag, "_"
    return "I", tag


def _ends(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether the entity open before this tag closes here (conlleval's endOfChunk)."""
    return prev in "ES" or (prev in "BI" and tag in "BSO") or (prev != "O" and prev_type != type_)


def _starts(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether an entity starts at this tag (conlleval's startOfChunk): an I- after O or
    after another type starts one, which is how IOB1 data and sloppy predictions decode."""
    return tag in "BS" or (prev in "ESO" and tag in "EI") or (tag != "O" and prev_type != type_)


def bio_entities(tags: list[str]) -> list[Entity]:
    """The entities of one sentence's tags as (type, start, end_exclusive), in order."""
    out: list[Entity] = []
    start: int | None = None
    prev, prev_type = "O", ""
    for i, raw in enumerate([*tags, "O"]):
        tag, type_ = _parse(raw)
        if start is not None and _ends(prev, tag, prev_type, type_):
            out.append((prev_type, start, i))
            start = None
        if _starts(prev, tag, prev_type, type_):
            start = i
        prev, prev_type = tag, type_
    return out


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def entity_metrics(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """Micro precision/recall/F1 over exact entities, the same per type (with the number of
    gold entities as support), token accuracy, and the counts of sentences and tokens."""
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"{len(true_tags)} gold sentences but {len(pred_tags)} predicted")
    gold: set[tuple[int, str, int, int]] = set()
    pred: set[tuple[int, str, int, int]] = set()
    correct = total = 0
    for k, (t, p) in enumerate(zip(true_tags, pred_tags)):
        if len(t) != len(p):
            raise ValueError(f"sentence {k}: {len(t)} gold tags but {len(p)} predicted")
        gold.update((k, *e) for e in bio_entities(list(t)))
        pred.update((k, *e) for e in bio_entities(list(p)))
        correct += sum(a == b for a, b in zip(t, p))
        total += len(t)
    hit = gold & pred
    precision, recall, f1 = _prf(len(hit), len(pred), len(gold))
    n_true, n_pred, n_hit = (Counter(e[1] for e in s) for s in (gold, pred, hit))
    per_type = {}
    for type_ in sorted(set(n_true) | set(n_pred)):
        p, r, f = _prf(n_hit[type_], n_pred[type_], n_true[type_])
        per_type[type_] = {"precision": p, "recall": r, "f1": f, "support": n_true[type_]}
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": correct / total if total else 0.0,
        "per_type": per_type,
        "n": len(true_tags),
        "n_tokens": total,
        "n_entities": len(gold),
    }


def token_logits(model, features: Features, batch_size: int, pad_id: int) -> list[np.ndarray]:
    """Per row, logits (T_i, C) of its own tokens, in the rows' original order. Batches are
    sorted by length so padding stays small; the rows are ragged, hence a list."""
    import torch

    device = next(model.parameters()).device
    lengths = features.lengths
    out: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(features)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(lengths, batch_size):
            batch = collate(Features(features.columns), index, pad_id)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (B, T, C)
            logits = logits.float().cpu().numpy()
            for j, i in enumerate(index):
                out[i] = logits[j, : lengths[i]]
    model.train(was_training)
    return out


def score_token_features(
    model, features: Features, labels: LabelSpace, batch_size: int, pad_id: int, split=None
) -> dict:
    """Mean token loss plus entity metrics of `model` on featurized rows (first sub-tokens
    only: positions labelled -100 are neither scored nor part of the loss).

    With `split` (the TokenSplit the features came from), words cut off by max_length are
    scored too, as predicted "O": otherwise truncation would hide gold entities and flatter
    recall. Their number is reported as "truncated_words".
    """
    names = labels.names
    true_tags, pred_tags = [], []
    nll, n_tokens, cut = 0.0, 0, 0
    rows = token_logits(model, features, batch_size, pad_id)
    for k, (logits, row) in enumerate(zip(rows, features.labels)):
        gold = np.asarray(row, dtype=np.int64)
        keep = gold != task.IGNORE
        z = logits[keep].astype(np.float64)  # (W, C): one row per visible word
        gold = gold[keep]
        pred = [names[i] for i in z.argmax(axis=-1)] if len(gold) else []
        if len(gold):
            m = z.max(axis=-1)
            lse = m + np.log(np.exp(z - m[:, None]).sum(axis=-1))
            nll += float((lse - z[np.arange(len(gold)), gold]).sum())
            n_tokens += len(gold)
        if split is not None:  # visible words are a prefix: truncation cuts the tail
            gold = split.tags[k]
            cut += len(gold) - len(pred)
            pred = pred + ["O"] * (len(gold) - len(pred))
        true_tags.append([names[i] for i in gold])
        pred_tags.append(pred)
    metrics = entity_metrics(true_tags, pred_tags)
    return {"loss": nll / n_tokens if n_tokens else 0.0, **metrics, "truncated_words": cut}


def lexicon_baseline(train, evals: dict, labels: LabelSpace) -> dict:
    """CoNLL's classic baseline: tag each word with its most frequent tag in training ("O"
    for unseen words). {split: entity metrics}; what a tuned model must clearly beat."""
    counts: dict[str, Counter] = {}
    for words, tags in zip(train.words, train.tags):
        for w, t in zip(words, tags):
            counts.setdefault(w, Counter())[t] += 1
    best = {w: labels.names[c.most_common(1)[0][0]] for w, c in counts.items()}
    out = {}
    for name, split in evals.items():
        gold = [[labels.names[t] for t in tags] for tags in split.tags]
        pred = [[best.get(w, "O") for w in words] for words in split.words]
        out[name] = entity_metrics(gold, pred)
    return out


# A word is a run of non-space characters; leading/trailing punctuation is split off as
# words of its own, as CoNLL tokenizes ("Paris." -> "Paris", "."), but abbreviations that
# already hold a dot ("U.S.") or single capitals ("J.") keep theirs.
_WORD = re.compile(r"\S+")
_LEAD = "([{\"'“‘«"
_TRAIL = ".,;:!?)]}\"'”’»"


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) character spans of `text`'s words, CoNLL-style."""
    out = []
    for m in _WORD.finditer(text):
        s, e = m.start(), m.end()
        head = []
        while e - s > 1 and text[s] in _LEAD:
            head.append((text[s], s, s + 1))
            s += 1
        tail = []
        while e - s > 1 and text[e - 1] in _TRAIL:
            core = text[s : e - 1]
            if text[e - 1] == "." and ("." in core or (len(core) == 1 and core.isupper())):
                break
            tail.append((text[e - 1], e - 1, e))
            e -= 1
        out.extend(head + [(text[s:e], s, e)] + tail[::-1])
    return out


def predict_entities(trained, texts: list[str], batch_size: int = 32) -> list[dict]:
    """Entities with character spans per text, for `tunelab predict`.

    Each text is split into words CoNLL-style (`split_words`), the model tags each word on
    its first sub-token, and tags become entities: {"type", "text", "start", "end", "score"}
    with `score` the mean probability of the chosen tags over the entity's words. Words past
    the model's max length get "O" and are counted in "truncated_words".
    """
    names = trained.labels.names
    spans = [split_words(t) for t in texts]
    todo = [i for i, s in enumerate(spans) if s]
    out = [
        {"text": t, "entities": [], "words": [], "tags": [], "truncated_words": 0} for t in texts
    ]
    if not todo:
        return out
    enc = task.encode_words(
        trained.tokenizer, [[w for w, _, _ in spans[i]] for i in todo], trained.max_length
    )
    columns = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    logits = token_logits(
        trained.model, Features(columns), batch_size, trained.tokenizer.pad_token_id
    )
    for k, i in enumerate(todo):
        words, text = spans[i], texts[i]
        word_ids = enc.word_ids(k)
        firsts = task.first_subtokens(word_ids)
        tags, conf = ["O"] * len(words), [0.0] * len(words)
        if firsts:
            ids, probs = task.predict(logits[k][firsts])  # (W,), (W, C)
            for pos, tag_id, p in zip(firsts, ids, probs):
                tags[word_ids[pos]], conf[word_ids[pos]] = names[tag_id], float(p[tag_id])
        entities = [
            {
                "type": type_,
                "text": text[words[s][1] : words[e - 1][2]],
                "start": words[s][1],
                "end": words[e - 1][2],
                "score": round(float(np.mean(conf[s:e])), 6),
            }
            for type_, s, e in bio_entities(tags)
        ]
        out[i].update(
            entities=entities,
            words=[w for w, _, _ in words],
            tags=tags,
            truncated_words=len(words) - len(firsts),
        )
    return out


def evaluate_token_file(
    trained, path, *, text: str | None = None, label: str | None = None, batch_size: int = 64
) -> dict:
    """Entity metrics of a trained tagger on a labelled file (for `tunelab eval`); columns
    default to those it was trained on."""
    cols = trained.meta.columns
    cfg = DataConfig(
        train=str(path),
        text=text or cols.get("text", "tokens"),
        label=label or cols.get("label", "ner_tags"),
        label_names=list(trained.labels.names),
    )
    split = task.read_split("eval", read_table(path), cfg, trained.labels)
    feats = task.featurize(split, trained.tokenizer, trained.max_length)
    pad_id = trained.tokenizer.pad_token_id
    return score_token_features(trained.model, feats, trained.labels, batch_size, pad_id, split)
