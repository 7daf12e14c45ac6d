"""Experiment trackers beside metrics.jsonl: MLflow and W&B (TensorBoard is `MetricsLogger`'s).

Each tracker gets the resolved run config as params, every logged step's numbers (keys
`<split>/<name>`, as in TensorBoard) and the final results (`final/<split>/<name>`).

Not `accelerate.tracking`: the loop's Accelerator lives only as long as the loop, while a
run's final results are scored and written by runs/ after the loop returns, and a resumed run
must continue the same tracker run. The clients' own APIs do both in a few lines, and
`MlflowClient` keeps no process-wide active run (a search trains many runs in one process).
mlflow and wandb are extras, imported only when a run asks for them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from tunelab.atomic import atomic_write_text
from tunelab.config.schema import RunConfig, TrainConfig
from tunelab.errors import ConfigError

# tracker -> (the module it needs, the pip extra that installs it)
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}
STATE = "trackers.json"  # the trackers' run ids, so that --resume continues the same runs


def check_trackers(cfg: TrainConfig) -> None:
    """Refuse a configured tracker that is not installed: at config time, before any weights."""
    for name in cfg.trackers:
        module, extra = EXTRAS.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                "train.trackers",
                f"'{name}' is not installed; pip install 'tunelab[{extra}]'",
                cfg.trackers,
                has_value=True,
            )


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`train.lr`); lists and other leaves kept as they are."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def numbers(record: dict, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite numbers of `record` (bools and nested values are not metrics)."""
    return {
        k: float(v)
        for k, v in record.items()
        if k not in skip
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


class MlflowTracker:
    """One MLflow run per tunelab run, through `MlflowClient` (no global active run)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, params: dict, run_id: str | None):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        default = f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"  # MLflow 3 refuses file:
        uri = cfg.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or default
        self.client = MlflowClient(uri)
        if run_id is not None:  # resume: the same run, its params are already there
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            return
        found = self.client.get_experiment_by_name(cfg.mlflow_experiment)
        if found is not None:
            experiment = found.experiment_id
        else:  # a local store keeps its artifacts beside it, not in the working directory
            where = (run_dir / "mlartifacts").resolve().as_uri() if uri == default else None
            experiment = self.client.create_experiment(
                cfg.mlflow_experiment, artifact_location=where
            )
        run = self.client.create_run(
            experiment, run_name=run_dir.name, tags={"tunelab.output": str(run_dir)}
        )
        self.run_id = run.info.run_id
        # MLflow keys allow letters, digits, _ - . / and space; values up to 6000 characters
        items = [Param(re.sub(r"[^\w\-. /]", "_", k), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # the server's per-request limit
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log(self, step: int, values: dict[str, float]) -> None:
        self._metrics(values, step)

    def finish(self, step: int, values: dict[str, float]) -> None:
        self._metrics(values, step)

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class WandbTracker:
    """A W&B run, offline unless asked: files under `<output>/wandb/`, `wandb sync` uploads."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, config: dict, run_id: str | None):
        import wandb

        mode = cfg.wandb_mode or os.environ.get("WANDB_MODE") or "offline"
        if mode == "offline":  # else wandb's error-reporting exporter still probes its cloud
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        settings = wandb.Settings(
            console="off", silent=True, x_disable_stats=True, save_code=False, disable_git=True
        )
        self.run = wandb.init(
            project=cfg.wandb_project,
            name=run_dir.name,
            dir=str(run_dir),
            mode=mode,
            config=config,
            id=run_id,
            resume="allow" if run_id else None,
            settings=settings,
        )
        self.run_id = self.run.id

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)  # W&B drops a step lower than one it has seen

    def finish(self, step: int, values: dict[str, float]) -> None:
        self.run.summary.update(values)

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


class Trackers:
    """The configured MLflow/W&B runs of one tunelab run; a context manager that closes them
    (as failed when the block raised). `log` takes the records `MetricsLogger` writes."""

    def __init__(self, cfg: RunConfig, run_dir: Path, resume: bool = False):
        check_trackers(cfg.train)
        state_path = run_dir / STATE
        state = json.loads(state_path.read_text()) if resume and state_path.exists() else {}
        config = cfg.model_dump(mode="json")
        kinds = {"mlflow": MlflowTracker, "wandb": WandbTracker}
        self._open: dict[str, Any] = {}
        self._step = 0
        try:
            for name in cfg.train.trackers:
                if name in kinds and name not in self._open:
                    params = flatten(config) if name == "mlflow" else config
                    self._open[name] = kinds[name](cfg.train, run_dir, params, state.get(name))
        except BaseException:
            self.close(failed=True)
            raise
        if self._open:
            ids = {name: t.run_id for name, t in self._open.items()}
            atomic_write_text(state_path, json.dumps(ids, indent=2) + "\n")

    def log(self, record: dict) -> None:
        """`record` has step, split and numbers (one line of metrics.jsonl)."""
        self._step = max(self._step, int(record["step"]))
        values = {f"{record['split']}/{k}": v for k, v in numbers(record, ("step",)).items()}
        for tracker in self._open.values():
            tracker.log(record["step"], values)

    def finish(self, results: dict) -> None:
        """The numbers of the final results (results.json), as `final/<dotted key>`."""
        values = numbers({f"final/{k}": v for k, v in flatten(results).items()})
        values = {k.replace(".", "/"): v for k, v in values.items()}
        for tracker in self._open.values():
            tracker.finish(self._step, values)

    def close(self, failed: bool = False) -> None:
        open_, self._open = self._open, {}
        for tracker in open_.values():
            tracker.close(failed)

    def __enter__(self) -> Trackers:
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(failed=kind is not None)
