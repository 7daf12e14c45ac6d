"""Teacher vs student after a distillation run: task metric on the same split, parameters,
size on disk of the model folders, CPU latency per example (batch 1 and batch 32).

runs/train.py calls `distill_report` with the procedure's teacher (this module imports nothing from
training) and stores the result as results["distill"]; `format_table` prints it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tunelab.data.batching import collate as default_collate
from tunelab.models.loading import count_parameters

LATENCY_RUNS = 5


def folder_mb(folder: str | Path | None) -> float | None:
    """Size of every file under `folder`, in MB (10^6 bytes); None when there is no folder."""
    if folder is None or not Path(folder).is_dir():
        return None
    return round(sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e6, 2)


def cpu_latency_ms(
    model, features, batch_size: int, pad_id: int, collate: Callable = default_collate
) -> float | None:
    """Median milliseconds per example of a forward pass on CPU over `batch_size` rows
    (rows of median length for batch 1; the first `batch_size` rows otherwise)."""
    import torch

    n = len(features)
    if n == 0:
        return None
    lengths = features.lengths
    if batch_size == 1:
        index = np.array([int(np.argsort(lengths)[n // 2])])
    else:
        index = np.arange(min(batch_size, n))
    batch = collate(features, index, pad_id)
    batch.pop("labels", None)
    device = next(model.parameters()).device
    was_training = model.training
    model.to("cpu").eval()
    times = []
    with torch.inference_mode():
        model(**batch)  # warm-up
        for _ in range(LATENCY_RUNS):
            t0 = time.perf_counter()
            model(**batch)
            times.append(time.perf_counter() - t0)
    model.to(device).train(was_training)
    return round(1000 * statistics.median(times) / len(index), 3)


def distill_report(
    teacher,
    student,
    *,
    teacher_folder,
    student_folder,
    student_scores: dict,
    score_teacher: Callable,
    features,
    split_name: str,
    metric: str,
    pad_id: int,
    collate: Callable = default_collate,
) -> dict:
    """The figures of teacher and student, and the share of the teacher's metric kept."""
    teacher_scores = score_teacher(teacher)
    keys = [k for k in dict.fromkeys([metric, "accuracy"]) if k in student_scores]

    def side(model, scores, folder) -> dict:
        return {
            **{k: scores.get(k) for k in keys},
            "params": count_parameters(model)[1],
            "size_mb": folder_mb(folder),
            "latency_ms_batch1": cpu_latency_ms(model, features, 1, pad_id, collate),
            "latency_ms_batch32": cpu_latency_ms(model, features, 32, pad_id, collate),
        }

    t, s = (
        side(teacher, teacher_scores, teacher_folder),
        side(student, student_scores, student_folder),
    )
    kept = {
        k: round(s[k] / t[k], 4)
        for k in keys
        if isinstance(t.get(k), (int, float)) and isinstance(s.get(k), (int, float)) and t[k]
    }
    return {"split": split_name, "metric": metric, "teacher": t, "student": s, "kept": kept}


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key == "params":
        return f"{v / 1e6:.2f}M"
    if key == "size_mb" or "latency" in key:
        return f"{v:.1f}" if key == "size_mb" else f"{v:.2f}"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def format_table(report: dict) -> str:
    """A small plain-text table: one row per figure, teacher | student | student/teacher."""
    t, s = report["teacher"], report["student"]
    lines = [
        f"distillation ({report['split']} split; latency: CPU ms per example)",
        f"{'':20}{'teacher':>12}{'student':>12}{'ratio':>9}",
    ]
    for key in t:
        a, b = t[key], s[key]
        numbers = isinstance(a, (int, float)) and isinstance(b, (int, float)) and a
        ratio = f"{b / a:.3f}" if numbers else "-"
        lines.append(f"{key:20}{_fmt(key, a):>12}{_fmt(key, b):>12}{ratio:>9}")
    return "\n".join(lines)
