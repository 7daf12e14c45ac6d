"""Benchmark: tunelab's near-duplicate search vs a plain datasketch loop, on ~80k real rows.

Rows: SST-2 train `sentence` (67,349) + AG News train and test `text` (12,600), from
../shared/datasets. Both sides use the same shingles (word 3-grams of `dedup_key`, the word
set under 3 words), threshold and num_perm, and keep a candidate pair only when its MinHash
Jaccard estimate reaches the threshold; groups are connected components of kept pairs.
Variants, each in its own subprocess so that peak RSS is its own:

  tunelab              near_groups() as prepare calls it (recall-leaning LSH banding)
  tunelab_equal_bands  near_groups(false_negative_weight=0.5): datasketch's banding
  datasketch           MinHash() per row, update() per shingle, MinHashLSH query + insert

Agreement = row pairs put in one group by both / by either (co-membership pairs). Since
both sides estimate Jaccard from different random hash functions, pairs near the threshold
fall on different sides of it, and one flipped pair joins or splits whole groups; so the
table also scores each side against the exact shingle Jaccard of every pair either side
grouped: the share of its pairs at >= threshold, and its recall of those pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"
RESULT = REPO / "bench" / "results" / "dedup.md"
VARIANTS = ("tunelab", "tunelab_equal_bands", "datasketch")
EXAMPLE = """example:
  .venv/bin/python bench/dedup_compare.py                 # all ~80k rows, appends to bench/results/dedup.md
  .venv/bin/python bench/dedup_compare.py --rows 5000 --no-save
"""


def load_texts(rows: int | None) -> list[str]:
    """SST-2 train sentences, then AG News train and test texts; the first `rows` of them."""
    texts = []
    for path, field in (
        (DATA / "sst2" / "train.jsonl", "sentence"),
        (DATA / "ag_news" / "train.jsonl", "text"),
        (DATA / "ag_news" / "test.jsonl", "text"),
    ):
        with path.open(encoding="utf-8") as f:
            texts += [json.loads(line)[field] for line in f]
    return texts[:rows] if rows else texts


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_datasketch(texts: list[str], threshold: float, num_perm: int) -> tuple[list, int]:
    """The loop a datasketch user writes; returns (groups, candidate pairs seen)."""
    from datasketch import MinHash, MinHashLSH

    from tunelab.data.dedup import dedup_key

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    minhashes, edges, candidates = [], [], 0
    for i, text in enumerate(texts):
        words = dedup_key(text).split()
        if len(words) >= 3:
            shingles = {" ".join(words[j : j + 3]) for j in range(len(words) - 2)}
        else:
            shingles = set(words)
        m = MinHash(num_perm=num_perm)
        for shingle in shingles:
            m.update(shingle.encode("utf-8"))
        for j in lsh.query(m):
            candidates += 1
            if m.jaccard(minhashes[j]) >= threshold:
                edges.append((j, i))
        lsh.insert(i, m)
        minhashes.append(m)
    parent = list(range(len(texts)))  # union-find over the kept pairs

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j, i in edges:
        parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(len(texts)):
        members.setdefault(find(i), []).append(i)
    return [g for g in members.values() if len(g) > 1], candidates


def child_main(args: argparse.Namespace) -> None:
    import datasketch  # noqa: F401  imports stay out of the timings

    from tunelab.data.dedup import near_groups

    texts = load_texts(args.rows)
    base = rss_mib()
    start = time.perf_counter()
    candidates = None
    if args.variant == "datasketch":
        groups, candidates = run_datasketch(texts, args.threshold, args.num_perm)
    else:
        weight = 0.5 if args.variant == "tunelab_equal_bands" else 0.95
        groups = near_groups(
            texts, args.threshold, args.num_perm, seed=0, false_negative_weight=weight
        )
    seconds = time.perf_counter() - start
    label = np.arange(len(texts))  # component id per row; singletons keep their own
    for g in groups:
        label[g] = g[0]
    np.save(args.labels_out, label)
    row = {
        "variant": args.variant,
        "rows": len(texts),
        "seconds": seconds,
        "rows_per_s": len(texts) / seconds,
        "groups": len(groups),
        "grouped_rows": sum(len(g) for g in groups),
        "candidates": candidates,
        "peak_rss_mib": rss_mib(),
        "rss_before_mib": base,
    }
    print(json.dumps(row))


def pair_set(label: np.ndarray) -> set[tuple[int, int]]:
    """Every row pair (i < j) put in one group."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(label.tolist()):
        groups.setdefault(c, []).append(i)
    return {p for g in groups.values() if len(g) > 1 for p in itertools.combinations(g, 2)}


def exact_jaccard(texts: list[str], pairs: set[tuple[int, int]]) -> dict:
    """Exact shingle Jaccard of each pair (no hashing): the ground truth to score against."""
    from tunelab.data.dedup import dedup_key

    cache: dict[int, set] = {}

    def shingles(i: int) -> set:
        if i not in cache:
            w = dedup_key(texts[i]).split()
            cache[i] = set(w) if len(w) < 3 else {tuple(w[k : k + 3]) for k in range(len(w) - 2)}
        return cache[i]

    return {
        (i, j): len(shingles(i) & shingles(j)) / max(len(shingles(i) | shingles(j)), 1)
        for i, j in pairs
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of CPU time spent busy over `seconds` (/proc/stat): other work skews timings."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return f"{cpu}, {os.cpu_count()} cores, {kib / 1024**2:.1f} GiB RAM"


def versions() -> str:
    names = ("tunelab", "numpy", "scipy", "datasketch", "xxhash")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found) + f", Python {platform.python_version()}"


def parent_main(args: argparse.Namespace) -> int:
    results, labels = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            out = Path(tmp) / f"{name}.npy"
            busy = cpu_busy()
            cmd = [sys.executable, __file__, "--variant", name, "--labels-out", str(out)]
            cmd += ["--threshold", str(args.threshold), "--num-perm", str(args.num_perm)]
            if args.rows:
                cmd += ["--rows", str(args.rows)]
            print(f"  {name}: running (CPU {busy:.0%} busy before) ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                print(proc.stderr[-3000:])
                return 1
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["cpu_busy_before"] = busy
            results.append(row)
            labels[name] = np.load(out)
            print(f"  {name}: {row['seconds']:.1f} s, {row['rows_per_s']:,.0f} rows/s")
    pairs = {name: pair_set(lab) for name, lab in labels.items()}
    jac = exact_jaccard(load_texts(args.rows), set().union(*pairs.values()))
    truth = {p for p, j in jac.items() if j >= args.threshold}
    lines = [
        "| variant | rows | seconds | rows/s | speed vs datasketch | groups | grouped rows "
        "| same-group pairs | agreement with datasketch | share of its pairs with exact J >= t "
        "| recall of exact pairs | peak RSS MiB (before) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base_speed = results[-1]["rows_per_s"]
    for row in results:
        mine, ref = pairs[row["variant"]], pairs["datasketch"]
        both, either, right = len(mine & ref), len(mine | ref), len(mine & truth)
        lines.append(
            f"| {row['variant']} | {row['rows']:,} | {row['seconds']:.2f} | "
            f"{row['rows_per_s']:,.0f} | {row['rows_per_s'] / base_speed:.1f}x | "
            f"{row['groups']:,} | {row['grouped_rows']:,} | {len(mine):,} | "
            f"{both / max(either, 1):.3f} ({both:,} / {either:,}) | "
            f"{right / max(len(mine), 1):.3f} | {right / max(len(truth), 1):.3f} | "
            f"{row['peak_rss_mib']:.0f} ({row['rss_before_mib']:.0f}) |"
        )
    busiest = max(r["cpu_busy_before"] for r in results)
    text = "\n".join(
        [
            f"## {dt.datetime.now().isoformat(timespec='seconds')} · {machine()}",
            "",
            versions() + ".",
            "",
            f"Settings: threshold {args.threshold}, num_perm {args.num_perm}, word 3-gram "
            f"shingles of `dedup_key`; CPU at most {busiest:.0%} busy before a variant.",
            "",
            *lines,
            "",
            f"Command: `python bench/dedup_compare.py{f' --rows {args.rows}' if args.rows else ''}`",
            "",
        ]
    )
    print("\n" + text)
    if not args.no_save:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        header = "" if RESULT.exists() else "# Near-duplicate search benchmark\n\n"
        with RESULT.open("a", encoding="utf-8") as f:
            f.write(header + text + "\n")
        print(f"appended to {RESULT.relative_to(REPO)}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=None, help="first N rows (default: all)")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--no-save", action="store_true", help="print only, write nothing")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--labels-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
