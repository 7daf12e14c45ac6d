"""Monitoring benchmark: the prediction log's cost, and how well `tunelab monitor`'s window
statistics and default alert rules tell shifted traffic from unshifted, against Evidently.

One invocation, one machine, in this order:

1. **Model.** A MiniLM (`all-minilm-l6-v2`, full fine-tuning, 1 epoch, max length 64) SST-2
   classifier trained by tunelab on `--train-rows` random SST-2 train rows (validation: 500
   further rows), or `--run DIR` reused. The no-shift stream is further SST-2 train rows,
   disjoint from both, in random order: the same distribution as the reference
   (`monitor.reference.load_reference`: training + validation texts).
2. **Streams** (each row computed in-process with `predict_texts(embed=True)`, the forward
   pass the server logs, the embedding round-tripped through float16 as the log stores it):
   - `none`: held-out SST-2 train rows;
   - `agnews-10/30/100`: AG News test texts mixed in at 10%, 30%, 100% (another domain and
     label space: detection only);
   - `sentences`: SST-2's validation set (full review sentences instead of the train split's
     phrases; same labels, so the estimate error is measurable under shift);
   - `typos`: held-out rows with typos in 30% of the words (perturb.typos; same labels).
3. **False alarms / detection / estimate error.** Windows of `--window` rows (200) through
   `monitor.windows.window_stats` and `monitor.rules.evaluate(stats, DEFAULT_RULES)`: the share
   of no-shift windows with any alert; per mix, rows until the first alert (windows one after
   another, `--repeats` streams); |estimated - true accuracy| per window.
4. **Evidently** (its own venv, `--evidently-python`, default /work/evenv/bin/python: it is not
   a tunelab dependency) on the very same windows, as a subprocess: its embedding drift on the
   64 logged numbers and its text drift presets, per window: alert share, first alert, seconds.
5. **Logging overhead.** A real `tunelab serve` process with `--db sqlite:///...` (logging on)
   and with `--no-log`, same model and requests (one SST-2 sentence per request), 32 closed-loop
   clients (httpx, asyncio), `--requests` each, alternating off/on/off/on; requests/s ratio.

    OMP_NUM_THREADS=1 .venv/bin/python bench/monitor.py               # ~10-15 min, appends to results/monitor.md
    .venv/bin/python bench/monitor.py --parts detect --no-save        # skip the server, no Evidently: --no-evidently
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS_DIR, cpu_busy, machine_info  # noqa: E402

DATA = REPO.parent / "shared" / "datasets"
SST2_TRAIN = DATA / "sst2" / "train.jsonl"
SST2_VAL = DATA / "sst2" / "validation.jsonl"
AGNEWS = DATA / "ag_news" / "test.jsonl"
LABELS = ("negative", "positive")
EVIDENTLY_CHILD = Path(__file__).resolve().parent / "monitor_evidently.py"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# -- 1. the model and the data ---------------------------------------------------------------
def sst2_splits(train_rows: int, heldout_rows: int, seed: int = 0):
    """Disjoint random rows of SST-2 train (dedup on the text: the treebank's phrases repeat)."""
    seen, rows = set(), []
    for r in read_jsonl(SST2_TRAIN):
        text = r["sentence"].strip()
        if text and text not in seen:
            seen.add(text)
            rows.append({"sentence": text, "label": LABELS[r["label"]]})
    random.Random(seed).shuffle(rows)
    train, val = rows[:train_rows], rows[train_rows : train_rows + 500]
    held = rows[train_rows + 500 : train_rows + 500 + heldout_rows]
    return train, val, held


def ensure_model(args, work: Path) -> Path:
    """The run folder: --run, or a fresh tunelab run on the SST-2 subset (cached in --work)."""
    if args.run:
        return Path(args.run)
    run = work / "run"
    if (run / "model" / "tunelab.json").exists():
        print(f"model: reusing {run}", flush=True)
        return run
    train, val, _ = sst2_splits(args.train_rows, 0)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_jsonl(data / "train.jsonl", train)
    write_jsonl(data / "validation.jsonl", val)
    from tunelab.api import train as tl_train

    cfg = {
        "model": "all-minilm-l6-v2",
        "task": "classification",
        "data": {
            "train": str(data / "train.jsonl"),
            "validation": str(data / "validation.jsonl"),
            "text": "sentence",
            "label": "label",
            "max_length": 64,
        },
        "method": {"name": "full"},
        "train": {"epochs": 1, "batch_size": 32, "seed": 0},
        "eval": {"baselines": []},
        "output": str(run),
    }
    t0 = time.monotonic()
    res = tl_train(cfg, overwrite=True)
    print(f"model: trained in {time.monotonic() - t0:.0f} s -> {run}", flush=True)
    print(f"  validation accuracy: {res.get('validation', {}).get('accuracy')}")
    return run


# -- 2. rows as the log would hold them -----------------------------------------------------
def log_rows(trained, texts: list[str], labels: list[str | None], source: str) -> list[dict]:
    """One prediction-log row per text from the served forward pass (predict_texts(embed=True));
    the embedding goes through float16 like the log's bytes; `true_label` for the estimate."""
    from tunelab.inference.forward import predict_texts

    out = []
    preds = predict_texts(trained, texts, embed=True)
    for i, (text, y, p) in enumerate(zip(texts, labels, preds)):
        emb = np.asarray(p["embedding"], dtype=np.float16).astype(np.float32)
        out.append(
            {
                "id": f"{source}-{i}",
                "time": float(i),
                "status": 200,
                "kind": "classify",
                "text": text,
                "label": p["label"],
                "confidence": p["score"],
                "output": {"label": p["label"], "scores": p["scores"]},
                "embedding": emb,
                "n_tokens": p["n_tokens"],
                "n_unk": p["n_unk"],
                "latency_ms": 0.0,
                "error": None,
                "true_label": y,
                "source": source,
            }
        )
    return out


def build_pools(args, trained) -> dict[str, list[dict]]:
    from tunelab.evaluation.robustness.perturb import typos

    _, _, held = sst2_splits(args.train_rows, args.heldout_rows)
    rng = random.Random(1)
    ag = read_jsonl(AGNEWS)
    rng.shuffle(ag)
    ag = ag[: args.agnews_rows]
    val = read_jsonl(SST2_VAL)
    typo_src = held[: args.typo_rows]
    trng = random.Random(2)
    typo_texts = [typos(r["sentence"], 0.3, trng)[0] for r in typo_src]
    t0 = time.monotonic()
    pools = {
        "held": log_rows(
            trained, [r["sentence"] for r in held], [r["label"] for r in held], "held"
        ),
        "agnews": log_rows(trained, [r["text"] for r in ag], [None] * len(ag), "agnews"),
        "sentences": log_rows(
            trained,
            [r["sentence"].strip() for r in val],
            [LABELS[r["label"]] for r in val],
            "sentences",
        ),
        "typos": log_rows(trained, typo_texts, [r["label"] for r in typo_src], "typos"),
    }
    n = sum(len(v) for v in pools.values())
    print(f"rows: {n} computed in {time.monotonic() - t0:.0f} s", flush=True)
    return pools


# -- 3. windows, statistics, alerts ---------------------------------------------------------
def make_windows(args, pools) -> list[dict]:
    """Every window both monitors see: {"key", "stream", "repeat", "index", "rows"}."""
    w, rng = args.window, np.random.default_rng(0)
    out = []
    held = list(pools["held"])
    random.Random(3).shuffle(held)
    for i in range(len(held) // w):
        out.append({"stream": "none", "repeat": 0, "index": i, "rows": held[i * w : (i + 1) * w]})
    for name in ("sentences", "typos"):
        rows = list(pools[name])
        random.Random(4).shuffle(rows)
        for i in range(len(rows) // w):
            out.append({"stream": name, "repeat": 0, "index": i, "rows": rows[i * w : (i + 1) * w]})
    for mix, n_windows in ((0.1, args.windows_10), (0.3, args.windows_30), (1.0, args.windows_100)):
        for rep in range(args.repeats):
            n = n_windows * w
            shifted = rng.random(n) < mix
            base = rng.choice(len(pools["held"]), n, replace=False)
            other = rng.choice(len(pools["agnews"]), n, replace=n > len(pools["agnews"]))
            rows = [
                pools["agnews"][o] if s else pools["held"][b]
                for s, b, o in zip(shifted, base, other)
            ]
            for i in range(n_windows):
                out.append(
                    {
                        "stream": f"agnews-{round(mix * 100)}",
                        "repeat": rep,
                        "index": i,
                        "rows": rows[i * w : (i + 1) * w],
                    }
                )
    for win in out:
        win["key"] = f"{win['stream']}/{win['repeat']}/{win['index']}"
    return out


def isotonic_estimate(rows: list[dict], ref, cal) -> float | None:
    """The window's accuracy estimate with the calibration `cal` (forced to isotonic, CBPE's
    choice), beside the default's, for the table."""
    from tunelab.monitor.estimate import estimate_performance

    probs = np.array([[r["output"]["scores"][n] for n in ref.labels] for r in rows])
    return float(estimate_performance(cal, probs / probs.sum(axis=1, keepdims=True))["accuracy"])


def tunelab_windows(windows, ref) -> dict[str, dict]:
    from tunelab.monitor.estimate import fit_calibrator
    from tunelab.monitor.rules import DEFAULT_RULES, evaluate
    from tunelab.monitor.windows import window_stats

    iso = dataclasses.replace(fit_calibrator(ref.val_probs, ref.val_labels), method="isotonic")
    out = {}
    t_all = time.monotonic()
    for n, win in enumerate(windows):
        t0 = time.perf_counter()
        stats = window_stats(win["rows"], ref)
        alerts = evaluate(stats, DEFAULT_RULES, window=win["index"])
        s = time.perf_counter() - t0
        labelled = [r for r in win["rows"] if r["true_label"] is not None]
        true_acc = (
            float(np.mean([r["label"] == r["true_label"] for r in labelled]))
            if len(labelled) == len(win["rows"])
            else None
        )
        est = stats.get("estimate") or {}
        out[win["key"]] = {
            "alert": bool(alerts),
            "fired": sorted({a["stat"] for a in alerts}),
            "s": s,
            "p": {
                "mmd_p": stats["embedding"]["mmd_p"],
                "domain_p": stats["embedding"]["domain_p"],
                "chi2_p": (stats.get("prediction") or {}).get("chi2_p"),
                "length_ks_p": stats["input"]["length_ks_p"],
            },
            "est_accuracy": est.get("accuracy"),
            "est_isotonic": isotonic_estimate(win["rows"], ref, iso)
            if true_acc is not None
            else None,
            "calibration": est.get("calibration"),
            "est_low": est.get("accuracy_low"),
            "est_high": est.get("accuracy_high"),
            "true_accuracy": true_acc,
        }
        if (n + 1) % 10 == 0:
            print(
                f"  tunelab: {n + 1}/{len(windows)} windows, {time.monotonic() - t_all:.0f} s",
                flush=True,
            )
    return out


def evidently_windows(args, windows, ref_emb, ref_text, work: Path) -> dict | None:
    spec = {
        "ref_emb": np.asarray(ref_emb, dtype=np.float32).tolist(),
        "ref_text": ref_text,
        "windows": [
            {
                "key": w["key"],
                "emb": np.stack([r["embedding"] for r in w["rows"]]).tolist(),
                "text": [r["text"] for r in w["rows"]],
            }
            for w in windows
        ],
        "report_windows": args.evidently_report_windows,
    }
    inp, outp = work / "evidently_in.json", work / "evidently_out.json"
    inp.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.monotonic()
    proc = subprocess.run(
        [args.evidently_python, str(EVIDENTLY_CHILD), str(inp), str(outp)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"evidently FAILED:\n{proc.stderr[-3000:]}")
        return None
    res = json.loads(outp.read_text())
    print(f"evidently {res['version']}: {len(windows)} windows in {time.monotonic() - t0:.0f} s")
    return res


def reference_texts(run: Path, n: int) -> list[str]:
    """The reference's texts for Evidently (its text drift needs texts, ours needs none):
    the run's training + validation texts, subsampled as load_reference does (seeded)."""
    import yaml

    from tunelab.monitor.reference import MAX_TRAIN, MAX_VALIDATION, _subsample

    data = yaml.safe_load((run / "config.yaml").read_text())["data"]
    col = data.get("text") or "text"
    tr = [r[col] for r in read_jsonl(Path(data["train"]))]
    va = [r[col] for r in read_jsonl(Path(data["validation"]))]
    texts = [tr[i] for i in _subsample(len(tr), MAX_TRAIN)]
    texts += [va[i] for i in _subsample(len(va), MAX_VALIDATION)]
    if len(texts) != n:
        print(f"  note: {len(texts)} reference texts for {n} reference embeddings")
    return texts


# -- 5. logging overhead against a real server -----------------------------------------------
def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used: a cost per request that
    other jobs on the machine do not change the way they change requests/s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_rate(args, run: Path, work: Path, log_on: bool, k: int, texts: list[str]) -> dict:
    import httpx
    from serve import load, start, stop  # bench/serve.py's server start and load generator

    port = 8431
    db = work / f"log-{k}.db"
    for old in work.glob(f"log-{k}.db*"):  # a fresh log per run
        old.unlink()
    cmd = [sys.executable, "-m", "tunelab.cli", "serve", f"sst2={run}", "--port", str(port)]
    cmd += ["--log-level", "warning", "--max-batch-size", "32"]
    cmd += ["--db", f"sqlite:///{db}"] if log_on else ["--no-log"]
    proc = start(cmd, port, args.threads, work / f"serve-{k}.log")
    try:
        url = f"http://127.0.0.1:{port}/v1/classify"
        asyncio.run(load(url, [{"model": "sst2", "input": t} for t in texts[:64]], 8))  # warm-up
        bodies = [{"model": "sst2", "input": texts[i % len(texts)]} for i in range(args.requests)]
        busy = cpu_busy(1.0)
        cpu0 = proc_cpu_s(proc.pid)
        row = asyncio.run(load(url, bodies, 32))
        row["server_cpu_ms_per_request"] = round(
            (proc_cpu_s(proc.pid) - cpu0) * 1000 / len(bodies), 2
        )
        httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
    finally:
        stop(proc)
    row |= {"logging": log_on, "run": k, "cpu_busy_before": round(busy, 3)}
    if log_on:
        from tunelab.store.predictions import read_predictions

        row["rows_logged"] = len(read_predictions(f"sqlite:///{db}"))
        row["rows_expected"] = args.requests + 64
    print(f"  serve logging={'on' if log_on else 'off'}: {json.dumps(row)}", flush=True)
    return row


def overhead(args, run: Path, work: Path) -> list[dict]:
    texts = [r["sentence"] for r in read_jsonl(SST2_VAL)]
    rows, k = [], 0
    for _ in range(args.alternations):
        for log_on in (False, True):
            rows.append(serve_rate(args, run, work, log_on, k, texts))
            k += 1
    return rows


# -- the summary -----------------------------------------------------------------------------
def first_alert(windows, verdict, stream: str, repeat: int, w: int) -> int | None:
    keys = sorted(
        (x for x in windows if x["stream"] == stream and x["repeat"] == repeat),
        key=lambda x: x["index"],
    )
    for x in keys:
        if verdict(x["key"]):
            return (x["index"] + 1) * w
    return None


def summarize(args, windows, ours, ev) -> dict:
    w = args.window
    streams = sorted({x["stream"] for x in windows})
    by_stream = {s: [x for x in windows if x["stream"] == s] for s in streams}
    detectors = {"tunelab": lambda k: ours[k]["alert"]}
    if ev:
        evw = {r["key"]: r for r in ev["windows"]}
        detectors["evidently emb (model)"] = lambda k: evw[k]["emb_model"]["drift"]
        detectors["evidently emb (mmd)"] = lambda k: evw[k]["emb_mmd"]["drift"]
        detectors["evidently text"] = lambda k: bool(evw[k]["text"].get("drift"))
    out = {"detectors": {}, "estimate": {}, "per_rule_none": {}}
    for name, verdict in detectors.items():
        d = {"alert_share": {}, "first_alert_rows": {}}
        for s, xs in by_stream.items():
            d["alert_share"][s] = float(np.mean([verdict(x["key"]) for x in xs]))
            if s.startswith("agnews"):
                reps = sorted({x["repeat"] for x in xs})
                d["first_alert_rows"][s] = [first_alert(windows, verdict, s, r, w) for r in reps]
                d["first_alert_rows"][s + "_windows"] = max(x["index"] for x in xs) + 1
        out["detectors"][name] = d
    none = [ours[x["key"]] for x in by_stream["none"]]
    from tunelab.monitor.rules import DEFAULT_RULES

    for rule in DEFAULT_RULES:
        out["per_rule_none"][rule["stat"]] = float(
            np.mean([rule["stat"] in r["fired"] for r in none])
        )
    for s in ("none", "sentences", "typos"):
        rs = [ours[x["key"]] for x in by_stream.get(s, [])]
        rs = [r for r in rs if r["est_accuracy"] is not None and r["true_accuracy"] is not None]
        if not rs:
            continue
        err = [abs(r["est_accuracy"] - r["true_accuracy"]) for r in rs]
        cover = [
            r["est_low"] <= r["true_accuracy"] <= r["est_high"]
            for r in rs
            if r["est_low"] is not None
        ]
        out["estimate"][s] = {
            "windows": len(rs),
            "true_accuracy_mean": float(np.mean([r["true_accuracy"] for r in rs])),
            "est_accuracy_mean": float(np.mean([r["est_accuracy"] for r in rs])),
            "abs_error_mean": float(np.mean(err)),
            "abs_error_max": float(np.max(err)),
            "interval_coverage": float(np.mean(cover)) if cover else None,
            "calibration": rs[0]["calibration"],
            "isotonic_abs_error_mean": float(
                np.mean([abs(r["est_isotonic"] - r["true_accuracy"]) for r in rs])
            ),
        }
    out["seconds_per_window"] = {"tunelab": float(np.median([r["s"] for r in ours.values()]))}
    if ev:
        for k in ("emb_model", "emb_mmd", "text"):
            out["seconds_per_window"][f"evidently {k}"] = float(
                np.median([r[k]["s"] for r in ev["windows"]])
            )
        rep = [r["report_emb_s"] for r in ev["windows"] if "report_emb_s" in r]
        if rep:
            out["seconds_per_window"]["evidently EmbeddingsDriftMetric Report (with its t-SNE)"] = (
                float(np.median(rep))
            )
        errs = {r["text"]["error"] for r in ev["windows"] if "error" in r["text"]}
        out["evidently_text_errors"] = sorted(errs)[:3]
    return out


def fmt_rows(v: list, n_windows: int, w: int) -> str:
    shown = [str(x) if x is not None else f">{n_windows * w}" for x in v]
    finite = [x for x in v if x is not None]
    med = (
        f"median {int(np.median(finite))}"
        if len(finite) > len(v) / 2
        else f"median >{n_windows * w}"
    )
    return f"{med} ({', '.join(shown)})"


def detect_markdown(args, summary) -> list[str]:
    lines: list[str] = []
    det = summary["detectors"]
    streams = sorted(det["tunelab"]["alert_share"])
    lines += [
        "### Share of windows that alert",
        "",
        "`none`: no shift (held-out SST-2 train rows, random order; the goal is <= 5%); "
        "`agnews-N`: N% AG News texts mixed in; `sentences`: SST-2 validation sentences; "
        "`typos`: typos in 30% of the words. tunelab: any DEFAULT_RULES alert. Windows per stream: "
        + ", ".join(f"{s} {n}" for s, n in summary["n_windows"].items()),
        "",
        "| detector | " + " | ".join(streams) + " |",
        "| --- | " + " | ".join("---:" for _ in streams) + " |",
    ]
    for name, d in det.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{d['alert_share'][s]:.0%}" for s in streams) + " |"
        )
    fa = det["tunelab"]["alert_share"]["none"]
    n_none = summary["n_windows"]["none"]
    from tunelab.metrics.stats import wilson

    lo, hi = wilson(round(fa * n_none), n_none)
    lines += [
        "",
        f"tunelab false-alarm rate {fa:.1%} ({round(fa * n_none)} of {n_none} windows; Wilson 95% "
        f"interval {lo:.1%}-{hi:.1%}; goal <= 5%: **{'met' if fa <= 0.05 else 'missed'}**); "
        "by rule on `none`: "
        + ", ".join(f"{k} {x:.0%}" for k, x in summary["per_rule_none"].items()),
        "",
        "### Detection: rows until the first alert (windows in order, per repeat)",
        "",
        "| detector | " + " | ".join(s for s in streams if s.startswith("agnews")) + " |",
        "| --- | " + " | ".join("---" for s in streams if s.startswith("agnews")) + " |",
    ]
    for name, d in det.items():
        cells = [
            fmt_rows(d["first_alert_rows"][s], d["first_alert_rows"][s + "_windows"], args.window)
            for s in streams
            if s.startswith("agnews")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Estimate error (label-free accuracy estimate vs the true accuracy of the window)",
        "",
        "| stream | windows | calibration | true acc (mean) | estimated (mean) | mean abs error | max abs error | interval covers | isotonic: mean abs error |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s, e in summary["estimate"].items():
        cov = "-" if e["interval_coverage"] is None else f"{e['interval_coverage']:.0%}"
        lines.append(
            f"| {s} | {e['windows']} | {e['calibration']} | {e['true_accuracy_mean']:.3f} | "
            f"{e['est_accuracy_mean']:.3f} | {e['abs_error_mean']:.3f} | {e['abs_error_max']:.3f} | "
            f"{cov} | {e['isotonic_abs_error_mean']:.3f} |"
        )
    lines += ["", "### Seconds per window (median)", "", "| what | s |", "| --- | ---: |"]
    for k, x in summary["seconds_per_window"].items():
        lines.append(f"| {k} | {x:.3f} |")
    if summary.get("evidently_text_errors"):
        lines += ["", "Evidently text errors: " + "; ".join(summary["evidently_text_errors"])]
    return lines


def markdown(args, run_info, summary, serve_rows, machine_txt, model_acc) -> str:
    lines = [
        f"## {run_info['date']} · commit {run_info['commit']} · {run_info['machine']['cpu']}, "
        f"{run_info['machine']['cores']} cores, no GPU",
        "",
    ]
    lines += ["```", machine_txt.strip(), "```", ""]
    v = run_info["machine"]["versions"]
    lines += [
        f"Run: `{run_info['command']}` ({run_info['wall_s']:.0f} s). Model: all-minilm-l6-v2, full "
        f"fine-tuning, {args.train_rows} SST-2 train rows, 1 epoch, max length 64; validation "
        f"accuracy {model_acc}. Window {args.window} rows. torch threads {args.threads}. "
        f"Evidently {run_info.get('evidently_version')} (own venv, subprocess). Versions: "
        + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
    ]
    if serve_rows:
        off = [r["requests_per_s"] for r in serve_rows if not r["logging"]]
        on = [r["requests_per_s"] for r in serve_rows if r["logging"]]
        ratio = float(np.mean(on) / np.mean(off))
        lines += [
            "### Logging overhead (real `tunelab serve`, 32 clients)",
            "",
            f"{args.requests} requests per run (one SST-2 validation sentence each, after 64 warm-up "
            "requests), runs alternating off/on; `--db sqlite:///...` (logging on, default "
            "`--log-text scrubbed`) vs `--no-log`.",
            "",
            "| run | logging | req/s | p50 / p99 ms | server CPU ms/request | errors | rows logged / expected | CPU busy before |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in serve_rows:
            logged = f"{r['rows_logged']} / {r['rows_expected']}" if r["logging"] else "-"
            lines.append(
                f"| {r['run']} | {'on' if r['logging'] else 'off'} | {r['requests_per_s']} | "
                f"{r['p50_ms']} / {r['p99_ms']} | {r['server_cpu_ms_per_request']} | {r['errors']} | {logged} | {r['cpu_busy_before']:.0%} |"
            )
        lines += [
            "",
            f"Mean req/s: off {np.mean(off):.1f}, on {np.mean(on):.1f}: ratio on/off **{ratio:.3f}** "
            f"({(1 - ratio) * 100:.1f}% lost; goal <= 5%: **{'met' if ratio >= 0.95 else 'missed'}**); "
            "per off/on pair: " + ", ".join(f"{b / a:.3f}" for a, b in zip(off, on)) + ". "
            "Server CPU per request: off "
            f"{np.mean([r['server_cpu_ms_per_request'] for r in serve_rows if not r['logging']]):.2f} ms, on "
            f"{np.mean([r['server_cpu_ms_per_request'] for r in serve_rows if r['logging']]):.2f} ms.",
            "",
        ]
    if summary.get("n_windows"):
        lines += detect_markdown(args, summary)
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default="detect,serve", help="detect, serve, or both (default)")
    p.add_argument("--run", help="reuse this run folder (default: train one in --work)")
    p.add_argument("--work", default="/tmp/tunelab-bench-monitor")
    p.add_argument("--train-rows", type=int, default=2000)
    p.add_argument(
        "--heldout-rows", type=int, default=40000, help="no-shift rows (200 windows of 200)"
    )
    p.add_argument("--agnews-rows", type=int, default=2000)
    p.add_argument("--typo-rows", type=int, default=600)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3, help="mixed streams per mix level")
    p.add_argument("--windows-10", type=int, default=8)
    p.add_argument("--windows-30", type=int, default=3)
    p.add_argument("--windows-100", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch / OMP threads (1)")
    p.add_argument("--requests", type=int, default=400, help="requests per serve run (400)")
    p.add_argument("--alternations", type=int, default=3, help="off/on pairs of serve runs (3)")
    p.add_argument("--evidently-python", default="/work/evenv/bin/python")
    p.add_argument("--evidently-report-windows", type=int, default=2)
    p.add_argument("--no-evidently", action="store_true")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    run_info = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "command": " ".join(["python", "bench/monitor.py", *sys.argv[1:]]),
        "machine": machine_info(
            ("torch", "transformers", "numpy", "scipy", "scikit-learn", "sqlalchemy")
        ),
        "args": vars(args),
    }
    machine_txt = subprocess.run(
        "lscpu | head -20", shell=True, capture_output=True, text=True
    ).stdout
    run = ensure_model(args, work)
    model_acc = json.loads((run / "results.json").read_text()).get("validation", {}).get("accuracy")
    summary, serve_rows, raw = None, [], {}
    if "detect" in args.parts:
        from tunelab.methods.loading import load_trained
        from tunelab.monitor.reference import load_reference

        t0 = time.monotonic()
        ref = load_reference(run / "model")
        print(f"reference: {len(ref.embeddings)} rows in {time.monotonic() - t0:.0f} s", flush=True)
        trained = load_trained(run / "model")
        pools = build_pools(args, trained)
        windows = make_windows(args, pools)
        print(f"windows: {len(windows)}", flush=True)
        ours = tunelab_windows(windows, ref)
        ev = None
        if not args.no_evidently:
            ev = evidently_windows(
                args, windows, ref.embeddings, reference_texts(run, len(ref.embeddings)), work
            )
            if ev:
                run_info["evidently_version"] = ev["version"]
        summary = summarize(args, windows, ours, ev)
        summary["n_windows"] = {
            s: sum(1 for x in windows if x["stream"] == s)
            for s in sorted({x["stream"] for x in windows})
        }
        raw = {"ours": ours, "evidently": ev and ev["windows"]}
    if "serve" in args.parts:
        print(f"serve: CPU busy {cpu_busy():.0%}", flush=True)
        serve_rows = overhead(args, run, work)
    run_info["wall_s"] = time.monotonic() - t_start
    if summary is None:
        summary = {
            "detectors": {"tunelab": {"alert_share": {}}},
            "estimate": {},
            "seconds_per_window": {},
            "per_rule_none": {},
            "n_windows": {},
        }
    text = markdown(args, run_info, summary, serve_rows, machine_txt, model_acc)
    print("\n" + text)
    (work / "monitor-last.json").write_text(
        json.dumps(
            {"run": run_info, "summary": summary, "serve": serve_rows, "raw": raw}, default=str
        )
    )
    if not args.no_save:
        md = RESULTS_DIR / "monitor.md"
        old = md.read_text() if md.exists() else "# Monitoring benchmark (`bench/monitor.py`)\n\n"
        md.write_text(old.rstrip("\n") + "\n\n" + text)
        js = RESULTS_DIR / f"monitor-{run_info['date'][:10]}.json"
        js.write_text(
            json.dumps(
                {"run": run_info, "summary": summary, "serve": serve_rows}, indent=1, default=str
            )
        )
        print(f"appended to {md.relative_to(REPO)}; summary JSON in {js.relative_to(REPO)}")


if __name__ == "__main__":
    main()
