"""Evidently on the windows of bench/monitor.py; run by it with Evidently's own Python (a
separate venv: Evidently is not a tunelab dependency and pins its own pandas/numpy).

    /work/evenv/bin/python bench/monitor_evidently.py WINDOWS.json OUT.json

WINDOWS.json: {"ref_emb": [[64 floats]...], "ref_text": [...], "windows": [{"key", "emb",
"text"}...], "report_windows": N}. Per window, each detector's verdict, score and seconds:

- `emb_model`: EmbeddingsDriftMetric's default method (`model()`: an SGD domain classifier on
  half the pooled rows, drift when its ROC AUC > 0.55; the bootstrap null only when the
  reference has < 1000 rows, as the metric's default says), called directly: the metric's own
  verdict without the t-SNE plot every Report run also computes (that is timed separately, on
  the first `report_windows` windows, as `report_emb_s`);
- `emb_mmd`: `mmd()` at its default threshold (MMD^2 > 0.015);
- `text`: a legacy Report with ColumnDriftMetric on the text column (Evidently's text-content
  drift: a TF-IDF domain classifier) and TextDescriptorsDriftMetric (TextLength,
  NonLetterCharacterPercentage; OOV and sentiment need nltk corpora that cannot be downloaded
  offline); drift when any of them says so.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

from evidently.legacy.descriptors import NonLetterCharacterPercentage, TextLength  # noqa: E402
from evidently.legacy.metrics import (  # noqa: E402
    ColumnDriftMetric,
    EmbeddingsDriftMetric,
    TextDescriptorsDriftMetric,
)
from evidently.legacy.metrics.data_drift.embedding_drift_methods import mmd, model  # noqa: E402
from evidently.legacy.pipeline.column_mapping import ColumnMapping  # noqa: E402
from evidently.legacy.report import Report  # noqa: E402

COLS = [f"e{i}" for i in range(64)]


def frame(emb, text) -> pd.DataFrame:
    d = pd.DataFrame(np.asarray(emb, dtype=np.float64), columns=COLS)
    d["text"] = text
    return d


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    ref = frame(spec["ref_emb"], spec["ref_text"])
    ref_emb = ref[COLS]
    n_ref = len(ref)
    mapping = ColumnMapping(
        embeddings={"e": COLS},
        text_features=["text"],
        numerical_features=[],
        categorical_features=[],
    )
    text_map = ColumnMapping(text_features=["text"], numerical_features=[], categorical_features=[])
    out = []
    for i, w in enumerate(spec["windows"]):
        cur = frame(w["emb"], w["text"])
        row = {"key": w["key"]}
        t0 = time.perf_counter()
        score, drift, _ = model(bootstrap=n_ref < 1000)(cur[COLS].copy(), ref_emb.copy())
        row["emb_model"] = {
            "score": float(score),
            "drift": bool(drift),
            "s": time.perf_counter() - t0,
        }
        t0 = time.perf_counter()
        score, drift, _ = mmd()(cur[COLS].copy(), ref_emb.copy())
        row["emb_mmd"] = {
            "score": float(score),
            "drift": bool(drift),
            "s": time.perf_counter() - t0,
        }
        t0 = time.perf_counter()
        try:
            rep = Report(
                metrics=[
                    ColumnDriftMetric("text"),
                    TextDescriptorsDriftMetric(
                        "text",
                        descriptors={
                            "length": TextLength(),
                            "nonletter": NonLetterCharacterPercentage(),
                        },
                    ),
                ]
            )
            rep.run(
                reference_data=ref[["text"]], current_data=cur[["text"]], column_mapping=text_map
            )
            res = rep.as_dict()["metrics"]
            content = bool(res[0]["result"]["drift_detected"])
            desc = {
                k: bool(v["drift_detected"])
                for k, v in res[1]["result"]["drift_by_columns"].items()
            }
            row["text"] = {
                "drift": content or any(desc.values()),
                "content": content,
                "content_score": float(res[0]["result"]["drift_score"]),
                "descriptors": desc,
                "s": time.perf_counter() - t0,
            }
        except Exception as e:  # noqa: BLE001  (report what failed, keep the other detectors)
            row["text"] = {"error": f"{type(e).__name__}: {e}"[:300], "s": time.perf_counter() - t0}
        if i < spec.get("report_windows", 0):
            t0 = time.perf_counter()
            rep = Report(metrics=[EmbeddingsDriftMetric("e")])
            rep.run(reference_data=ref, current_data=cur, column_mapping=mapping)
            rep.as_dict()
            row["report_emb_s"] = time.perf_counter() - t0
        out.append(row)
        print(f"evidently window {i + 1}/{len(spec['windows'])}", file=sys.stderr, flush=True)
    import evidently

    with open(sys.argv[2], "w") as f:
        json.dump({"version": evidently.__version__, "windows": out}, f)


if __name__ == "__main__":
    main()
