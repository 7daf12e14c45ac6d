"""Extractive QA data: questions over contexts, each with gold answer spans (SQuAD v1.1).

Two layouts are read:
- the official SQuAD JSON, `{"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
  "question", "answers": [{"text", "answer_start"}]}]}]}]}`;
- flat rows (.jsonl/.csv/.tsv/.parquet/.json array, via `data.readers.read_table`) with a
  question, a context and an answers column. An answers cell is HF datasets' form
  `{"text": [...], "answer_start": [...]}`, a list of `{"text", "answer_start"}` objects, or
  either of them as a JSON string (CSV cells).

Every gold answer must sit where it says: `context[answer_start:answer_start+len(text)] ==
text`. A mismatch is a DataError naming the file, the row and the column (for the nested JSON:
the question's 1-based number in the file and its JSON path), and where the text does occur
when it occurs elsewhere: an off-by-one start trains the model on the wrong tokens silently.
Questions without an answer (SQuAD v2.0's unanswerable ones) are refused for now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunelab.errors import DataError

DEFAULT_COLUMNS = {"question": "question", "context": "context", "answers": "answers", "id": "id"}


@dataclass
class QAExample:
    """One question over one context, with its gold answers (character offsets)."""

    id: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]
    row: int  # 1-based row (JSONL: line) in its file; nested JSON: question number

    @property
    def answer_ends(self) -> list[int]:
        """Exclusive character ends of the answers."""
        return [s + len(t) for s, t in zip(self.answer_starts, self.answers, strict=True)]


@dataclass
class QASplit:
    """One split: its examples, in file order."""

    name: str
    file: str
    examples: list[QAExample]
    doc_stride: int | None = None  # data.doc_stride (None: featurize's default)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def rows(self) -> list[int]:
        return [e.row for e in self.examples]

    @property
    def y(self) -> list[list[str]]:
        """Gold answer texts per example (the name runs/train.py passes to `class_weights`)."""
        return [e.answers for e in self.examples]


@dataclass
class QAData:
    splits: dict[str, QASplit]  # "train", "validation", and "test" when given
    validation_from_train: bool = False
    labels: None = None  # no label space (what runs/train.py reads of every task's data)


def columns_of(data_cfg) -> dict[str, str]:
    """Column names from the config's data section: `data.question`, `data.context`,
    `data.answers`, `data.id`, each defaulting to its own name. (Read with getattr until
    DataConfig has the fields.)"""
    return {k: getattr(data_cfg, k, None) or v for k, v in DEFAULT_COLUMNS.items()}


def _as_list(v: object) -> list | None:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return list(v)
    return None


def parse_answers(cell: object) -> tuple[list[str], list[int]]:
    """(texts, starts) from one answers cell; ValueError with a user-facing reason."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            raise ValueError(
                'expected answers as JSON, e.g. {"text": ["..."], "answer_start": [0]}, '
                f"got the string {cell[:40]!r}"
            ) from None
    if isinstance(cell, dict):
        texts, starts = cell.get("text"), cell.get("answer_start")
        if texts is None or starts is None:
            raise ValueError(f"an answers object needs 'text' and 'answer_start', has {list(cell)}")
        texts = _as_list(texts) if _as_list(texts) is not None else [texts]
        starts = _as_list(starts) if _as_list(starts) is not None else [starts]
        if len(texts) != len(starts):
            raise ValueError(f"{len(texts)} answer texts but {len(starts)} answer_start values")
    elif _as_list(cell) is not None:
        items = _as_list(cell)
        bad = [a for a in items if not isinstance(a, dict) or "text" not in a]
        if bad or any("answer_start" not in a for a in items):
            raise ValueError("a list of answers must hold {'text', 'answer_start'} objects")
        texts = [a["text"] for a in items]
        starts = [a["answer_start"] for a in items]
    else:
        raise ValueError(f"expected answers (an object or a list), got {type(cell).__name__}")
    return texts, starts


def check_answers(context: str, texts: list, starts: list) -> tuple[list[str], list[int]]:
    """Validate spans against the context; returns them typed. ValueError names the bad one."""
    if not texts:
        raise ValueError("no answer (unanswerable questions, as in SQuAD v2.0, are not supported)")
    out_t, out_s = [], []
    for k, (t, s) in enumerate(zip(texts, starts, strict=True), 1):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"answer {k} is {t!r}, not a text")
        if isinstance(s, bool) or not isinstance(s, (int, np.integer, float)) or s != int(s):
            raise ValueError(f"answer {k}'s answer_start is {s!r}, not a character offset")
        s = int(s)
        if s < 0 or context[s : s + len(t)] != t:
            found = context.find(t)
            where = f"; the text occurs at {found}" if found >= 0 else "; it is not in the context"
            raise ValueError(
                f"answer {k} {t[:40]!r} is not at answer_start {s} of the context (there: "
                f"{context[max(s, 0) : max(s, 0) + len(t)][:40]!r}){where}"
            )
        out_t.append(t)
        out_s.append(s)
    return out_t, out_s


def _is_squad_json(path: Path) -> object | None:
    """The parsed file when it is the official nested SQuAD layout, else None."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # read_table says what is wrong with it
    data = obj.get("data") if isinstance(obj, dict) else None
    if isinstance(data, list) and data and all(isinstance(a, dict) for a in data):
        if "paragraphs" in data[0]:
            return obj
    return None


def read_squad_json(obj: dict, file: str, require_answers: bool = True) -> list[QAExample]:
    """Examples of a parsed official SQuAD file; errors name the question's JSON path."""
    out: list[QAExample] = []
    for a, article in enumerate(obj["data"]):
        for p, para in enumerate(article.get("paragraphs") or []):
            context = para.get("context")
            for q, qa in enumerate(para.get("qas") or []):
                path = f"data[{a}].paragraphs[{p}].qas[{q}]"  # the column a DataError names
                row = len(out) + 1
                if not isinstance(context, str) or not context.strip():
                    where = f"data[{a}].paragraphs[{p}].context"
                    raise DataError(file, "empty context", row=row, column=where)
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise DataError(file, "empty question", row=row, column=f"{path}.question")
                texts, starts = [], []
                if require_answers or qa.get("answers"):
                    try:
                        texts, starts = check_answers(context, *parse_answers(qa.get("answers")))
                    except ValueError as e:
                        raise DataError(file, str(e), row=row, column=f"{path}.answers") from None
                qid = str(qa.get("id", row))
                out.append(QAExample(qid, question, context, texts, starts, row))
    if not out:
        raise DataError(file, "no questions (data[].paragraphs[].qas[] are all empty)")
    return out


def read_rows(df, file: str, columns: dict[str, str], require_answers: bool = True):
    """Examples of a flat frame from `read_table` (index = 1-based row)."""
    from tunelab.data import require_columns, text_column

    need = [columns["question"], columns["context"]]
    if require_answers or columns["answers"] in df.columns:
        need.append(columns["answers"])
    require_columns(df, file, need)
    questions = text_column(df, file, columns["question"])
    contexts = text_column(df, file, columns["context"])
    answers = df[columns["answers"]].tolist() if columns["answers"] in df.columns else None
    ids = df[columns["id"]].tolist() if columns["id"] in df.columns else None
    out = []
    for i, (row, question, context) in enumerate(zip(df.index, questions, contexts, strict=True)):
        texts, starts = [], []
        if answers is not None:
            try:
                texts, starts = check_answers(context, *parse_answers(answers[i]))
            except ValueError as e:
                raise DataError(file, str(e), row=int(row), column=columns["answers"]) from None
        qid = str(ids[i]) if ids is not None else str(int(row))
        out.append(QAExample(qid, question, context, texts, starts, int(row)))
    return out


def read_examples(
    path: str | Path, columns: dict[str, str] | None = None, require_answers: bool = True
) -> list[QAExample]:
    """Read and validate one file (official SQuAD JSON or flat rows). `require_answers=False`
    (questions to answer): a missing answers column is allowed, present answers are checked."""
    from tunelab.data import read_table

    columns = {**DEFAULT_COLUMNS, **(columns or {})}
    nested = _is_squad_json(Path(path))
    if nested is not None:
        return read_squad_json(nested, str(path), require_answers)
    df = read_table(path)
    return read_rows(df, str(df.attrs.get("source", path)), columns, require_answers)


def hold_out(split: QASplit, size: float, seed: int) -> tuple[QASplit, QASplit]:
    """Seeded (train, validation) parts split by *context*: every question on one paragraph
    goes to the same side, else validation would score answers the model has read."""
    contexts = list(dict.fromkeys(e.context for e in split.examples))
    if len(contexts) < 2:
        raise DataError(
            split.file,
            f"too few distinct contexts ({len(contexts)}) to split off validation; "
            "give data.validation",
        )
    n_held = min(max(1, round(len(contexts) * size)), len(contexts) - 1)
    perm = np.random.default_rng(seed).permutation(len(contexts))
    held = {contexts[i] for i in perm[:n_held]}
    kept_ex = [e for e in split.examples if e.context not in held]
    held_ex = [e for e in split.examples if e.context in held]
    return QASplit("train", split.file, kept_ex), QASplit("validation", split.file, held_ex)


def load_data(cfg) -> QAData:
    """Read train/validation/test of a RunConfig; split validation off train (by context)
    when absent. `data.max_train_rows` keeps the first N training questions."""
    d = cfg.data
    columns = columns_of(d)
    splits = {"train": QASplit("train", str(d.train), read_examples(d.train, columns))}
    for name in ("validation", "test"):
        path = getattr(d, name, None)
        if path:
            splits[name] = QASplit(name, str(path), read_examples(path, columns))
    if getattr(d, "max_train_rows", None):
        tr = splits["train"]
        splits["train"] = QASplit("train", tr.file, tr.examples[: d.max_train_rows])
    from_train = "validation" not in splits
    if from_train:
        splits["train"], splits["validation"] = hold_out(
            splits["train"], d.validation_size, cfg.train.seed
        )
    for split in splits.values():
        split.doc_stride = getattr(d, "doc_stride", None)
    return QAData(splits=splits, validation_from_train=from_train)
