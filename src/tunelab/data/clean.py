"""Text cleaning for fine-tuning data: markup to text, mojibake repair, NFC, controls, spaces.

Each step is switchable through `CleanConfig` and counted (rows it changed) so the prepare
report can say what cleaning did. Speed matters (the prepare stage handles ~80k rows in
seconds), so every step first asks a cheap question (a regex search, `str.isascii`,
`unicodedata.is_normalized`) and does the expensive work only when the answer says there is
something to do. Length filters and dropping empty rows belong to the caller.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from functools import cache

from tunelab.config.schema import CleanConfig

STEPS = ("strip_html", "fix_mojibake", "unicode_nfc", "remove_control", "normalize_whitespace")

# Element names we strip. A tag-shaped string with another name (`<TXN.N>`, `<Ctrl>`) is text.
_HTML_TAGS = frozenset(
    """a abbr acronym address area article aside audio b base basefont bdi bdo big blink
    blockquote body br button canvas caption center cite code col colgroup data datalist dd del
    details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame
    frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label
    legend li link main map mark marquee menu meta meter nav nobr noframes noscript object ol
    optgroup option output p param picture pre progress q rp rt ruby s samp section select
    small source span strike strong sub summary sup svg table tbody td template textarea tfoot
    th thead time title tr track tt u ul var video wbr""".split()
)
# Tags that separate text: replaced by a line break instead of nothing.
_BLOCK_TAGS = frozenset(
    """address article aside blockquote body br center dd details dialog dir div dl dt
    fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup
    hr html iframe img li main menu nav noframes noscript ol p pre section summary table tbody
    td tfoot th thead title tr ul""".split()
)

# Cheap pre-check: anything that could be a tag, a comment, an entity, or a bare numeric
# entity whose '&' was lost (`#39;` in AG News).
_MARKUP_HINT = re.compile(
    r"<[a-zA-Z/!?]|&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);|#\d{2,4};"
)
_DROP_BLOCKS = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|noscript|template)\b[^>]*>.*?(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
# `<name>`, `</name>`, `<name/>`, or `<name attr=...>`: attributes must contain '=' so that
# prose like "if a<b and c>d" is not taken for a tag.
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)(?:\s+[^<>]*=[^<>]*|\s*/)?\s*>")
_DECL = re.compile(r"<![a-zA-Z][^<>]*>|<\?[^<>]*\?>")
# AG-News-style escapes: "Haiti #39;s" is "Haiti&#39;s" with the '&' turned into a space,
# so the one space before it goes too.
_BARE_ENTITY = re.compile(r"(?: |(?<![&\w]))#(\d{2,4});")

# UTF-8 read as cp1252/Latin-1: a lead byte (Â..ô) followed by a continuation byte as that
# codec shows it. Only texts with such a pair are handed to ftfy.
_MOJIBAKE_HINT = re.compile(
    "[\xc2-\xf4][\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_MIN_LANG_LETTERS = 20


def _tag_sub(m: re.Match[str]) -> str:
    name = m.group(2).lower()
    if name not in _HTML_TAGS:
        return m.group(0)
    return "\n" if name in _BLOCK_TAGS else ""


def _bare_entity_sub(m: re.Match[str]) -> str:
    # Only punctuation/symbols: "#39;" -> "'", "#36;" -> "$"; "#12;" (a control) stays.
    char = html.unescape(f"&#{m.group(1)};")
    return char if len(char) == 1 and unicodedata.category(char)[0] in "PSZ" else m.group(0)


def strip_html(text: str) -> str:
    """Markup to text: drop script/style/comments, tags to nothing or a line break, decode
    entities. Texts without anything markup-like are returned as they are."""
    if not _MARKUP_HINT.search(text):
        return text
    if "<" in text:
        text = _DROP_BLOCKS.sub(" ", text)
        text = _DECL.sub("", text)
        text = _TAG.sub(_tag_sub, text)
    if "#" in text:
        text = _BARE_ENTITY.sub(_bare_entity_sub, text)
    if "&" in text:
        text = html.unescape(text)
        if "<" in text:  # markup that was itself escaped (`&lt;b&gt;`) is markup too
            text = _TAG.sub(_tag_sub, text)
    return text


def has_markup(text: str) -> bool:
    """True when `strip_html` would change the text: markup or entities worth cleaning."""
    return bool(_MARKUP_HINT.search(text)) and strip_html(text) != text


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 that was decoded as cp1252/Latin-1 ("cafÃ©" -> "café") with ftfy, only
    for texts that show the tell-tale byte pairs; ftfy leaves correct text alone."""
    if text.isascii() or not _MOJIBAKE_HINT.search(text):
        return text
    import ftfy  # imported on first need: most texts never get here

    return ftfy.fix_encoding(text)


def unicode_nfc(text: str) -> str:
    """Canonical composition, so "e" + combining acute and "é" are the same string."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


@cache
def _control_re() -> re.Pattern[str]:
    """Every Cc/Cf character except tab and newline, built once from the running Unicode
    tables (planes 0, 1 and 14 hold all of them)."""
    ranges = [*range(0x20000), *range(0xE0000, 0xE1000)]
    chars = [
        chr(c)
        for c in ranges
        if unicodedata.category(chr(c)) in ("Cc", "Cf") and chr(c) not in "\t\n"
    ]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]+")


def _control_sub(m: re.Match[str]) -> str:
    # Control characters that act as space (\r, \x0b, \x0c, \x1c-\x1f, \x85) separate words:
    # keep the separation; everything else (zero-width, bidi marks, NUL, ...) goes.
    return "\n" if any(c.isspace() for c in m.group(0)) else ""


def remove_control(text: str) -> str:
    """Remove control and format characters (NUL, BEL, zero-width space/joiners, BOM, bidi
    marks, soft hyphen); \\t and \\n stay, other line-breaking controls become \\n."""
    if text.isascii() and text.isprintable():
        return text
    pattern = _control_re()
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return pattern.sub(_control_sub, text) if pattern.search(text) else text


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (newlines and NBSP included) to one space, strip."""
    return " ".join(text.split())


_STEP_FUNCS: dict[str, Callable[[str], str]] = {
    "strip_html": strip_html,
    "fix_mojibake": fix_mojibake,
    "unicode_nfc": unicode_nfc,
    "remove_control": remove_control,
    "normalize_whitespace": normalize_whitespace,
}


def _active(cfg: CleanConfig) -> list[tuple[str, Callable[[str], str]]]:
    if not cfg.enabled:
        return []
    return [(name, _STEP_FUNCS[name]) for name in STEPS if getattr(cfg, name)]


def clean_text(text: str, cfg: CleanConfig) -> str:
    """One text through the enabled steps, in the order of `STEPS`."""
    for _, fn in _active(cfg):
        text = fn(text)
    return text


def clean_texts(texts: list[str], cfg: CleanConfig) -> tuple[list[str], dict[str, int]]:
    """Clean many texts. Returns the cleaned texts (same order and length) and, for every
    step, how many rows it changed (0 for disabled steps)."""
    steps = _active(cfg)
    counts = dict.fromkeys(STEPS, 0)
    out: list[str] = []
    append = out.append
    for text in texts:
        for name, fn in steps:
            new = fn(text)
            if new != text:
                counts[name] += 1
                text = new
        append(text)
    return out, counts


def text_issues(text: str) -> set[str]:
    """Problems worth reporting, found cheaply: a subset of {"empty", "html", "control",
    "mojibake"}. "mojibake" means ftfy would repair the text, not merely that it looks odd."""
    issues: set[str] = set()
    if not text or text.isspace():
        issues.add("empty")
    if has_markup(text):
        issues.add("html")
    if not (text.isascii() and text.isprintable()):
        if _control_re().search(text.replace("\r\n", "\n")):  # CRLF is not a problem
            issues.add("control")
        if fix_mojibake(text) != text:
            issues.add("mojibake")
    return issues


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid), or None when it has fewer than 20
    letters: shorter texts are guessed too unreliably to report."""
    letters = 0
    for c in text:
        letters += c.isalpha()
        if letters >= _MIN_LANG_LETTERS:
            break
    else:
        return None
    import py3langid  # loads its model on first use (~0.3 s), so not at import time

    return str(py3langid.classify(text)[0])
