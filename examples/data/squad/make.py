"""Make the SQuAD demo subset from ../shared/datasets/squad/validation.jsonl (run from the
repo root: python examples/data/squad/make.py). Only the dev set is at hand, so train and
validation both come from it, split by article: no paragraph is in both."""

import json
import random
from pathlib import Path

SOURCE = Path("../shared/datasets/squad/validation.jsonl")
OUT = Path(__file__).resolve().parent
N_TRAIN, N_VALIDATION = 600, 200

rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines()]
titles = sorted({r["title"] for r in rows})
rng = random.Random(0)
rng.shuffle(titles)
held = set(titles[:12])  # 12 of the 48 articles for validation
train = [r for r in rows if r["title"] not in held]
validation = [r for r in rows if r["title"] in held]
for name, part, n in (("train", train, N_TRAIN), ("validation", validation, N_VALIDATION)):
    # in file order, so the questions of one paragraph stay together
    picked = sorted(rng.sample(range(len(part)), n))
    with open(OUT / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for i in picked:
            f.write(json.dumps(part[i], ensure_ascii=False) + "\n")
    print(name, n, "questions from", len({part[i]["title"] for i in picked}), "articles")
