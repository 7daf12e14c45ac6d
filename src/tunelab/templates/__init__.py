"""The HTML pages tunelab writes, as Jinja2 templates: one Environment, shared filters, the CSS
and JS as files beside the templates (package data).

Every page is one self-contained file: `asset()` pastes a CSS or JS file inline, `png_uri`
turns a figure into a base64 data URI, so a page opens offline and can be mailed as is. The
page modules (data/report*.py, evaluation/run_report/page.py, evaluation/report/html.py and
generation.py, interpret/render.py and attention_html.py) build a context of plain data
(numbers, strings, figure URIs) and call `render`.

Escaping: autoescape is on for `*.j2`, and `finalize` routes every `{{ value }}` through `esc`
(html.escape with quote=True, and control characters shown as a visible `\\x07` mark, since a
browser would drop them), so text from a file, a model or the user cannot inject markup.
StrictUndefined turns a missing context variable into an error instead of an empty string.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

FOLDER = Path(__file__).parent
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def esc(value: Any) -> Markup:
    """`value` as HTML text: html.escape (quotes too) and each control character as a visible,
    highlighted escape (`<mark>\\x07</mark>`). Markup passes through unchanged."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    text = html.escape(str(value), quote=True)  # leaves control characters alone
    return Markup(_CONTROL.sub(lambda m: f"<mark>\\x{ord(m.group()):02x}</mark>", text))


def attr(value: Any) -> Markup:
    """`value` for an attribute (alt, title): escaped, control characters as plain `\\x07`."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return Markup(html.escape(text, quote=True))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact(value: Any) -> str | None:
    """None, a bool or an int as every table shows it ("—", "true", "3,000"); else None."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    return None


def fmt(value: Any, digits: int = 4) -> str:
    """A metric or setting for a table: "—" for None, thousands separators for ints, `digits`
    decimals for floats below 100 (scientific below 1e-3, as learning rates are), one decimal
    above; anything else as str."""
    if (text := _exact(value)) is not None:
        return text
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def num(value: Any, digits: int = 4) -> str:
    """Fixed decimals for a float, thousands separators for an int, "—" for None (the eval
    report's columns line up on the decimal point)."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def sig(value: Any) -> str:
    """A count or statistic of the data: thousands separators, 3 significant digits for small
    floats, "—" for None, JSON for lists/dicts."""
    if (text := _exact(value)) is not None:
        return text
    if isinstance(value, float):
        if value.is_integer() or abs(value) >= 100:
            return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        return f"{value:.3g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage (0.079 -> "7.9%"), "—" when it is not a number."""
    return f"{value:.{digits}%}" if _finite(value) else "—"


def signed(value: Any, digits: int = 4) -> str:
    """A difference or attribution with its sign ("+0.0123"), "—" for None."""
    return "—" if value is None else f"{value:+.{digits}f}"


def duration(seconds: Any) -> str:
    """Seconds as "1h 2m 3s" / "2m 3.5s"; a non-number through `fmt`."""
    if not _finite(seconds):
        return fmt(seconds)
    minutes, sec = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes}m {sec:.0f}s" if hours else f"{minutes}m {sec:.1f}s"


def png_uri(png: Any) -> str:
    """A base64 `data:image/png` URI of PNG bytes, a PNG file (path) or a matplotlib Figure
    (drawn on an Agg canvas at 100 dpi); "" for None."""
    if png is None:
        return ""
    if isinstance(png, (bytes, bytearray)):
        data = bytes(png)
    elif isinstance(png, (str, os.PathLike)):
        data = Path(png).read_bytes()
    else:  # a Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(png)
        buf = io.BytesIO()
        png.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def script_json(obj: Any) -> Markup:
    """JSON safe inside <script>: no '<', '>' or '&' left (\\u escapes parse back the same),
    so no text (say "</script>" or "<!--") can end or confuse the script block."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def asset(name: str) -> Markup:
    """The text of a CSS or JS file of this folder, to paste inline (read as is: not a
    template, so braces in CSS or JS mean nothing to Jinja)."""
    source, _, _ = ENV.loader.get_source(ENV, name)
    return Markup(source.strip())


def _finalize(value: Any) -> Any:
    return value if hasattr(value, "__html__") else esc(value)


ENV = Environment(
    loader=FileSystemLoader(FOLDER),
    autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    finalize=_finalize,
)
ENV.filters.update(
    esc=esc, attr=attr, fmt=fmt, num=num, sig=sig, pct=pct, signed=signed,
    duration=duration, png_uri=png_uri, script_json=script_json,
)  # fmt: skip
ENV.globals.update(asset=asset)


def render(template_name: str, **context: Any) -> str:
    """Render `template_name` (a file of this folder) with `context`; a variable the template
    uses but the context lacks raises jinja2.UndefinedError."""
    return ENV.get_template(template_name).render(**context)
