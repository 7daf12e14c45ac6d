"""A tiny trained classifier shared by the interpret tests. Not a conftest.py: a second
conftest module would shadow the root one for `from conftest import ...` elsewhere."""

from __future__ import annotations

import pytest
from conftest import tiny_config

from tunelab import api


@pytest.fixture(scope="session")
def trained_cls(tiny_model, toy_data, tmp_path_factory):
    """A tiny BERT classifier trained on toy data where sentiment words decide the label;
    trained once per session (the folder is reused by every module importing this)."""
    out = tmp_path_factory.getbasetemp() / "explain-cls" / "run"
    if not (out / "model").is_dir():
        api.train(tiny_config(tiny_model, toy_data, out, train={"epochs": 4}), overwrite=True)
    return out
