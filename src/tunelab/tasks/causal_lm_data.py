"""Causal-LM data: detect the row format, turn rows into chat messages, render + mask labels.

Four formats are accepted (issue 4): chat `messages` (OpenAI style, or ShareGPT
`conversations` with from/value), `instruction` (Alpaca/Dolly; field names configurable),
`prompt_completion`, and raw `text` for continued pretraining. Rendering uses the model's own
chat template, and labels are -100 everywhere except the assistant answers by default; every
trained answer ends with the template's end-of-turn token, which is labelled, because a model
that never learns to emit it never stops generating.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tunelab.errors import ConfigError, DataError
from tunelab.models.tokenizers import encode_uncut

IGNORE = -100  # label of a token that is not trained (ignored by the cross-entropy)
FORMATS = ("messages", "instruction", "prompt_completion", "text")
FORMATS_HELP = (
    "messages (a list of {role, content}, or ShareGPT 'conversations' of {from, value}), "
    "instruction (instruction + output, optional input), prompt_completion (prompt + "
    "completion), text (a text column or a .txt file)"
)

# Field -> candidate column names, first present wins. A user mapping replaces a field's list.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversations"),
    "instruction": ("instruction",),
    "input": ("input", "context"),  # Dolly calls the optional input "context"
    "output": ("output", "response"),  # ... and the answer "response"
    "prompt": ("prompt",),
    "completion": ("completion",),
    "text": ("text",),
}
# Columns (fields) each non-chat format needs, in detection order.
_NEEDS = {"instruction": {"instruction", "output"}, "prompt_completion": {"prompt", "completion"}}
_NEEDS["text"] = {"text"}
_ROLES = dict(human="user", user="user", gpt="assistant", assistant="assistant")
_ROLES.update(bot="assistant", model="assistant", system="system")


def fields_with(columns: Mapping[str, str | Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    """DEFAULT_FIELDS updated by a user mapping like {"input": "context", "output": "response"}."""
    out = dict(DEFAULT_FIELDS)
    for key, names in (columns or {}).items():
        if key not in out:
            raise ConfigError(
                "data.fields", f"unknown field; known: {', '.join(out)}", key, has_value=True
            )
        out[key] = (names,) if isinstance(names, str) else tuple(names)
    return out


def _get(
    row: Mapping, fields: Mapping[str, tuple[str, ...]], key: str
) -> tuple[str | None, object]:
    """(column, value) of the first column of `key` present in the row, else (None, None)."""
    for name in fields[key]:
        if name in row and row[name] is not None:
            return name, row[name]
    return None, None


def detect_format(
    row: Mapping,
    columns: Mapping[str, str | Iterable[str]] | None = None,
    *,
    file: str = "<data>",
    row_number: int | None = None,
) -> str:
    """The format of one row: "messages", "instruction", "prompt_completion" or "text".

    Checked in that order, so a row holding both `messages` and `text` is a conversation.
    A row that fits none is a DataError naming the file, row, the columns seen and the formats
    accepted.
    """
    f = fields_with(columns)
    _, msgs = _get(row, f, "messages")
    if isinstance(msgs, (list, tuple)) and msgs and all(isinstance(m, Mapping) for m in msgs):
        return "messages"
    has = {k for need in _NEEDS.values() for k in need if isinstance(_get(row, f, k)[1], str)}
    for fmt, need in _NEEDS.items():
        if need <= has:
            return fmt
    seen = ", ".join(str(k) for k in row) or "(none)"
    raise DataError(
        file,
        f"the row fits no known format; columns seen: {seen}; accepted formats: {FORMATS_HELP}",
        row=row_number,
    )


def detect_file_format(
    rows: Iterable[Mapping],
    columns: Mapping[str, str | Iterable[str]] | None = None,
    *,
    file: str = "<data>",
) -> str:
    """The one format of a whole file; every row must fit it (rows numbered from 1).

    A `.txt` file is "text" without looking at rows. A file mixing formats is an error naming
    the first row that differs, since silently rendering rows differently would train a mix.
    """
    if str(file).lower().endswith(".txt"):
        return "text"
    fmt = None
    for i, row in enumerate(rows, 1):
        this = detect_format(row, columns, file=file, row_number=i)
        if fmt is None:
            fmt = this
        elif this != fmt:
            raise DataError(file, f"row is in format '{this}' but earlier rows are '{fmt}'", row=i)
    if fmt is None:
        raise DataError(file, "no rows")
    return fmt


def to_messages(
    row: Mapping,
    fmt: str,
    fields: Mapping[str, str | Iterable[str]] | None = None,
    *,
    file: str = "<data>",
    row_number: int | None = None,
) -> list[dict[str, str]]:
    """A row as chat messages [{"role", "content"}, ...] for the chat template.

    instruction + optional input become one user turn "instruction\\n\\ninput" and output the
    assistant turn; ShareGPT from/value turns are normalized to roles. A conversation without
    an assistant turn has nothing to train on and is a DataError (file, row).
    """
    f = fields_with(fields)
    if fmt == "messages":
        column, raw = _get(row, f, "messages")
        msgs = []
        for turn in raw or []:
            role = turn.get("role", turn.get("from"))
            content = turn.get("content", turn.get("value"))
            norm = _ROLES.get(str(role).lower()) if role is not None else None
            if norm is None or not isinstance(content, str):
                raise DataError(
                    file,
                    f"bad turn {dict(turn)!r}: need role/from in {sorted(_ROLES)} and text "
                    "content/value",
                    row=row_number,
                    column=column,
                )
            msgs.append({"role": norm, "content": content})
    elif fmt == "instruction":
        instruction, extra = _get(row, f, "instruction")[1], _get(row, f, "input")[1]
        user = (
            f"{instruction}\n\n{extra}" if isinstance(extra, str) and extra.strip() else instruction
        )
        msgs = [
            {"role": "user", "content": user},
            {"role": "assistant", "content": _get(row, f, "output")[1]},
        ]
    elif fmt == "prompt_completion":
        msgs = [
            {"role": "user", "content": _get(row, f, "prompt")[1]},
            {"role": "assistant", "content": _get(row, f, "completion")[1]},
        ]
    else:
        raise ValueError(f"to_messages: format {fmt!r} has no messages")
    if not any(m["role"] == "assistant" for m in msgs):
        raise DataError(file, "the conversation has no assistant turn to train on", row=row_number)
    return msgs


def _chat(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def _ids(tokenizer, text: str) -> list[int]:
    # The template already holds BOS/markers; adding special tokens would double them.
    # uncut: rows longer than max_length are fitted later (data.too_long)
    return list(encode_uncut(tokenizer, text, add_special_tokens=False)["input_ids"])


def _char_span_tokens(tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """Token range whose characters start in [start, end): the fallback when token prefixes
    do not line up (a template whose prefix renders differently, or a merge across turns)."""
    offsets = encode_uncut(tokenizer, text, add_special_tokens=False, return_offsets_mapping=True)
    inside = [i for i, (s, _) in enumerate(offsets["offset_mapping"]) if start <= s < end]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def _assistant_spans(
    tokenizer, messages: list[dict], ids: list[int], full: str, first: int = 0
) -> list[tuple]:
    """[(start, end)) token ranges of each assistant message from index `first` on,
    generation prompt excluded.

    The range is between the rendering of the prefix up to the message (with the generation
    prompt) and the rendering up to and including it; if those token ids are not prefixes of
    the full rendering, the same is done on characters via the offset mapping.
    """
    spans, cursor = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or i < first:
            continue
        before, upto = (
            _chat(tokenizer, messages[:i], True),
            _chat(tokenizer, messages[: i + 1], False),
        )
        a, b = _ids(tokenizer, before), _ids(tokenizer, upto)
        if ids[: len(a)] == a and ids[: len(b)] == b and len(b) > len(a):
            spans.append((len(a), len(b)))
            continue
        if full.startswith(before) and full.startswith(upto):
            start, end = len(before), len(upto)
        else:  # the template re-renders earlier turns: find the answer text itself
            start = full.find(m["content"], cursor)
            if start < 0:
                raise ValueError("the chat template drops assistant text; cannot mark its tokens")
            end = start + len(m["content"]) + len(tokenizer.eos_token or "")
        cursor = end
        spans.append(_char_span_tokens(tokenizer, full, start, end))
    return spans


def render(
    messages: list[dict], tokenizer, train_on: str = "assistant", first: int = 0
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of a conversation rendered with the tokenizer's chat template.

    train_on="assistant": labels are -100 except on each assistant answer, which is cut to end
    at its end-of-turn token (the last special token of the span, e.g. SmolLM2's <|im_end|>),
    that token labelled; text after it (a newline) is not trained. A template that emits no
    end token gets the tokenizer's EOS inserted, so every answer teaches the model to stop.
    train_on="all": every token is labelled. `first` skips the assistant answers of earlier
    messages (few-shot examples in front of the scored conversation).
    """
    full = _chat(tokenizer, messages, False)
    ids = _ids(tokenizer, full)
    if train_on == "all":
        return ids, list(ids)
    if train_on != "assistant":
        raise ValueError(f"train_on must be 'assistant' or 'all', got {train_on!r}")
    stops = set(tokenizer.all_special_ids) | {tokenizer.eos_token_id}
    labels = [IGNORE] * len(ids)
    for start, end in reversed(_assistant_spans(tokenizer, messages, ids, full, first)):
        last = next((j for j in range(end - 1, start - 1, -1) if ids[j] in stops), None)
        if last is None:  # no end-of-turn token: add one (reverse order keeps
            ids.insert(end, tokenizer.eos_token_id)  # the earlier spans' indices valid)
            labels.insert(end, IGNORE)
            last = end
        labels[start : last + 1] = ids[start : last + 1]
    return ids, labels


def render_plain(prompt: str, completion: str, tokenizer) -> tuple[list[int], list[int]]:
    """prompt + completion + EOS without a chat template; only completion and EOS trained."""
    p = list(encode_uncut(tokenizer, prompt)["input_ids"])
    c = _ids(tokenizer, completion) + [tokenizer.eos_token_id]
    return p + c, [IGNORE] * len(p) + c


def render_text(text: str, tokenizer) -> tuple[list[int], list[int]]:
    """Continued pretraining: the text's ids (with BOS if the tokenizer adds one) + EOS, all trained."""
    ids = list(encode_uncut(tokenizer, text)["input_ids"]) + [tokenizer.eos_token_id]
    return ids, list(ids)


def encode_row(
    row: Mapping,
    fmt: str,
    tokenizer,
    fields: Mapping | None = None,
    *,
    train_on: str = "assistant",
    use_chat_template: bool = True,
    file: str = "<data>",
    row_number: int | None = None,
) -> tuple[list[int], list[int]]:
    """One row of a detected format -> (input_ids, labels); the task's featurize calls this."""
    f = fields_with(fields)
    if fmt == "text":
        return render_text(_get(row, f, "text")[1], tokenizer)
    if fmt == "prompt_completion" and not use_chat_template:
        ids, labels = render_plain(
            _get(row, f, "prompt")[1], _get(row, f, "completion")[1], tokenizer
        )
        return (ids, list(ids)) if train_on == "all" else (ids, labels)
    msgs = to_messages(row, fmt, fields, file=file, row_number=row_number)
    return render(msgs, tokenizer, train_on)


def preview(
    ids: list[int], labels: list[int], tokenizer, marks: tuple[str, str] = ("«", "»")
) -> str:
    """The rendered text with each run of trained tokens wrapped in «…», for `data preview`."""
    parts, run, trained = [], [], None
    for tok, lab in [*zip(ids, labels, strict=True), (None, None)]:
        now = lab is not None and lab != IGNORE
        if run and (tok is None or now != trained):
            text = tokenizer.decode(run, skip_special_tokens=False)
            parts.append(f"{marks[0]}{text}{marks[1]}" if trained else text)
            run = []
        run.append(tok)
        trained = now
    return "".join(parts)
