"""The closed loop on real data and real processes: serve, shift, feedback, alert, retrain,
promote, and the same loop without a shift (issue 16's bench).

One invocation, one machine, in this order, each stage timed:

1. **Champion.** MiniLM (`all-minilm-l6-v2`, full fine-tuning, 1 epoch, max length 64) on
   `--train-rows` *short* SST-2 train phrases (3-7 words); validation 500 and test 1,000 more
   short phrases. Registered as `sst2` version 1, alias champion.
2. **Serve.** A real `tunelab serve sst2=champion@sst2 --db sqlite:///...` process
   (`--reload-every-s 2`: it follows the alias).
3. **Traffic with feedback.** `--requests` single-text /v1/classify requests (16 clients) of
   one stream:
   - `shift`: *long* SST-2 train phrases (20+ words), a shift of length and style within the
     task (same labels);
   - `none`: more short phrases, the champion's own distribution.

   For a share `--feedback` of the answered requests, the true label goes back through
   `POST /v1/feedback` with the request's X-Request-Id.
4. **Monitor.** `tunelab monitor` (subprocess) on the log: exit code and the alerts.
5. **Retrain.** `tunelab retrain sst2` (subprocess): exit code, the gate's decision, every
   comparison (champion vs challenger on the old test set and the held-out new data: paired
   bootstrap interval and McNemar), the seconds per step.
6. **After.** Both models on an independent evaluation set of the stream's distribution (never
   logged) and on the champion's test set: accuracy before and after. For `shift`, the
   server's /v1/models must show the new version without a restart.

    OMP_NUM_THREADS=2 .venv/bin/python bench/loop.py            # both loops, appends results/loop.md
    .venv/bin/python bench/loop.py --loops shift --no-save
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS_DIR, machine_info  # noqa: E402

DATA = REPO.parent / "shared" / "datasets"
SST2_TRAIN = DATA / "sst2" / "train.jsonl"
LABELS = ("negative", "positive")
TUNELAB = [sys.executable, "-m", "tunelab.cli"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pools(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(short phrases of 3-7 words, long phrases of 20+ words) of SST-2 train, deduplicated,
    shuffled, as {"sentence", "label"}."""
    seen, short, long = set(), [], []
    for r in read_jsonl(SST2_TRAIN):
        text = r["sentence"].strip()
        if not text or text in seen:
            continue
        seen.add(text)
        n = len(text.split())
        row = {"sentence": text, "label": LABELS[r["label"]]}
        if 3 <= n <= 7:
            short.append(row)
        elif n >= 20:
            long.append(row)
    rng = random.Random(seed)
    rng.shuffle(short)
    rng.shuffle(long)
    return short, long


def run(cmd: list[str], log: Path, **kw) -> tuple[int, str, float]:
    t0 = time.monotonic()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, **kw)
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return proc.returncode, proc.stdout, time.monotonic() - t0


def train_champion(args, work: Path, short: list[dict]) -> Path:
    from tunelab.api import train

    run_dir = work / "champion"
    if (run_dir / "model" / "tunelab.json").is_file():
        return run_dir
    n = args.train_rows
    files = {
        "train": write_jsonl(work / "data" / "train.jsonl", short[:n]),
        "validation": write_jsonl(work / "data" / "validation.jsonl", short[n : n + 500]),
        "test": write_jsonl(work / "data" / "test.jsonl", short[n + 500 : n + 1500]),
    }
    cfg = {
        "model": "all-minilm-l6-v2",
        "task": "classification",
        "data": {**{k: str(v) for k, v in files.items()}, "text": "sentence", "max_length": 64},
        "method": {"name": "full"},
        "train": {"epochs": 1, "batch_size": 32, "seed": 0},
        "eval": {"baselines": []},
        "output": str(run_dir),
    }
    train(cfg, overwrite=True)
    return run_dir


async def traffic(url: str, rows: list[dict], feedback_share: float, clients: int = 16) -> dict:
    """Classify every row (one per request), then send the true label of a seeded share back
    as feedback. Counts of answers and errors."""
    import httpx

    rng = random.Random(7)
    answered, errors, fb_ok, fb_err = [], 0, 0, 0
    queue = list(enumerate(rows))
    async with httpx.AsyncClient(timeout=600) as client:

        async def worker():
            nonlocal errors
            while queue:
                i, row = queue.pop()
                reply = await client.post(
                    f"{url}/v1/classify", json={"model": "sst2", "input": row["sentence"]}
                )
                if reply.status_code == 200:
                    answered.append((i, reply.headers["x-request-id"], row, reply.json()))
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        answered.sort(key=lambda a: a[0])  # the same rows get feedback whatever the reply order
        chosen = [a for a in answered if rng.random() < feedback_share]
        for _, rid, row, _ in chosen:
            reply = await client.post(
                f"{url}/v1/feedback", json={"request_id": rid, "label": row["label"]}
            )
            fb_ok += reply.status_code == 201
            fb_err += reply.status_code != 201
    served_acc = sum(a[3]["data"][0]["label"] == a[2]["label"] for a in answered) / max(
        1, len(answered)
    )
    return {
        "requests": len(rows),
        "answered": len(answered),
        "errors": errors,
        "feedback_sent": fb_ok,
        "feedback_errors": fb_err,
        "served_accuracy": round(served_acc, 4),
    }


def accuracy(model_path: str, path: Path) -> float:
    from tunelab.evaluation.report.build import evaluate_report

    report = evaluate_report(model_path, path, bootstrap=0, write=False)
    return float(report["models"][0]["metrics"]["accuracy"])


def wait_version(url: str, version: int, limit_s: float = 120.0) -> float | None:
    """Seconds until /v1/models reports registry version `version` served (None: never)."""
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
        if any(m.get("version") == version for m in models):
            return time.monotonic() - t0
        time.sleep(0.5)
    return None


def one_loop(args, stream: str, work: Path, champion: Path, short, long) -> dict:
    from serve import start, stop  # bench/serve.py's server start

    from tunelab.store.db import open_db
    from tunelab.store.registry import add_version, get_version

    loop_dir = work / stream
    if loop_dir.exists():
        import shutil

        shutil.rmtree(loop_dir)
    loop_dir.mkdir(parents=True)
    db = f"sqlite:///{loop_dir / 'tunelab.db'}"
    engine = open_db(db)
    add_version(engine, "sst2", champion, alias="champion")
    engine.dispose()
    n = args.train_rows
    pool = long if stream == "shift" else short[n + 1500 :]
    live, held = pool[: args.requests], pool[args.requests : args.requests + args.eval_rows]
    eval_file = write_jsonl(loop_dir / "eval.jsonl", held)
    timings, out = {}, {"stream": stream}
    port = 8441
    url = f"http://127.0.0.1:{port}"
    cmd = TUNELAB + ["serve", "champion@sst2", "--db", db, "--port", str(port)]
    cmd += ["--log-level", "warning", "--reload-every-s", "2"]
    t0 = time.monotonic()
    proc = start(cmd, port, args.threads, loop_dir / "serve.log")
    timings["serve start"] = time.monotonic() - t0
    try:
        t0 = time.monotonic()
        out["traffic"] = asyncio.run(traffic(url, live, args.feedback))
        timings["traffic + feedback"] = time.monotonic() - t0
        code, text, s = run(
            TUNELAB
            + ["monitor", str(champion), "--db", db, "--name", "sst2", "--json"]
            + ["--window", str(args.window), "--out", str(loop_dir / "monitor")],
            loop_dir / "monitor.log",
        )
        timings["monitor"] = s
        report = json.loads(text) if text.strip().startswith("{") else {}
        out["monitor"] = {
            "exit": code,
            "alerts": len(report.get("alerts", [])),
            "fired": sorted({a["stat"] for a in report.get("alerts", [])}),
            "windows": len(report.get("windows", [])),
        }
        code, text, s = run(
            TUNELAB
            + ["retrain", "sst2", "--db", db, "--json", "--work", str(loop_dir / "retrains")]
            + (["--config", str(args.config)] if args.config else []),
            loop_dir / "retrain.log",
        )
        timings["retrain"] = s
        rep = json.loads(text) if text.strip().startswith("{") else {"decision": f"exit {code}"}
        out["retrain"] = {
            "exit": code,
            "decision": rep.get("decision"),
            "reasons": rep.get("reasons"),
            "evals": rep.get("evals"),
            "data_rows": (rep.get("data") or {}).get("rows"),
            "steps_s": rep.get("timings_s"),
        }
        engine = open_db(db)
        now = get_version(engine, "sst2", "champion")
        engine.dispose()
        out["champion_after"] = now["version"]
        if now["version"] != 1:
            out["swap_s"] = wait_version(url, now["version"])
    finally:
        stop(proc)
    t0 = time.monotonic()
    new_path = now["path"]
    test_file = work / "data" / "test.jsonl"
    out["accuracy"] = {
        "new distribution (held-out eval)": {
            "before": accuracy(str(champion), eval_file),
            "after": accuracy(new_path, eval_file),
        },
        "original test set": {
            "before": accuracy(str(champion), test_file),
            "after": accuracy(new_path, test_file),
        },
    }
    timings["final eval"] = time.monotonic() - t0
    out["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    print(json.dumps(out, indent=2, default=str), flush=True)
    return out


def markdown(info: dict, loops: list[dict]) -> str:
    lines = [
        f"## {info['date']} · commit {info['commit']} · {info['machine']['cpu']}, "
        f"{info['machine']['cores']} cores, no GPU",
        "",
        f"Run: `{info['command']}` ({info['wall_s']:.0f} s). Champion: all-minilm-l6-v2, full "
        f"fine-tuning, {info['args']['train_rows']} short SST-2 phrases (3-7 words), 1 epoch "
        f"({info['champion_s']:.0f} s). Per loop: {info['args']['requests']} requests, feedback on "
        f"{info['args']['feedback']:.0%} of them, evaluation set {info['args']['eval_rows']} rows "
        "of the stream's distribution never logged. Versions: "
        + ", ".join(f"{k} {v}" for k, v in info["machine"]["versions"].items()),
        "",
        "| loop | served acc | feedback | monitor exit (alerts) | retrain exit: decision | new: champion -> challenger [interval] | old test: champion -> challenger [interval] | eval set acc before -> after | original test acc before -> after | swap s |",
        "| --- | ---: | ---: | --- | --- | --- | --- | --- | --- | ---: |",
    ]

    def cell(ev: dict, key: str) -> str:
        e = ev.get(key)
        if not e:
            return "-"
        return (
            f"{e['champion']:.3f} -> {e['challenger']:.3f} [{e['low']:+.3f}, {e['high']:+.3f}]"
            f" (McNemar p {e['mcnemar']['p_value']:.2g}; {e['rows']} rows)"
        )

    for lp in loops:
        ev = lp["retrain"]["evals"] or {}
        acc = lp["accuracy"]
        a_new, a_old = acc["new distribution (held-out eval)"], acc["original test set"]
        swap = lp.get("swap_s")
        lines.append(
            f"| {lp['stream']} | {lp['traffic']['served_accuracy']:.3f} | "
            f"{lp['traffic']['feedback_sent']} | {lp['monitor']['exit']} ({lp['monitor']['alerts']}: "
            f"{', '.join(lp['monitor']['fired']) or '-'}) | {lp['retrain']['exit']}: "
            f"{lp['retrain']['decision']} | {cell(ev, 'new')} | {cell(ev, 'old_test')} | "
            f"{a_new['before']:.3f} -> {a_new['after']:.3f} | {a_old['before']:.3f} -> "
            f"{a_old['after']:.3f} | {'-' if swap is None else f'{swap:.1f}'} |"
        )
    lines += ["", "Seconds per stage:", ""]
    for lp in loops:
        lines.append(
            f"- `{lp['stream']}`: "
            + ", ".join(f"{k} {v}" for k, v in lp["timings_s"].items())
            + f"; retrain steps {lp['retrain']['steps_s']}"
        )
    for lp in loops:
        if lp["retrain"]["reasons"]:
            lines.append(f"- `{lp['stream']}` gate reasons: " + "; ".join(lp["retrain"]["reasons"]))
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--work", default="/tmp/tunelab-bench-loop")
    p.add_argument("--loops", default="shift,none", help="shift, none, or both (default)")
    p.add_argument("--train-rows", type=int, default=2000)
    p.add_argument("--requests", type=int, default=3000, help="requests per loop (3000)")
    p.add_argument("--feedback", type=float, default=0.5, help="share given feedback (0.5)")
    p.add_argument("--eval-rows", type=int, default=1000)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--config", help="tunelab retrain --config file")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    info = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "command": " ".join(["python", "bench/loop.py", *sys.argv[1:]]),
        "machine": machine_info(("torch", "transformers", "sqlalchemy")),
        "args": vars(args),
    }
    short, long = pools()
    print(f"pools: {len(short)} short, {len(long)} long phrases", flush=True)
    t0 = time.monotonic()
    champion = train_champion(args, work, short)
    info["champion_s"] = time.monotonic() - t0
    loops = [one_loop(args, s, work, champion, short, long) for s in args.loops.split(",")]
    info["wall_s"] = time.monotonic() - t_all
    text = markdown(info, loops)
    print("\n" + text)
    if not args.no_save:
        md = RESULTS_DIR / "loop.md"
        head = "# The closed loop (`bench/loop.py`)\n\n" + __doc__.split("\n\n", 1)[1]
        old = md.read_text() if md.exists() else head
        md.write_text(old.rstrip("\n") + "\n\n" + text)
        (RESULTS_DIR / f"loop-{info['date'][:10]}.json").write_text(
            json.dumps({"info": info, "loops": loops}, indent=2, default=str)
        )
        print(f"appended to {md}")


if __name__ == "__main__":
    main()
