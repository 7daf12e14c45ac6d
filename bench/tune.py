"""Record a real hyperparameter search and a real k-fold run in bench/results/tune.md.

Run the two commands first (OMP_NUM_THREADS=1: the CPUs are shared), then this script on
their output folders:

    OMP_NUM_THREADS=1 tunelab tune examples/sst2_tune.yaml --trials 5 --output runs/sst2-tune
    OMP_NUM_THREADS=1 tunelab train examples/sst2_tune.yaml train.folds=3 data.validation=null \
        data.max_train_rows=600 output=runs/sst2-cv
    python bench/tune.py runs/sst2-tune runs/sst2-cv

It appends the search table (trial, values, metric, state, seconds) and the fold table
(per-fold metrics, mean ± sample std) with the machine and date, and saves the raw
search.json / folds.json beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, save  # noqa: E402

from tunelab.runs.kfold import format_folds_table  # noqa: E402
from tunelab.runs.search_report import format_search_table  # noqa: E402

TUNE_CMD = "OMP_NUM_THREADS=1 tunelab tune examples/sst2_tune.yaml --trials 5 --output {out}"
FOLDS_CMD = (
    "OMP_NUM_THREADS=1 tunelab train examples/sst2_tune.yaml train.folds=3 "
    "data.validation=null data.max_train_rows=600 output={out}"
)
FOLD_METRICS = ("accuracy", "f1_macro", "loss")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("search", type=Path, help="output folder of `tunelab tune`")
    p.add_argument("folds", type=Path, help="output folder of the k-fold `tunelab train`")
    p.add_argument("--note", default="", help="a line about the conditions (e.g. CPU load)")
    args = p.parse_args()
    search = json.loads((args.search / "search.json").read_text())
    folds = json.loads((args.folds / "folds.json").read_text())
    info = machine_info(("torch", "transformers", "peft", "optuna"))
    date = datetime.now().isoformat(timespec="minutes")
    shown = {**folds}
    for split in ("validation", "test"):  # the table keeps the headline metrics only
        if split in shown:
            shown[split] = {
                s: {k: v for k, v in shown[split][s].items() if k in FOLD_METRICS}
                for s in ("mean", "std")
            }
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    text = "\n".join(
        [
            f"## {date} · {info['cpu']}, {info['cores']} cores (shared), {info['ram_gib']:.1f} GiB RAM",
            "",
            f"{versions}, Python {info['python']}",
            "",
            *([args.note, ""] if args.note else []),
            f"### Search: {len(search['trials'])} trials, {search['sampler']} sampler, "
            f"{search['pruner']} pruner, {search['seconds'] / 60:.1f} min",
            "",
            f"Command: `{TUNE_CMD.format(out=args.search)}`",
            "",
            "```",
            format_search_table(search),
            "```",
            "",
            f"### {folds['folds']}-fold cross-validation: {folds['rows']} rows, "
            f"{folds['seconds'] / 60:.1f} min",
            "",
            f"Command: `{FOLDS_CMD.format(out=args.folds)}`",
            "",
            "```",
            format_folds_table(shown),
            "```",
        ]
    )
    print(text)
    md, js = save(
        "tune",
        "Hyperparameter search and k-fold cross-validation (real runs)",
        text,
        {"date": date, "machine": info, "search": search, "folds": folds},
    )
    print(f"appended to {md}; raw JSON in {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
