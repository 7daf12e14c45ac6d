"""The prepare stage end to end on real SST-2 rows with planted problems whose counts the
test knows; the fingerprint cache; `tunelab train` running the stage from the config."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import SHARED_DATASETS, tiny_config, write_jsonl

from tunelab.config import load_config
from tunelab.data.prepare import prepare
from tunelab.errors import ConfigError, DataError

SST2 = SHARED_DATASETS / "sst2" / "train.jsonl"


def _real_rows(n: int, seed: int = 0) -> list[dict]:
    if not SST2.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    lines = SST2.read_text().splitlines()
    rows = [json.loads(x) for x in random.Random(seed).sample(lines, 4 * n)]
    # long enough, distinct rows: the planted problems below are then the only ones
    from tunelab.data.dedup import dedup_key

    seen, out = set(), []
    for r in rows:
        key = dedup_key(r["sentence"])
        if len(key.split()) >= 6 and key not in seen:
            seen.add(key)
            out.append({"sentence": r["sentence"].strip(), "label": r["label_text"]})
    return out[:n]


@pytest.fixture
def messy(tmp_path) -> tuple[Path, dict]:
    rows = _real_rows(1000)
    rng = random.Random(1)
    planted = {"exact": 30, "conflict": 5, "html": 10, "email": 6, "card": 3, "empty": 4}
    extra = []
    for r in rng.sample(rows[:500], planted["exact"]):
        extra.append(
            {"sentence": r["sentence"].upper() + " !", "label": r["label"]}
        )  # same text after normalizing
    for r in rng.sample(rows[500:700], planted["conflict"]):
        extra.append(
            {
                "sentence": r["sentence"],
                "label": "negative" if r["label"] == "positive" else "positive",
            }
        )
    for r in rows[700:710]:
        r["sentence"] = f"<p>{r['sentence']} &amp; <b>more</b></p>"
    for i, r in enumerate(rows[710:716]):
        r["sentence"] += f" write to jane.doe{i}@example.com"
    for r in rows[716:719]:
        r["sentence"] += " card 4111 1111 1111 1111"
    extra += [{"sentence": "   ", "label": "positive"} for _ in range(planted["empty"])]
    path = write_jsonl(tmp_path / "raw.jsonl", rows + extra)
    return path, planted


def _config(path: Path, tmp_path: Path, **prepare) -> object:
    prep = {"split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}}, **prepare}
    raw = {
        "model": "x",
        "data": {"train": str(path), "text": "sentence", "label": "label", "prepare": prep},
        "output": str(tmp_path / "run"),
    }
    from tunelab.config.load import validate_config

    return validate_config(raw)


def _step(report: dict, name: str) -> dict:
    return next(s for s in report["prepare"]["steps"] if s["step"] == name)


def test_prepare_counts_what_was_planted(messy, tmp_path):
    path, planted = messy
    result = prepare(_config(path, tmp_path).data, str(tmp_path / "run"))
    report = result.report
    clean = _step(report, "clean")
    assert clean["dropped_empty"] == planted["empty"]
    assert clean["changed"]["strip_html"] >= planted["html"]
    pii = _step(report, "pii")["found"]
    assert pii["EMAIL"] == planted["email"] and pii["CREDIT_CARD"] == planted["card"]
    dedup = _step(report, "dedup")
    # the 30 planted copies go; a planted opposite-label copy makes a 1-vs-1 tie, and the
    # majority policy drops a tied group whole: 2 rows per conflict
    assert dedup["exact_rows"] == planted["exact"] + 2 * planted["conflict"]
    assert (
        dedup["conflicting_groups"] >= planted["conflict"]
    )  # real SST-2 phrases add near-duplicate conflicts
    sizes = {n: report["prepare"]["splits"][n]["rows"] for n in ("train", "validation", "test")}
    total = sum(sizes.values())
    assert abs(sizes["train"] - 0.8 * total) <= 2 and abs(sizes["test"] - 0.1 * total) <= 2
    texts = {
        s: [json.loads(x)["sentence"] for x in f.read_text().splitlines()]
        for s, f in result.files.items()
    }
    everything = " ".join(t for ts in texts.values() for t in ts)
    assert (
        "@example.com" not in everything
        and "<EMAIL>" in everything
        and "<CREDIT_CARD>" in everything
    )
    assert "<p>" not in everything and "&amp;" not in everything
    assert not set(texts["train"]) & set(texts["test"])
    assert (result.out_dir / "report.html").is_file() and (result.out_dir / "report.json").is_file()


def test_second_run_reuses_the_output(messy, tmp_path, capsys):
    path, _ = messy
    cfg = _config(path, tmp_path)
    first = prepare(cfg.data, str(tmp_path / "run"))
    stamp = (first.out_dir / "train.jsonl").stat().st_mtime_ns
    second = prepare(cfg.data, str(tmp_path / "run"))
    assert second.cached and (second.out_dir / "train.jsonl").stat().st_mtime_ns == stamp
    changed = _config(path, tmp_path, dedup={"near": False})
    assert not prepare(changed.data, str(tmp_path / "run")).cached


def test_leakage_between_given_files_is_removed(tmp_path):
    rows = _real_rows(300)
    train = write_jsonl(tmp_path / "train.jsonl", rows[:200])
    test = write_jsonl(
        tmp_path / "test.jsonl", rows[200:] + rows[:7]
    )  # 7 test rows leak from train
    raw = {
        "model": "x",
        "data": {
            "train": str(train),
            "test": str(test),
            "text": "sentence",
            "label": "label",
            "prepare": {"dedup": {"near": False}},
        },
        "output": str(tmp_path / "run"),
    }
    from tunelab.config.load import validate_config

    result = prepare(validate_config(raw).data, str(tmp_path / "run"))
    assert _step(result.report, "leakage")["test"] == 7
    assert result.report["prepare"]["splits"]["test"]["rows"] == 100


def test_bad_inputs(messy, tmp_path):
    path, _ = messy
    with pytest.raises(ConfigError, match="must sum to 1"):
        load_config(
            None,
            [
                "model=x",
                f"data.train={path}",
                "data.text=sentence",
                "data.prepare.split.ratios={train: 0.8, test: 0.3}",
            ],
        )
    with pytest.raises(DataError, match="column 'region' not found"):
        prepare(
            _config(
                path, tmp_path, split={"ratios": {"train": 0.5, "test": 0.5}, "group": "region"}
            ).data,
            str(tmp_path / "r"),
        )
    mixed = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"sentence": f"row number {i} here", "label": 1 if i % 2 else "positive"}
            for i in range(40)
        ],
    )
    with pytest.raises(DataError, match="label"):
        prepare(_config(mixed, tmp_path).data, str(tmp_path / "r2"))
    tiny = write_jsonl(
        tmp_path / "tiny.jsonl",
        [
            {"sentence": "the same words every time", "label": "a" if i % 2 else "b"}
            for i in range(6)
        ],
    )
    with pytest.raises(DataError, match="empty after"):
        prepare(_config(tiny, tmp_path, dedup={"conflicts": "drop"}).data, str(tmp_path / "r3"))
    assert not (tmp_path / "r3-prepared").exists(), "nothing half-written"


def test_train_runs_prepare_from_the_config(tiny_model, tmp_path):
    rows = [{"text": r["sentence"], "label": r["label"]} for r in _real_rows(200)]
    raw = write_jsonl(tmp_path / "raw.jsonl", rows)
    cfg = tiny_config(
        tiny_model, {"train": raw, "validation": raw}, tmp_path / "run", train={"max_steps": 3}
    )
    cfg["data"].pop("validation")
    cfg["data"]["prepare"] = {
        "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
        "balance": {"method": "class_weights"},
    }
    from tunelab import api

    results = api.train(cfg)
    assert results["run"]["rows"]["test"] == pytest.approx(20, abs=2)
    assert results["run"]["class_weights"] is not None
    assert (tmp_path / "run-prepared" / "train.jsonl").is_file()


def test_near_dedup_after_exact_dedup_left_nothing_near(tmp_path):
    """Issue 13: exact copies plus distinct rows, near: true. Once exact dedup removed the
    copies no near-duplicates remained, and prepare died with an IndexError."""
    from tunelab.data.dedup import near_groups

    rows = _real_rows(200)
    near = {i for g in near_groups([r["sentence"] for r in rows]) for i in g[1:]}
    rows = [r for i, r in enumerate(rows) if i not in near]
    path = write_jsonl(tmp_path / "reviews.jsonl", rows + rows[:25])  # 25 exact copies
    cfg = _config(path, tmp_path, dedup={"exact": True, "near": True, "conflicts": "majority"})
    result = prepare(cfg.data, str(tmp_path / "run"))
    dedup = _step(result.report, "dedup")
    assert dedup["exact_rows"] == 25 and dedup["near_rows"] == 0
    assert dedup["rows_out"] == len(rows)
