"""`tunelab models`: the catalogue lists what fits the task, offline, from built-in metadata."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO

from tunelab.cli.commands import main


def _models(*argv: str) -> list[dict]:
    out = StringIO()
    with redirect_stdout(out):
        assert main(["models", *argv, "--json"]) == 0
    return json.loads(out.getvalue())


def test_classification_lists_encoders_not_decoders():
    rows = _models("--task", "classification")
    assert rows and all(r["family"] == "encoder" for r in rows)
    names = [r["name"] for r in rows]
    assert "all-minilm-l6-v2" in names and "smollm2-135m-instruct" not in names
    assert rows[0]["loadable"]  # ranked: what loads here first (the hub is offline in tests)
    hub = [r for r in rows if r["source"] == "hub"]
    assert hub and all(r["params"] and r["license"] for r in hub)


def test_causal_lm_lists_decoders_and_a_local_folder(tiny_llama):
    rows = _models("--task", "causal-lm", "--path", str(tiny_llama))
    assert all(r["family"] == "decoder" for r in rows)
    assert any(r["source"] == "local" and r["loadable"] for r in rows)
