"""What every benchmark here shares: run a variant in its own process (its own peak RSS),
warn when the CPUs are busy, describe the machine, and save a result table with its raw JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all CPU time spent busy over `seconds` (from /proc/stat), 0..1."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def run_child(name: str, cmd: list[str], work: Path, summary: Callable[[dict], str]) -> dict:
    """Run one variant (`cmd` prints its figures as a JSON line with "variant": name) in a
    fresh interpreter, showing elapsed time; returns that row plus wall time and CPU load."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out_path, err_path = work / f"{name}.out", work / f"{name}.log"
    tty = sys.stdout.isatty()
    busy = cpu_busy()
    if busy > 0.25:
        print(f"  warning: the CPUs are {busy:.0%} busy before the start; other work skews timings")
    start = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        last = 0.0
        while proc.poll() is None:
            time.sleep(1)
            elapsed = time.monotonic() - start
            if tty:
                print(f"\r  {name}: running, {elapsed:5.0f} s", end="", flush=True)
            elif elapsed - last >= 30:
                print(f"  {name}: running, {elapsed:.0f} s", flush=True)
                last = elapsed
    elapsed = time.monotonic() - start
    if tty:
        print()
    row = None
    for line in out_path.read_text().splitlines():
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict) and parsed.get("variant") == name:
            row = parsed
    if proc.returncode != 0 or row is None:
        tail = err_path.read_text(errors="replace").splitlines()[-40:]
        print(f"  {name}: FAILED (exit {proc.returncode}) after {elapsed:.0f} s; log tail:")
        print("\n".join("    " + t for t in tail))
        return {"variant": name, "error": f"exit {proc.returncode}", "wall_seconds": elapsed}
    row["wall_seconds"] = elapsed
    row["cpu_busy_before"] = round(busy, 3)
    print(f"  {name}: done in {elapsed:.0f} s: {summary(row)}")
    return row


def peak_rss_mib() -> float:
    """This process's peak resident memory (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_roofline(threads: int | None, size: int = 1024, reps: int = 10) -> dict:
    """This CPU's fp32 matmul rate (best of `reps` square `size` matmuls) at `threads` torch
    threads: the roofline a benchmark's MFU is measured against."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # oneDNN picks its kernel on the first call
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    torch.set_num_threads(before)
    return {"size": size, "threads": threads or before, "gflops": 2 * size**3 / best / 1e9}


def machine_info(packages: tuple[str, ...]) -> dict:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram_gib = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram_gib = int(line.split()[1]) / 1024**2
    versions = {}
    for pkg in ("tunelab", *packages):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "versions": versions,
    }


def save(name: str, title: str, text: str, run: dict) -> tuple[Path, Path]:
    """Append the table to <name>.md and write the raw JSON, each via temp + rename."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    md = RESULTS_DIR / f"{name}.md"
    old = md.read_text(encoding="utf-8") if md.exists() else f"# {title}\n\n"
    day = run["date"][:10]
    js = RESULTS_DIR / f"{name}-{day}.json"
    n = 2
    while js.exists():
        js = RESULTS_DIR / f"{name}-{day}-{n}.json"
        n += 1
    for path, content in ((md, old.rstrip("\n") + "\n\n" + text), (js, json.dumps(run, indent=2))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(content + ("" if content.endswith("\n") else "\n"), encoding="utf-8")
        tmp.replace(path)
    return md, js


def report(name: str, title: str, text: str, run: dict, no_save: bool) -> int:
    """Print the table; save it (and the raw JSON) unless a variant failed or --no-save.
    Returns the exit status."""
    print("\n" + text)
    failed = [r["variant"] for r in run["results"] if "error" in r]
    if failed:
        print(f"not saved: {', '.join(failed)} failed")
        return 1
    if no_save:
        print("not saved (--no-save)")
        return 0
    md, js = save(name, title, text, run)
    print(f"appended to {md.relative_to(REPO)}; raw JSON in {js.relative_to(REPO)}")
    return 0


def start_run(script: str, variants: str, known: tuple[str, ...], packages: tuple[str, ...]):
    """(variants asked for, the run record: date, command line, machine); exits on unknown."""
    import datetime as dt

    names = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in known]
    if unknown or not names:
        sys.exit(f"--variants: unknown {unknown}; choose from {', '.join(known)}")
    run = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, f"bench/{script}", *sys.argv[1:]]),
        "machine": machine_info(packages),
    }
    return names, run
