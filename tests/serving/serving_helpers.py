"""Helpers for the serving tests: tiny trained models and a real `tunelab serve` process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TUNELAB = [sys.executable, "-m", "tunelab.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(args: list[str], log: Path, timeout: float = 180.0):
    """`tunelab serve ARGS` on a free port; yields its base URL once /ready answers 200.
    The process is killed on the way out, whatever happened."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # the prediction log (on by default) goes beside the server's log, not into the repo
    env.setdefault("TUNELAB_DB", f"sqlite:///{log.parent / 'predictions.db'}")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*TUNELAB, "serve", *args, "--port", str(port), "--log-level", "warning"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check, what: str, limit_s: float = 180.0):
    """Poll `check()` until it is truthy (generous limit: a busy 2-core machine)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {limit_s:g}s")


def random_lora(base: Path, out: Path, seed: int, config=None, method: str = "lora") -> Path:
    """A LoRA adapter (or another peft `config`) on the tiny Llama with random (non-zero)
    weights, saved as tunelab saves an unmerged run (peft files + tunelab.json + tokenizer)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = config or LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
        init_lora_weights=False,  # random B as well as A: the adapter changes the outputs
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    meta = {"task": "causal-lm", "labels": None, "max_length": 128, "base_model": str(base)}
    meta |= {"method": method, "merged": False}
    (out / "tunelab.json").write_text(json.dumps(meta))
    return out
