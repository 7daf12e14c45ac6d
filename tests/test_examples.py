"""Every examples/*.yaml a user is pointed at loads, validates and reads its data.

No weights load: the config is validated, the model source resolves (or is the output of
another example, which the comments tell the user to run first), the method's own check
passes, and the task reads every data file it names with the columns it names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from tunelab.config.load import load_config
from tunelab.config.multitask import task_config, task_data_configs
from tunelab.methods import fit
from tunelab.models.sources import resolve_model
from tunelab.tasks import get_task

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def _outputs() -> set[str]:
    return {str(Path(load_config(p).output)) for p in EXAMPLES}


def test_there_are_examples():
    assert len(EXAMPLES) >= 13


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads_validates_and_reads_its_data(path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the examples' paths are relative to the repository root
    cfg = load_config(path)
    for run_dir in filter(None, [cfg.model, getattr(cfg.procedure, "teacher", None)]):
        if str(run_dir).startswith("runs/"):  # made by another example, run first
            assert str(Path(run_dir)) in _outputs(), f"{path.name}: nothing makes {run_dir}"
        else:
            resolve_model(run_dir)
    fit.check(cfg.method, cfg.task)
    if cfg.procedure.name == "multitask":
        entries = cfg.procedure.tasks
        for i, (entry, data) in enumerate(zip(entries, task_data_configs(cfg), strict=True)):
            split = get_task(entry.task).load_data(task_config(cfg, i, data)).splits
            assert len(split["train"]) > 0
    else:
        splits = get_task(cfg.task).load_data(cfg).splits
        assert len(splits["train"]) > 0 and len(splits["validation"]) > 0
    for key in ("replay", "old_validation"):
        extra = getattr(cfg.procedure, key, None)
        if extra:
            assert Path(extra).is_file(), f"{path.name}: procedure.{key} {extra} is missing"
