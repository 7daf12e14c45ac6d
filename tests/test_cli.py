"""The `tunelab` command as a user runs it: help, one-line errors, the happy path, the run dir.

Most calls go through `tunelab.cli.commands.main` in-process for speed; a few run the real command in a
subprocess to prove exit codes and that no traceback reaches the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config, toy_rows

from tunelab.cli.commands import main

COMMANDS = ["train", "predict", "eval", "models"]
# DESIGN.md "A run directory holds": exactly these, nothing half written.
RUN_DIR = set(
    "config.yaml metrics.jsonl tensorboard checkpoints model results.json report.html "
    "confusion_matrix.png".split()
)


def write_config(folder: Path, model: Path, data: dict, **sections) -> Path:
    sections.setdefault("train", {"max_steps": 4})
    cfg = tiny_config(model, data, folder / "out", **sections)
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def cli(*argv: str) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter."""
    cmd = [sys.executable, "-m", "tunelab.cli", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def expect_error(capsys, argv: list[str], *fragments: str, out: Path | None = None) -> str:
    """Expect a non-zero exit, one `error:` line holding `fragments`, nothing written in `out`."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code != 0 and "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    line = lines[0]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    if out is not None:
        assert not (out / "model").exists() and not (out / "results.json").exists()
    return line


# --- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_examples(command: str | None) -> None:
    proc = cli(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout
    assert proc.stdout.startswith(f"usage: tunelab {command or ''}".rstrip())


# --- bad inputs: one clear line, no traceback, nothing written -----------------------------


def test_subprocess_error_exit_code_and_one_line(tmp_path: Path, tiny_model, toy_data) -> None:
    cfg = write_config(tmp_path, tiny_model, toy_data)
    missing = tmp_path / "nope.jsonl"
    proc = cli("train", str(cfg), f"data.train={missing}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {missing}: file not found; check the path (relative to the current directory)"
    ]
    assert not (tmp_path / "out").exists()


ROWS = toy_rows(20, seed=5)


def _jsonl(path: Path, rows: list[dict], raw: dict[int, bytes] | None = None) -> Path:
    """`rows` as JSON lines; `raw` puts bytes as they are on (0-based) line i instead."""
    lines = [json.dumps(r).encode() for r in rows]
    for i, line in (raw or {}).items():
        lines[i] = line
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


DATA_CASES = {  # name: (write the bad train file, what the error line must say)
    "missing file": (lambda p: p, ["file not found"]),
    "empty file": (lambda p: _jsonl(p, []), ["empty file"]),
    "missing column": (
        lambda p: _jsonl(p, [{"sentence": r["text"], "label": r["label"]} for r in ROWS]),
        ["column 'text' not found", "columns are: sentence, label"],
    ),
    "empty text": (
        lambda p: _jsonl(p, ROWS, {4: b'{"text": "  ", "label": "positive"}'}),
        ["row 5", "column 'text'", "empty text"],
    ),
    "label missing": (
        lambda p: _jsonl(p, ROWS, {2: b'{"text": "good"}', 6: b'{"text": "bad", "label": null}'}),
        ["row 3", "column 'label'", "label missing", "rows 3, 7"],
    ),
    "single class": (
        lambda p: _jsonl(p, [{**r, "label": "positive"} for r in ROWS]),
        ["column 'label'", "at least 2 classes", "only 'positive'"],
    ),
    "non-utf8": (
        lambda p: _jsonl(p, ROWS, {3: b'{"text": "caf\xe9 was great", "label": "positive"}'}),
        ["row 4", "invalid UTF-8 byte 0xe9", "line 4"],
    ),
    "malformed jsonl": (
        lambda p: _jsonl(p, ROWS, {5: b'{"text": "a fine film" "label": "positive"}'}),
        ["row 6", "invalid JSON"],
    ),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_training_data(case: str, tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    make, fragments = DATA_CASES[case]
    bad = make(tmp_path / "train.jsonl")
    cfg = write_config(tmp_path, tiny_model, {**toy_data, "train": bad})
    expect_error(capsys, ["train", str(cfg)], f"{bad}", *fragments, out=tmp_path / "out")


def test_unknown_config_key_in_yaml(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    cfg = write_config(tmp_path, tiny_model, toy_data, train={"max_steps": 4, "foo": 1})
    expect_error(capsys, ["train", str(cfg)], "train.foo: unknown key", out=tmp_path / "out")


def test_wrong_type_override(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    cfg = write_config(tmp_path, tiny_model, toy_data)
    argv = ["train", str(cfg), "train.batch_size=abc"]
    expect_error(capsys, argv, "train.batch_size: ", "got 'abc'", out=tmp_path / "out")


def test_missing_config_file(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"
    expect_error(capsys, ["train", str(missing)], f"config file not found: {missing}")


def test_model_path_does_not_exist(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    cfg = write_config(tmp_path, tiny_model, toy_data)
    nope = tmp_path / "no-such-model"
    argv = ["train", str(cfg), f"model={nope}"]
    expect_error(capsys, argv, "model path does not exist", str(nope), out=tmp_path / "out")
    expect_error(capsys, ["predict", str(nope), "--text", "hi"], "model path does not exist")


def test_output_dir_holding_a_run(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    cfg = str(write_config(tmp_path, tiny_model, toy_data, train={"max_steps": 2}))
    out = tmp_path / "out"
    assert main(["train", cfg]) == 0
    capsys.readouterr()
    first = (out / "results.json").read_bytes()
    weights = (out / "model" / "model.safetensors").stat().st_mtime_ns

    expect_error(capsys, ["train", cfg], f"output '{out}' holds this run already", "--resume")
    diff = "holds a different run (config differs at train.max_steps (2 there, 3 now))"
    expect_error(capsys, ["train", cfg, "train.max_steps=3"], diff, "--overwrite")
    assert (out / "results.json").read_bytes() == first  # the old run is untouched
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == weights

    assert main(["train", cfg, "train.max_steps=3", "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["run"]["steps"] == 3


def test_failed_try_does_not_block_a_rerun(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    """Weights that fail to load leave no model/; the same command works once they're fixed."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    cfg = str(write_config(tmp_path, model, toy_data))
    expect_error(capsys, ["train", cfg], f"could not load model '{model}'", out=tmp_path / "out")
    shutil.copy(tiny_model / "model.safetensors", model)
    assert main(["train", cfg]) == 0  # not "holds this run already; use --resume"
    capsys.readouterr()

    # a setting the model refuses (a layer it does not have), then the fixed setting
    out, bad = tmp_path / "out2", [f"output={tmp_path / 'out2'}", "method.name=freeze"]
    expect_error(capsys, ["train", cfg, *bad, "method.train_layers=0-9"], "the model has 2 layers")
    assert main(["train", cfg, *bad, "method.train_layers=0-1"]) == 0  # not "a different run"
    assert json.loads((out / "results.json").read_text())["run"]["method"] == "freeze"


def test_output_dir_with_foreign_files(tmp_path: Path, tiny_model, toy_data, capsys) -> None:
    cfg = write_config(tmp_path, tiny_model, toy_data)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    expect_error(capsys, ["train", str(cfg)], "is not empty and holds no tunelab run")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]


# --- happy path ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, toy_data) -> tuple[Path, str]:
    """One real 20-step run through the CLI: (run dir, what `tunelab train` printed)."""
    folder = tmp_path_factory.mktemp("cli-run")
    cfg = write_config(folder, tiny_model, toy_data, train={})
    stdout = StringIO()
    with redirect_stdout(stdout):
        code = main(["train", str(cfg), "train.max_steps=20"])
    assert code == 0, stdout.getvalue()
    return folder / "out", stdout.getvalue()


def test_run_dir_holds_what_design_lists(trained) -> None:
    out, printed = trained
    assert "trained 20 steps" in printed and f"model:  {out / 'model'}" in printed
    assert {p.name for p in out.iterdir()} == RUN_DIR  # and no half-written temp folders

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert {"tunelab", "torch"} <= set(config["versions"])
    assert config["train"]["max_steps"] == 20 and config["data"]["max_length"] > 0

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert all({"step", "loss", "lr"} <= set(r) for r in train)
    assert [r["step"] for r in train] == list(range(1, 21))  # log_steps=1
    assert any(r["split"] == "validation" and "f1_macro" in r for r in records)

    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert any((out / "checkpoints").iterdir())
    for name in ("config.json", "model.safetensors", "tunelab.json"):
        assert (out / "model" / name).is_file(), name

    results = json.loads((out / "results.json").read_text())
    assert {"test", "validation", "baselines", "timing", "run"} <= set(results)
    assert results["run"]["steps"] == 20 and results["test"]["n"] == 80
    assert "<html" in (out / "report.html").read_text().lower()
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_loads_with_plain_transformers(trained) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = trained[0] / "model"
    config = AutoModelForSequenceClassification.from_pretrained(model_dir).config
    assert config.id2label == {0: "negative", 1: "positive"} and AutoTokenizer.from_pretrained(
        model_dir
    )


def test_predict_json(trained, capsys) -> None:
    out, _ = trained
    assert main(["predict", str(out / "model"), "--text", "a great fun film", "--json"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()  # one JSON line per text
    pred = json.loads(line)
    assert pred["text"] == "a great fun film"
    assert set(pred["scores"]) == {"negative", "positive"}
    assert sum(pred["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert pred["label"] == max(pred["scores"], key=pred["scores"].get)
    assert pred["score"] == pytest.approx(pred["scores"][pred["label"]])


def test_predict_accepts_the_run_dir(trained, capsys) -> None:
    out, _ = trained
    assert main(["predict", str(out), "--text", "dull", "--text", "superb", "--json"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_eval_json_matches_training_results(trained, toy_data, capsys, tmp_path) -> None:
    out, _ = trained
    argv = ["eval", str(out / "model"), "--data", str(toy_data["test"]), "--json"]
    assert main(argv + ["--output", str(tmp_path / "eval"), "--bootstrap", "50"]) == 0
    got = json.loads(capsys.readouterr().out)  # report.json (tests/evaluation/test_eval_report.py)
    assert got["split"] == "test" and [m["name"] for m in got["models"]] == ["out"]
    m = got["models"][0]["metrics"]
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["f1_macro"] <= 1
    assert set(m["per_class"]) == {"negative", "positive"}
    saved = json.loads((out / "results.json").read_text())["test"]
    assert m["accuracy"] == pytest.approx(saved["accuracy"])
    assert m["f1_macro"] == pytest.approx(saved["f1_macro"])


def test_eval_on_other_columns_names_the_flags(trained, tmp_path, capsys) -> None:
    """A file whose columns differ from the run's: the error names the file, the missing
    column, the file's columns and the flag that maps it; the flag then works."""
    out, _ = trained
    other = _jsonl(
        tmp_path / "reviews.jsonl", [{"review": r["text"], "stars": r["label"]} for r in ROWS]
    )
    report = tmp_path / "eval"
    argv = ["eval", str(out), "--data", str(other), "--output", str(report), "--bootstrap", "0"]
    expect_error(
        capsys,
        argv,
        f"{other}",
        "column 'text' not found",
        "columns are: review, stars",
        "--text-column",
        "--label-column",
    )
    assert not report.exists()  # nothing written
    expect_error(capsys, argv + ["--robustness"], "column 'text' not found", "--text-column")
    line = expect_error(capsys, argv + ["--text-column", "review"], "column 'label' not found")
    assert "--label-column" in line and "columns are: review, stars" in line
    line = expect_error(capsys, argv + ["--text-column", "review", "--label-column", "score"])
    assert "column 'score' not found" in line and "given by --label-column" in line
    assert not report.exists()
    assert main(argv + ["--text-column", "review", "--label-column", "stars"]) == 0
    assert (report / "report.json").is_file()


def test_eval_help_describes_the_column_flags() -> None:
    proc = cli("eval", "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--text-column", "--pair-column", "--label-column"):
        assert flag in proc.stdout
    assert "default: the column the model was trained on" in " ".join(proc.stdout.split())


def test_models_lists_packaged_aliases(capsys) -> None:
    assert main(["models"]) == 0  # the catalog's fields are checked in models/test_sources.py
    printed = capsys.readouterr().out
    assert "all-minilm-l6-v2" in printed and "22.7M" in printed
    assert "smollm2-135m-instruct" in printed
