"""A seq2seq run predicts, generates and serves like the other tasks: `api.predict` /
`tunelab predict` give the decoded output per input (the run's greedy decoding, flags over
it), `api.generate` / `tunelab generate` the same, and a real `tunelab serve` process answers
/v1/completions with it (through the request batcher) and refuses what it cannot do."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from conftest import tiny_bart_model, word_tokenizer, write_jsonl
from serving_helpers import running_server

from tunelab import api
from tunelab.cli.commands import main
from tunelab.evaluation.scoring.seq2seq import generate_texts
from tunelab.methods.loading import load_trained

WORDS = "red blue green cat dog bird one two three house tree river".split()
SOURCES = ["red cat dog", "one two three house", "blue bird"]


def _rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        rows.append({"text": " ".join(words), "target": " ".join(reversed(words))})
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny BART trained briefly to reverse word lists (a few epochs: it writes words)."""
    root = tmp_path_factory.mktemp("s2s")
    tok = word_tokenizer(WORDS)
    tiny_bart_model(len(tok)).save_pretrained(root / "base", safe_serialization=True)
    tok.save_pretrained(root / "base")
    cfg = {
        "model": str(root / "base"),
        "task": "seq2seq",
        "data": {
            "train": str(write_jsonl(root / "train.jsonl", _rows(192, 1))),
            "validation": str(write_jsonl(root / "dev.jsonl", _rows(16, 2))),
        },
        "method": {"name": "full"},
        "train": {"epochs": 4, "batch_size": 16, "lr": 5e-3, "seed": 0, "group_by_length": False},
        "eval": {"generate_rows": 4},
        "output": str(root / "run"),
    }
    api.train(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def expected(run):
    """The run's outputs for SOURCES, decoded as `tunelab eval` decodes (greedy)."""
    trained = load_trained(run)
    return generate_texts(trained.model, trained.tokenizer, SOURCES)


def test_api_predict_and_generate_give_the_decoded_outputs(run, expected):
    assert all(out and set(out.split()) <= set(WORDS) for out in expected)
    assert api.predict(run, SOURCES) == [{"generated": e} for e in expected]
    assert api.generate(run, SOURCES) == expected
    assert api.generate(run / "model", SOURCES[:1]) == expected[:1]
    # the run's settings are the base, keyword settings go over them
    short = api.predict(run, SOURCES, max_new_tokens=1)
    assert all(len(p["generated"].split()) <= 1 for p in short)
    with pytest.raises(Exception, match="single texts"):
        api.predict(run, SOURCES[:1], pairs=["x"])


def test_cli_predict_and_generate(run, expected, capsys):
    assert main(["predict", str(run), *[a for s in SOURCES for a in ("--text", s)], "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines == [{"text": s, "generated": e} for s, e in zip(SOURCES, expected)]
    assert main(["predict", str(run), "--text", SOURCES[0]]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{expected[0]}\t{SOURCES[0]}"
    assert main(["generate", str(run), "--prompt", SOURCES[1], "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == {"prompt": SOURCES[1], "completion": expected[1]}


def test_server_answers_completions_for_a_seq2seq_model(run, expected, tmp_path):
    with running_server([f"rev={run}"], tmp_path / "serve.log") as url:
        models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
        assert [(m["id"], m["task"]) for m in models] == [("rev", "seq2seq")]
        body = {"model": "rev", "prompt": SOURCES, "temperature": 0, "max_tokens": 32}
        r = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        reply = r.json()
        assert reply["object"] == "text_completion"
        assert [c["text"] for c in reply["choices"]] == expected
        assert {c["finish_reason"] for c in reply["choices"]} <= {"stop", "length"}
        usage = reply["usage"]
        assert usage["completion_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        # one prompt, sampled: OpenAI's default temperature samples, and gives words too
        r = httpx.post(
            f"{url}/v1/completions",
            json={"model": "rev", "prompt": SOURCES[0], "seed": 1, "n": 2},
            timeout=60,
        )
        assert r.status_code == 200 and len(r.json()["choices"]) == 2
        # what it cannot do: a 4xx naming the problem, and the server keeps serving
        bad = [
            (
                "/v1/chat/completions",
                {"model": "rev", "messages": [{"role": "user", "content": "x"}]},
            ),  # fmt: skip
            ("/v1/completions", {"model": "rev", "prompt": "red", "stream": True}),
            ("/v1/completions", {"model": "rev", "prompt": "red", "max_tokens": 100000}),
            ("/v1/classify", {"model": "rev", "input": "red"}),
            ("/v1/completions", {"model": "rev"}),
        ]
        for path, body in bad:
            r = httpx.post(f"{url}{path}", json=body, timeout=30)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
            assert r.json()["error"]["message"]
        assert "/v1/completions" in httpx.post(f"{url}{bad[0][0]}", json=bad[0][1]).text
        r = httpx.post(f"{url}/v1/completions", json={**body, "prompt": "red cat"}, timeout=30)
        assert r.status_code == 200
