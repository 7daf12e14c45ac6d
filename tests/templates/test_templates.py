"""tunelab.templates: hostile text comes out escaped on every page type, a missing context
variable is an error, the package data is found (and declared for the wheel), and every page
loads in headless Chromium with its scripts running and no console errors."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np
import pytest

from tunelab import templates
from tunelab.data.report import write_data_report
from tunelab.evaluation.report.generation import generation_html
from tunelab.evaluation.report.html import render_eval_html
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.run_report.page import write_report
from tunelab.interpret.attention_html import attention_html
from tunelab.interpret.render import render_global, render_report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

REPO = Path(__file__).resolve().parents[2]
# The injected markup would change the page's title if it ran; escaped it stays text.
EVIL = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
ESCAPED = "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;"
CHROMIUM = shutil.which("chromium-headless-shell") or "/usr/bin/chromium-headless-shell"


def _tokens(texts: list[str]) -> list[dict]:
    return [
        {"text": t, "space": True, "special": t.startswith("[")} for t in ["[CLS]", *texts, "[SEP]"]
    ]


def data_page(tmp: Path) -> str:
    report = {
        "source": EVIL,
        "rows": 3,
        "columns": {"text": {"dtype": "str", "missing": 0}, "label": {"dtype": "str"}},
        "warnings": [f"label {EVIL} is rare"],
        "labels": {"counts": {EVIL: 2, "b": 1}, "imbalance_ratio": 2.0, "missing": 0},
        "duplicates": {
            "exact_rows": 1,
            "near_rows": 0,
            "conflicting_label_groups": 0,
            "examples": [
                {"kind": "exact", "rows": [1, 2], "texts": [EVIL, EVIL], "labels": ["a", "a"]}
            ],
        },
        "prepare": {"rows_in": 3, "steps": [{"step": "clean", "changed": {"strip_html": 1}}]},
    }
    return write_data_report(report, tmp / "data")[1].read_text()


def run_page(tmp: Path) -> str:
    per_class = {EVIL: {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2}, "b": {}}
    results = {
        "run": {"model": EVIL, "trainable_params": 10, "total_params": 100},
        "test": {"accuracy": 0.5, "per_class": per_class, "confusion_matrix": [[1, 1], [0, 1]]},
        "baselines": {"majority": {"test": {"accuracy": 0.4}, "note": EVIL}},
    }
    return write_report(tmp / "run", results, [], title=f"run {EVIL}").read_text()


def eval_page(tmp: Path) -> str:
    details = {
        "labels": [EVIL, "b"],
        "confusion_matrix": [[2, 1], [0, 3]],
        "per_class": {
            n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3} for n in (EVIL, "b")
        },
        "calibration": {"n": 0, "ece": None, "mce": None},
        "mistakes": [{"row": 1, "text": EVIL, "label": EVIL, "predicted": "b", "confidence": 0.9}],
    }
    ci = {"value": 0.5, "low": 0.4, "high": 0.6}
    report = {
        "data": EVIL,
        "rows": 6,
        "task": "classification",
        "settings": {"level": 0.95, "bootstrap": 10, "seed": 0},
        "headline": ["accuracy"],
        "models": [{"name": EVIL, "spec": "x", "ci": {"accuracy": ci}, "details": details}],
        "comparison": [],
        "slices": {
            "column": EVIL,
            "slices": [{"value": EVIL, "n": 6, "small": True, "models": {EVIL: {"accuracy": ci}}}],
            "gaps": {EVIL: {"accuracy": {"gap": 0.0, "best_slice": EVIL, "worst_slice": EVIL}}},
            "gap_over": "all",
            "min_rows": 30,
        },
        "diagnosis": {},
    }
    return render_eval_html(report, [])


def generation_page(tmp: Path) -> str:
    stats = {"mean": 2.0, "median": 2.0, "p90": 2.0, "max": 2.0}
    per_row = [{"row": 1, "prompt": EVIL, "reference": EVIL, "generated": EVIL,
                "token_f1": 50.0, "rougeL": 40.0, "finish": "eos"}]  # fmt: skip
    details = {
        "per_row": per_row,
        "lengths": {"generated": stats, "reference": stats, "ratio": 1.0},
        "distributions": {k: [1.0] for k in ("token_f1", "rougeL", "gen_tokens", "ref_tokens")},
        "finish": {"eos": 1},
    }
    out = RowOutputs(EVIL, "causal-lm", 1, lambda idx: {}, {"stop_rate": 0.0}, details=details)
    return (
        "<!DOCTYPE html><html><head><title>t</title></head><body>"
        + generation_html([out])
        + ("</body></html>")
    )


def explain_page(tmp: Path) -> str:
    tokens = _tokens(["a", EVIL, "film"])
    unit = {
        "name": EVIL,
        "attributions": {"ig": [0.0, 0.5, -0.2, 0.1, 0.0], "occlusion": [0.0, 0.1, 0.3, -0.1, 0.0]},
        "score": 1.0,
        "baseline_score": 0.2,
        "warning": EVIL,
    }
    report = {
        "model": EVIL,
        "task": "classification",
        "methods": ["ig", "occlusion"],
        "settings": {"score": "log_odds", "baseline_token": "[MASK]", "ig_steps": 8},
        "texts": [
            {
                "text": EVIL,
                "pair": EVIL,
                "model": EVIL,
                "tokens": tokens,
                "prediction": {"label": EVIL, "score": 0.9},
                "units": [unit],
                "attention": {"html": "attention-1.html"},
            }
        ],
    }
    return render_report(report)


def global_page(tmp: Path) -> str:
    words = [{"word": EVIL, "mean": 0.5, "pushes": 2, "count": 3}, {"word": "b", "mean": 0.1,
             "pushes": 1, "count": 2}]  # fmt: skip
    report = {"model": EVIL, "rows": 4, "data": EVIL, "method": "ig", "min_count": 2,
              "classes": {EVIL: words, "b": words}}  # fmt: skip
    return render_global(report)


def small_maps(tokens: list[str], layers: int = 2, heads: int = 2) -> dict:
    n = len(tokens)
    att = np.random.default_rng(0).random((layers, heads, n, n))
    att /= att.sum(-1, keepdims=True)
    return {
        "model": EVIL,
        "tokens": tokens,
        "special": [t.startswith("[") for t in tokens],
        "attentions": att,
        "rollout": att.mean(1)[-1],
    }


ATTENTION_TOKENS = ["[CLS]", EVIL, "</script>", "<!--", "a&b", "[SEP]"]


def attention_page(tmp: Path) -> str:
    return attention_html(small_maps(ATTENTION_TOKENS), title=f"Attention {EVIL}")


PAGES = {
    "data": data_page,
    "run": run_page,
    "eval": eval_page,
    "generation": generation_page,
    "explain": explain_page,
    "global": global_page,
    "attention": attention_page,
}


@pytest.mark.parametrize("page", PAGES)
def test_hostile_text_is_escaped_on_every_page(page, tmp_path):
    html = PAGES[page](tmp_path)
    # the attention page's tokens are data in a JSON block ('<' written as \u003c): not markup
    markup = re.sub(
        r'(<script type="application/json"[^>]*>).*?(</script>)', r"\1\2", html, flags=re.S
    )
    assert "document.title='pwned'" not in markup.replace(ESCAPED, "")  # no live copy anywhere
    if page == "attention":  # tokens travel as JSON, '<' as \u003c; the title is escaped
        assert "\\u003cscript\\u003e" in html and ESCAPED in html
        assert html.count("<script") == 2 and html.count("</script>") == 2 and "<!--" not in html
    else:
        assert ESCAPED in html
        assert "<script" not in html.replace("&lt;script", "")
    assert "<img src=x" not in markup
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", markup)  # self-contained


def test_escaping_helpers():
    assert templates.esc("a\x07<b>") == "a<mark>\\x07</mark>&lt;b&gt;"
    assert templates.attr('"\x07"') == "&quot;\\x07&quot;"
    t = templates.ENV.from_string("{{ x }}|{{ y }}|{{ z|sig }}")
    assert t.render(x="<i>", y=templates.esc("<i>"), z=1234.5) == "&lt;i&gt;|&lt;i&gt;|1,234.5"
    assert templates.script_json({"t": "</script>&"}) == '{"t":"\\u003c/script\\u003e\\u0026"}'


def test_number_formats():
    assert [templates.fmt(v) for v in (None, True, 3000, 0.5, 2e-4, 1234.56)] == [
        "—", "true", "3,000", "0.5000", "2.00e-04", "1,234.6",
    ]  # fmt: skip
    assert [templates.sig(v) for v in (0.12345, 24.5, 400.0, [1, "a"])] == [
        "0.123", "24.5", "400", '[1, "a"]',
    ]  # fmt: skip
    assert templates.num(0.0001, 3) == "0.000" and templates.signed(0.5) == "+0.5000"
    assert templates.pct(0.079) == "7.9%" and templates.pct(None) == "—"
    assert templates.duration(83.5) == "1m 23.5s" and templates.duration(3700) == "1h 1m 40s"


def test_png_uri_of_bytes_path_and_figure(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    uri = templates.png_uri(fig)
    data = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert uri.startswith("data:image/png;base64,") and data[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "f.png").write_bytes(data)
    assert templates.png_uri(tmp_path / "f.png") == uri == templates.png_uri(data)
    assert templates.png_uri(None) == ""


def test_strict_undefined_catches_a_missing_variable():
    with pytest.raises(jinja2.UndefinedError, match="split"):
        templates.render("run_report.html.j2", title="t", summary=[], comparisons=[],
                         columns=[], notes=[], all_metrics=None, per_class=None,
                         confusion="data:image/png;base64,", curves=None)  # fmt: skip
    with pytest.raises(jinja2.UndefinedError):
        templates.ENV.from_string("{{ nothing }}").render()


def test_package_data_is_found_and_declared():
    names = sorted(p.name for p in templates.FOLDER.iterdir() if p.suffix in (".j2", ".css", ".js"))
    assert {"page.html.j2", "macros.html.j2", "base.css", "attention.js"} <= set(names)
    for name in names:  # every template compiles; every CSS/JS file reads back through asset()
        if name.endswith(".j2"):
            templates.ENV.get_template(name)
        else:
            assert templates.asset(name).strip()
    used = set()
    for name in names:
        used |= set(
            re.findall(r"""asset\(["']([^"']+)["']\)""", (templates.FOLDER / name).read_text())
        )
        used |= set(re.findall(r'"(\w+\.css)"', (templates.FOLDER / name).read_text()))
    assert used and used <= set(names), used - set(names)
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["tunelab"]
    missing = [n for n in names if not any(fnmatch.fnmatch(f"templates/{n}", p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def _chromium(page: Path) -> tuple[str, str]:
    p = subprocess.run(
        [CHROMIUM, "--no-sandbox", "--headless", "--disable-gpu", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,2400",
         "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, p.stderr


def test_pages_load_in_headless_chromium_and_their_scripts_run(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (make install adds the chromium-headless-shell package)")
    for name, build in PAGES.items():
        html = build(tmp_path)
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        dom, log = _chromium(path)
        console = [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        assert not console, f"{name}: {console}"
        title = re.search(r"<title>(.*?)</title>", dom, re.S)
        assert title and title.group(1) != "pwned", f"{name}: injected markup ran"
        assert dom.count("<img") == html.count("<img"), name  # no markup injected or lost
        if name == "attention":  # the script built the controls, chips and line diagram
            layers = re.findall(r"<option[^>]*>Layer \d+</option>", dom)
            chips = re.findall(r'<span class="tla-tok[^"]*"', dom)
            assert len(layers) == 2 and "Rollout (all layers)" in dom and "Head 1" in dom
            assert len(chips) == len(ATTENTION_TOKENS)
            assert dom.count("<line") > 0 and re.search(r'data-role="max">0\.\d+<', dom)
            data = json.loads(
                re.search(
                    r'<script type="application/json" class="tla-data">(.*?)</script>', html, re.S
                ).group(1)  # fmt: skip
            )
            assert data["tokens"] == ATTENTION_TOKENS
