"""Serving benchmark: `tunelab serve` vs a naive FastAPI + transformers.pipeline server
(classification), and vs sequential `model.generate` (generation).

Classification: requests/s and p50/p99 latency at 1, 8 and 32 concurrent clients, each
client sending one SST-2 validation sentence per request in a closed loop, against the
MiniLM SST-2 classifier in runs/sst2. Generation: generated tokens/s of
smollm2-135m-instruct (greedy, max_tokens 64, chat template) at 1 and 16 concurrent clients,
against `generate` called once per prompt, one prompt after another.

Every server runs in its own process with OMP_NUM_THREADS=--threads; the load generator
runs in this process (httpx, asyncio) on the same machine.

    .venv/bin/python bench/serve.py                 # both parts, writes bench/results/serve-*.json
    .venv/bin/python bench/serve.py --part classify --requests 200 --no-save
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS_DIR, cpu_busy  # noqa: E402

SST2 = REPO.parent / "shared" / "datasets" / "sst2" / "validation.jsonl"
ALPACA = REPO.parent / "shared" / "datasets" / "instructions" / "alpaca_5k.jsonl"


def start(cmd: list[str], port: int, threads: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    env["MODEL"] = str(REPO / "runs" / "sst2" / "model")
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server died: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server not ready")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def load(url: str, bodies: list[dict], clients: int) -> dict:
    """Send every body once, `clients` at a time (closed loop); latency per request."""
    latencies, errors, tokens = [], 0, 0
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def worker():
            nonlocal errors, tokens
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                try:
                    reply = await client.post(url, json=body)
                    ok = reply.status_code == 200
                    if ok and "usage" in (data := reply.json()):
                        tokens += data["usage"]["completion_tokens"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start_t
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "clients": clients,
        "requests": len(bodies),
        "errors": errors,
        "seconds": round(wall, 3),
        "requests_per_s": round(len(bodies) / wall, 2),
        "p50_ms": round(pick(0.5) * 1000, 1),
        "p99_ms": round(pick(0.99) * 1000, 1),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
    }


def classify_part(args, work: Path) -> list[dict]:
    texts = [json.loads(x)["sentence"] for x in SST2.read_text().splitlines()]
    rows = []
    servers = {
        "tunelab": [
            sys.executable,
            "-m",
            "tunelab.cli",
            "serve",
            "sst2=runs/sst2",
            "--port",
            "8411",
            "--log-level",
            "warning",
            "--max-batch-size",
            "32",
        ],
        "naive": [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            "bench",
            "naive_server:app",
            "--port",
            "8411",
            "--log-level",
            "warning",
        ],
    }
    for name, cmd in servers.items():
        print(f"classify: {name} (CPU busy before: {cpu_busy():.0%})", flush=True)
        proc = start(cmd, 8411, args.threads, work / f"{name}.log")
        try:
            url = "http://127.0.0.1:8411/v1/classify"
            asyncio.run(
                load(url, [{"model": "sst2", "input": t} for t in texts[:32]], 4)
            )  # warm up
            for clients in (1, 8, 32):
                n = args.requests if clients > 1 else args.requests // 2
                bodies = [{"model": "sst2", "input": texts[i % len(texts)]} for i in range(n)]
                row = {
                    "part": "classify",
                    "server": name,
                    **asyncio.run(load(url, bodies, clients)),
                }
                print(f"  {json.dumps(row)}", flush=True)
                rows.append(row)
        finally:
            stop(proc)
    return rows


def prompts(n: int) -> list[str]:
    rows = [json.loads(x) for x in ALPACA.read_text().splitlines()[:200]]
    return [r["instruction"] for r in rows if not r.get("input")][:n]


def sequential_generate(args) -> dict:
    """The baseline, in this (child) process: generate for each prompt, one after another."""
    import torch

    from tunelab.api import load_causal_lm

    model, tok = load_causal_lm("smollm2-135m-instruct")
    model.eval()
    tokens, start_t = 0, None
    for i, p in enumerate(prompts(args.gen_prompts + 1)):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": p}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=args.gen_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        if i == 0:  # warm-up
            start_t = time.perf_counter()
            continue
        tokens += out.shape[1] - ids["input_ids"].shape[1]
    wall = time.perf_counter() - start_t
    return {
        "part": "generate",
        "server": "sequential generate",
        "clients": 1,
        "requests": args.gen_prompts,
        "errors": 0,
        "seconds": round(wall, 3),
        "tokens": int(tokens),
        "tokens_per_s": round(tokens / wall, 2),
    }


def generate_part(args, work: Path) -> list[dict]:
    print(f"generate: sequential (CPU busy before: {cpu_busy():.0%})", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [
        sys.executable,
        __file__,
        "--child-generate",
        "--gen-tokens",
        str(args.gen_tokens),
        "--gen-prompts",
        str(args.gen_prompts),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    rows = [json.loads(out.stdout.strip().splitlines()[-1])]
    print(f"  {json.dumps(rows[0])}", flush=True)
    print(f"generate: tunelab (CPU busy before: {cpu_busy():.0%})", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "tunelab.cli",
        "serve",
        "smollm2-135m-instruct",
        "--port",
        "8412",
        "--log-level",
        "warning",
        "--max-batch-size",
        "32",
    ]
    proc = start(cmd, 8412, args.threads, work / "tunelab-gen.log")
    try:
        url = "http://127.0.0.1:8412/v1/chat/completions"

        def body(p):
            return {
                "model": "smollm2-135m-instruct",
                "messages": [{"role": "user", "content": p}],
                "max_tokens": args.gen_tokens,
                "temperature": 0,
            }

        asyncio.run(load(url, [body("Hi")], 1))  # warm up
        for clients, n in ((1, max(4, args.gen_prompts // 4)), (16, 2 * 16)):
            bodies = [body(p) for p in (prompts(n) * 2)[:n]]
            row = {
                "part": "generate",
                "server": "tunelab",
                **asyncio.run(load(url, bodies, clients)),
            }
            print(f"  {json.dumps(row)}", flush=True)
            rows.append(row)
    finally:
        stop(proc)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", default="classify,generate")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every server (1)")
    p.add_argument("--requests", type=int, default=400, help="classify requests per level (400)")
    p.add_argument("--gen-tokens", type=int, default=64)
    p.add_argument("--gen-prompts", type=int, default=16, help="prompts of the sequential baseline")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--child-generate", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_generate:
        print(json.dumps(sequential_generate(args)))
        return
    work = Path("/tmp") / f"tunelab-bench-serve-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    if "classify" in args.part:
        rows += classify_part(args, work)
    if "generate" in args.part:
        rows += generate_part(args, work)
    print(json.dumps(rows, indent=1))
    if not args.no_save:
        out = RESULTS_DIR / f"serve-{date.today()}.json"
        out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
