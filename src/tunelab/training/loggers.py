"""Where training figures go: `metrics.jsonl` (one JSON object per logged step), TensorBoard
events in `tensorboard/` (when `train.trackers` has it) and the run's MLflow/W&B trackers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol


class RecordSink(Protocol):
    """What else takes each record: `training.trackers.Trackers` (MLflow, W&B)."""

    def log(self, record: dict) -> None: ...


class MetricsLogger:
    def __init__(
        self,
        run_dir: Path,
        resume_step: int | None = None,
        *,
        tensorboard: bool = True,
        sink: RecordSink | None = None,
    ):
        """`sink` is owned by the caller (it outlives the loop: final results go to it too)."""
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            # Drop what was logged after the checkpoint: those steps will be run again.
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif resume_step is None:
            self.path.write_text("")
        self._file = self.path.open("a", encoding="utf-8")
        self._tb = None
        self._sink = sink
        try:
            from torch.utils.tensorboard import SummaryWriter

            if tensorboard:
                self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)
        except (
            ImportError
        ):  # tensorboard is a dependency, but a broken install must not stop training
            pass

    def log(self, record: dict) -> None:
        """`record` has step, epoch, split and numbers; nested values are skipped for TB."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if (
                    key not in ("step", "split")
                    and isinstance(value, (int, float))
                    and math.isfinite(value)
                ):
                    self._tb.add_scalar(f"{record['split']}/{key}", value, record["step"])
        if self._sink is not None:
            self._sink.log(record)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
