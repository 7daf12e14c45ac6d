"""Produce one of every HTML page tunelab writes, screenshot each one and record what it holds.

Only the `tunelab` command line is used (subprocess), so the script checks a refactor that
moves modules around: run it before and after, then compare the two OUTDIRs.

    python bench/html_pages.py OUTDIR [--tunelab CMD] [--keep-work]

Run it from the repository root (the example data is read from examples/data/sst2/). Pages:

    data_inspect   tunelab data inspect FILE --out DIR          (report.html)
    data_prepare   tunelab data prepare CONFIG                  (report.html of the prepared splits)
    run            tunelab train CONFIG                         (RUN/report.html)
    eval           tunelab eval RUN --data ... --group length   (report.html)
    explain        tunelab explain RUN --text ... --attention   (explain.html)
    attention      the same command                             (attention-1.html)
    global         tunelab explain RUN --global --data ...      (global.html)
    search         tunelab tune CONFIG --trials 3               (search.png: tune writes no HTML)

OUTDIR gets <page>.html (the page as written), <page>.png (headless Chromium screenshot),
<page>.dom.html (the DOM after the page's scripts ran), <page>.full.png (the whole page,
where it is taller than the 2400-pixel window), <page>.log (the tunelab command's
output), commands.json (every command run, its exit code and seconds) and summary.json:
page -> {size, img, svg, table, canvas, js_errors, console}. js_errors are uncaught errors
and console.error calls (caught by a probe copy of the page with an onerror hook) plus any
"Uncaught" line in Chromium's stderr log. Every setting is tiny (MiniLM, a few hundred rows,
a few dozen steps), so the whole script takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium-headless-shell"
CHROME_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--hide-scrollbars"]
WINDOW = "--window-size=1280,2400"
FULL_MAX = 16000  # tallest full-page screenshot (pixels)
SST2 = Path("examples/data/sst2")
MODEL = "all-minilm-l6-v2"
TEXT = "a gripping, beautifully shot film"

# Installed before any of the page's own scripts: records uncaught errors, unhandled promise
# rejections and console.error calls, and writes them into the DOM for --dump-dom to read.
PROBE = """<script>(function(){var e=[];function put(){try{var n=document.getElementById(
'__probe_errors');if(!n){n=document.createElement('script');n.type='application/json';
n.id='__probe_errors';(document.body||document.documentElement).appendChild(n);}
n.textContent=JSON.stringify(e);n.setAttribute('data-height',String(Math.max(
document.documentElement.scrollHeight,document.body?document.body.scrollHeight:0)));}
catch(x){}}
window.addEventListener('error',function(v){var m=String(v.message||v.type);e.push(
(/^Uncaught/.test(m)?'':'Uncaught ')+m+' @'+(v.filename||'')+':'+(v.lineno||0));put();},true);
window.addEventListener('unhandledrejection',function(v){e.push('Unhandled rejection: '+
String(v.reason));put();});var ce=console.error;console.error=function(){e.push(
'console.error: '+Array.prototype.map.call(arguments,String).join(' '));put();
return ce.apply(console,arguments);};document.addEventListener('DOMContentLoaded',put);
window.addEventListener('load',function(){put();setTimeout(put,50);});})();</script>"""


def jsonl_head(src: Path, dst: Path, n: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open() as f, dst.open("w") as out:
        for i, line in enumerate(f):
            if i >= n:
                break
            out.write(line)
    return dst


def write_yaml(path: Path, cfg: dict) -> Path:
    # JSON is YAML: no dependency on a YAML library here
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


class Runner:
    def __init__(self, tunelab: list[str], outdir: Path):
        self.tunelab, self.outdir, self.commands = tunelab, outdir, []

    def __call__(self, page: str, *args: str, check: bool = True) -> int:
        cmd = [*self.tunelab, *map(str, args)]
        shown = shlex.join(cmd)
        print(f"$ {shown}", flush=True)
        t0 = time.time()
        log = self.outdir / f"{page}.log"
        with log.open("a") as f:
            f.write(f"$ {shown}\n")
            f.flush()
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        seconds = round(time.time() - t0, 1)
        self.commands.append({"page": page, "command": shown, "rc": rc, "seconds": seconds})
        print(f"  rc={rc} {seconds}s", flush=True)
        if rc and check:
            print(f"  failed: see {log}", file=sys.stderr)
        return rc


def chromium(*args: str, timeout: int = 120) -> tuple[str, str]:
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    p = subprocess.run(
        [CHROMIUM, *CHROME_ARGS, "--enable-logging=stderr", "--v=0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return p.stdout, p.stderr


def console_lines(stderr: str) -> list[str]:
    return [line.split("] ", 1)[-1] for line in stderr.splitlines() if ":CONSOLE" in line]


def shoot(page: str, html: Path, outdir: Path) -> dict:
    """Copy the page, screenshot it in place (relative links keep working), dump its DOM,
    and collect its JS errors from a probe copy and from Chromium's log."""
    shutil.copyfile(html, outdir / f"{page}.html")
    url = html.resolve().as_uri()
    png = outdir / f"{page}.png"
    _, err_shot = chromium(WINDOW, f"--screenshot={png}", url)
    dom, err_dom = chromium(WINDOW, "--dump-dom", url)
    (outdir / f"{page}.dom.html").write_text(dom)

    text = html.read_text(errors="replace")
    m = re.search(r"<head[^>]*>", text, re.I)
    cut = m.end() if m else 0
    probe = html.with_name(f".probe-{html.name}")
    probe.write_text(text[:cut] + PROBE + text[cut:])
    probe_dom, err_probe = chromium(
        WINDOW, "--virtual-time-budget=3000", "--dump-dom", probe.resolve().as_uri()
    )
    probe.unlink()
    m = re.search(r'<script[^>]*id="__probe_errors"[^>]*>(.*?)</script>', probe_dom, re.S)
    caught = json.loads(m.group(1)) if m and m.group(1).strip() else []
    h = re.search(r'id="__probe_errors"[^>]*data-height="(\d+)"', probe_dom) or re.search(
        r'data-height="(\d+)"[^>]*id="__probe_errors"', probe_dom
    )
    height = int(h.group(1)) if h else None
    full = None
    if height and height > 2400:  # the whole page too, in one tall screenshot
        full = outdir / f"{page}.full.png"
        _, err_full = chromium(
            f"--window-size=1280,{min(height, FULL_MAX)}", f"--screenshot={full}", url
        )
        err_shot += err_full

    console = sorted(set(console_lines(err_shot) + console_lines(err_dom)))
    uncaught = [c for c in console if "Uncaught" in c]
    errors = list(dict.fromkeys(caught + uncaught))
    low = dom.lower()
    return {
        "html": f"{page}.html",
        "size": html.stat().st_size,
        "dom_size": len(dom),
        "png_size": png.stat().st_size if png.exists() else 0,
        "img": low.count("<img"),
        "svg": low.count("<svg"),
        "table": low.count("<table"),
        "canvas": low.count("<canvas"),
        "js_errors": errors,
        "console": console,
        "height": height,
        "full_png": full.name if full else None,
        "probe_ran": m is not None,
    }


def image_page(page: str, png_src: Path, outdir: Path) -> dict:
    shutil.copyfile(png_src, outdir / f"{page}.png")
    return {
        "html": None,
        "note": "tunelab tune writes no HTML page; this is its search.png",
        "png_size": png_src.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--tunelab", default=None, help="command that runs tunelab (default: tunelab)")
    ap.add_argument("--work", type=Path, default=None, help="folder for runs (default: a temp dir)")
    ap.add_argument("--keep-work", action="store_true", help="keep the runs (default: removed)")
    ap.add_argument("--only", default=None, help="comma-separated pages (with their prereqs)")
    args = ap.parse_args(argv)

    if args.tunelab:
        tunelab = shlex.split(args.tunelab)
    else:
        beside = Path(sys.executable).parent / "tunelab"
        tunelab = [str(beside)] if beside.exists() else ["tunelab"]
    if not (SST2 / "train.jsonl").exists():
        raise SystemExit(f"error: run from the repository root ({SST2}/train.jsonl not found)")
    outdir = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    for f in outdir.glob("*.log"):
        f.unlink()
    work = (args.work or Path(tempfile.mkdtemp(prefix="tunelab-html-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    run = Runner(tunelab, outdir)
    only = set(args.only.split(",")) if args.only else None
    want = lambda *pages: only is None or bool(only & set(pages))  # noqa: E731

    data = work / "data"
    train = jsonl_head(SST2 / "train.jsonl", data / "train.jsonl", 300)
    val = jsonl_head(SST2 / "validation.jsonl", data / "validation.jsonl", 100)
    test = jsonl_head(SST2 / "test.jsonl", data / "test.jsonl", 120)
    base = {
        "model": MODEL,
        "task": "classification",
        "data": {
            "train": str(train),
            "validation": str(val),
            "test": str(test),
            "text": "sentence",
            "label": "label",
            "max_length": 48,
        },
        "method": {"name": "lora"},
        "train": {"max_steps": 60, "eval_steps": 20, "batch_size": 16, "log_steps": 5, "seed": 0},
    }
    pages: dict[str, Path | tuple[str, Path]] = {}

    if want("data_inspect"):
        out = work / "inspect"
        # the test split: it has the `length` column the group (bias) check needs
        run("data_inspect", "data", "inspect", SST2 / "test.jsonl", "--text", "sentence",
            "--label", "label", "--group", "length", "--model", MODEL,
            "--against", SST2 / "train.jsonl", "--against", SST2 / "validation.jsonl",
            "--out", out)  # fmt: skip
        pages["data_inspect"] = out / "report.html"

    if want("data_prepare"):
        cfg = {
            **base,
            "data": {
                "train": str(jsonl_head(SST2 / "train.jsonl", data / "prep_in.jsonl", 400)),
                "text": "sentence",
                "label": "label",
                "prepare": {
                    "output": str(work / "prepared"),
                    "clean": {"min_chars": 3},
                    "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
                    "augment": {"multiplier": 0.25},
                },
            },
            "output": str(work / "runs" / "prep"),
        }
        run("data_prepare", "data", "prepare", write_yaml(work / "prepare.yaml", cfg), "--force")
        pages["data_prepare"] = work / "prepared" / "report.html"

    rundir = work / "runs" / "tiny"
    if want("run", "eval", "explain", "attention", "global"):
        cfg = {**base, "output": str(rundir)}
        run("run", "train", write_yaml(work / "train.yaml", cfg), "--overwrite")
        pages["run"] = rundir / "report.html"

    if want("eval"):
        out = work / "eval"
        run("eval", "eval", rundir, "--data", test, "--group", "length",
            "--bootstrap", "200", "--output", out)  # fmt: skip
        pages["eval"] = out / "report.html"

    if want("explain", "attention"):
        out = work / "explain"
        run("explain", "explain", rundir, "--text", TEXT, "--attention",
            "--ig-steps", "16", "--output", out)  # fmt: skip
        pages["explain"] = out / "explain.html"
        found = sorted(out.glob("attention-*.html"))  # attention-1.html: one per --text
        pages["attention"] = found[0] if found else out / "attention-1.html"

    if want("global"):
        out = work / "global"
        run("global", "explain", rundir, "--global", "--data", val, "--rows", "40",
            "--top", "10", "--min-count", "2", "--output", out)  # fmt: skip
        pages["global"] = out / "global.html"

    if want("search"):
        out = work / "tune"
        cfg = {
            **base,
            "data": {**base["data"], "test": None},
            "train": {**base["train"], "max_steps": 20},
            "output": str(out),
            "search": {
                "sampler": "random",
                "space": {
                    "train.lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
                    "method.r": {"type": "categorical", "choices": [4, 8]},
                },
            },
        }
        run("search", "tune", write_yaml(work / "tune.yaml", cfg), "--trials", "3",
            "--overwrite")  # fmt: skip
        pages["search"] = ("png", out / "search.png")

    summary = {}
    for page, target in pages.items():
        if isinstance(target, tuple):
            path = target[1]
            summary[page] = (
                image_page(page, path, outdir) if path.exists() else {"missing": str(path)}
            )
        elif target.exists():
            print(f"shoot {page}: {target}", flush=True)
            summary[page] = shoot(page, target, outdir)
        else:
            summary[page] = {"missing": str(target)}
        if "missing" in summary[page]:
            print(f"  {page}: {target} was not written", file=sys.stderr)

    (outdir / "commands.json").write_text(json.dumps(run.commands, indent=2) + "\n")
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.keep_work:
        print(f"work: {work}")
    elif args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    for page, s in summary.items():
        errs = len(s.get("js_errors", []))
        print(f"{page:13s} size={s.get('size', '-')!s:>8} img={s.get('img', '-')} "
              f"svg={s.get('svg', '-')} table={s.get('table', '-')} js_errors={errs}"
              + ("  MISSING" if "missing" in s else ""))  # fmt: skip
    failed = [c for c in run.commands if c["rc"]]
    missing = [p for p, s in summary.items() if "missing" in s]
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
