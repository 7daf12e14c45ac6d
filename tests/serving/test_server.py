"""`tunelab serve` as a real process, spoken to by real clients (openai, httpx).

One server holds every kind of model: a tiny trained classifier and tagger, the tiny Llama,
and two random LoRA adapters sharing the Llama as their base.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import tiny_config, toy_ner_files
from serving_helpers import random_lora, running_server

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def models(tiny_model, toy_data, tiny_llama, tmp_path_factory):
    from tunelab import api

    root = tmp_path_factory.mktemp("serve-models")
    api.train(tiny_config(tiny_model, toy_data, root / "clf", train={"epochs": 1}))
    ner_files = toy_ner_files(root / "ner", 120, 30, test=False)
    api.train(
        tiny_config(
            tiny_model,
            ner_files,
            root / "ner-run",
            task="token-classification",
            data={"text": "tokens", "label": "ner_tags"},
            train={"epochs": 2, "lr": 5e-3},
        )
    )
    return {
        "clf": root / "clf",
        "ner": root / "ner-run",
        "llama": tiny_llama,
        "ada": random_lora(tiny_llama, root / "ada", seed=1),
        "adb": random_lora(tiny_llama, root / "adb", seed=2),
    }


@pytest.fixture(scope="module")
def hold_file(tmp_path_factory):
    """While this file exists the server's engines do no work (`--hold-file`)."""
    return tmp_path_factory.mktemp("serve-hold") / "hold"


@pytest.fixture(scope="module")
def url(models, hold_file, tmp_path_factory):
    args = [f"clf={models['clf']}", f"ner={models['ner']}", f"tiny={models['llama']}"]
    args += [f"ada={models['ada']}", f"adb={models['adb']}"]
    args += ["--api-key", KEY, "--max-body-kb", "64", "--max-tokens-limit", "64"]
    args += ["--max-wait-ms", "20", "--hold-file", str(hold_file)]
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with running_server(args, log) as base:
        yield base


def metric(url: str, pattern: str) -> float:
    return float(re.search(pattern, httpx.get(f"{url}/metrics").text)[1])


@pytest.fixture(scope="module")
def client(url):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)


def post(url: str, path: str, body, headers=AUTH, **kw) -> httpx.Response:
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return httpx.post(
        url + path,
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=60,
        **kw,
    )


def test_models_list_and_health(url, client):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json()["models"] == ["clf", "ner", "tiny", "ada", "adb"]
    listed = {m.id: m for m in client.models.list().data}
    assert set(listed) == {"clf", "ner", "tiny", "ada", "adb"}
    assert listed["clf"].task == "classification" and listed["tiny"].task == "causal-lm"
    spec = httpx.get(f"{url}/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/completions", "/v1/classify", "/v1/entities"} <= set(
        spec["paths"]
    )


def test_chat_completion_matches_streamed_chunks(client):
    msgs = [{"role": "user", "content": "Name a colour."}]
    reply = client.chat.completions.create(
        model="tiny", messages=msgs, max_tokens=12, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens == 12 or choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens > 5  # the chat template wraps the message
    stream = client.chat.completions.create(
        model="tiny",
        messages=msgs,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content  # same greedy answer, delivered piece by piece
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


def test_completions_and_stop_strings(client):
    free = client.completions.create(
        model="tiny", prompt="The city of", max_tokens=16, temperature=0
    )
    text = free.choices[0].text
    assert free.choices[0].finish_reason == "length" and free.usage.completion_tokens == 16
    # stop at a piece of the greedy continuation: the output is cut right before it
    stop = text[len(text) // 2 :][:3]
    assume = text.find(stop)
    cut = client.completions.create(
        model="tiny", prompt="The city of", max_tokens=16, temperature=0, stop=[stop]
    )
    assert cut.choices[0].text == text[:assume] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="tiny", prompt="The city of", max_tokens=16, temperature=0, stop=[stop], stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == text[:assume]
    two = client.completions.create(model="tiny", prompt=["a", "b"], max_tokens=3, temperature=0)
    assert [c.index for c in two.choices] == [0, 1] and two.usage.completion_tokens == 6


def test_adapters_share_base_and_answer_differently(url, client, models):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    outs = {
        name: client.completions.create(model=name, prompt="Once upon", max_tokens=8, temperature=0)
        .choices[0]
        .text
        for name in ("tiny", "ada", "adb")
    }
    assert len(set(outs.values())) == 3, outs
    # each adapter's answer is what peft gives for it alone (the server ran them mixed)
    tok = AutoTokenizer.from_pretrained(models["llama"])
    ids = tok("Once upon", return_tensors="pt")
    for name in ("ada", "adb"):
        alone = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(models["llama"]), models[name]
        ).eval()
        with torch.inference_mode():
            gen = alone.generate(
                **ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id
            )
        assert (
            tok.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True) == outs[name]
        )
    # concurrent requests to all three models come back right (mixed-adapter batches)
    with ThreadPoolExecutor(6) as pool:
        again = list(
            pool.map(
                lambda n: (
                    client.completions.create(
                        model=n, prompt="Once upon", max_tokens=8, temperature=0
                    )
                    .choices[0]
                    .text
                ),
                ["tiny", "ada", "adb"] * 2,
            )
        )
    assert again == [outs[n] for n in ["tiny", "ada", "adb"] * 2]


def test_classify_equals_predict_and_batches_concurrent_requests(url, models, hold_file):
    from tunelab import api

    texts = ["a great fun film", "dull and awful plot", "the movie was superb"]
    got = post(url, "/v1/classify", {"model": "clf", "input": texts}).json()["data"]
    want = api.predict(models["clf"], texts)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert g["scores"] == pytest.approx(w["scores"], abs=1e-5)

    def one(i):
        return post(url, "/v1/classify", {"model": "clf", "input": f"{texts[i % 3]} {i}"})

    batches = r'tunelab_batch_size_count\{kind="classify",model="clf"\} (\S+)'
    rows = r'tunelab_batch_size_sum\{kind="classify",model="clf"\} (\S+)'
    queued = r'tunelab_queued_requests\{model="clf"\} (\S+)'
    before = metric(url, batches), metric(url, rows)
    # held, 32 concurrent requests pile up (the batcher holds the first, 31 wait); released,
    # they share one batch. Without the hold, batching would depend on the clients outpacing
    # the model, which a fast machine need not do.
    with ThreadPoolExecutor(32) as pool:
        hold_file.touch()
        try:
            replies = [pool.submit(one, i) for i in range(32)]
            while metric(url, queued) < 31:
                assert not any(r.done() for r in replies), next(r for r in replies if r.done())
                time.sleep(0.01)
        finally:
            hold_file.unlink()
        replies = [r.result() for r in replies]
    assert [r.status_code for r in replies] == [200] * 32
    assert (metric(url, batches) - before[0], metric(url, rows) - before[1]) == (1, 32)


def test_entities_equal_predict(url, models):
    from tunelab import api

    texts = ["alice went to paris", "bob met carol in oslo today"]
    got = post(url, "/v1/entities", {"model": "ner", "input": texts}).json()["data"]
    want = api.predict(models["ner"], texts)
    assert [g["tags"] for g in got] == [w["tags"] for w in want]
    assert [[(e["type"], e["start"], e["end"]) for e in g["entities"]] for g in got] == [
        [(e["type"], e["start"], e["end"]) for e in w["entities"]] for w in want
    ]


@pytest.mark.parametrize(
    "path, body, headers, status",
    [
        ("/v1/classify", '{"model": "clf", "input": ', AUTH, 400),  # not JSON
        ("/v1/classify", {"model": "clf", "input": 5}, AUTH, 422),  # wrong type
        ("/v1/chat/completions", {"model": "tiny", "messages": "hi"}, AUTH, 422),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": "lots"},
            AUTH,
            422,
        ),
        ("/v1/classify", {"model": "clf"}, AUTH, 422),  # missing field
        ("/v1/classify", {"model": "clf", "input": "x" * 70_000}, AUTH, 413),  # over 64 KB
        ("/v1/classify", {"model": "clf", "input": "x"}, {}, 401),  # no key
        ("/v1/classify", {"model": "clf", "input": "x"}, {"Authorization": "Bearer wrong"}, 401),
        ("/v1/classify", {"model": "clf", "input": "x"}, {"Authorization": KEY}, 401),  # no Bearer
        ("/v1/classify", {"model": "nope", "input": "x"}, AUTH, 404),
        ("/v1/classify", {"model": "tiny", "input": "x"}, AUTH, 400),  # a causal LM
        (
            "/v1/chat/completions",
            {"model": "clf", "messages": [{"role": "user", "content": "x"}]},
            AUTH,
            400,
        ),
        (
            "/v1/completions",
            {"model": "tiny", "prompt": "x", "max_tokens": 65},
            AUTH,
            400,
        ),  # over the limit
        (
            "/v1/completions",
            {"model": "tiny", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]},
            AUTH,
            422,
        ),
    ],
)
def test_bad_requests_get_json_errors(url, path, body, headers, status):
    reply = post(url, path, body, headers)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["message"] and error["type"]
    assert "Traceback" not in reply.text


def test_chunked_oversize_body_is_refused(url):
    def chunks():
        yield b'{"model": "clf", "input": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}'

    reply = httpx.post(
        f"{url}/v1/classify", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert reply.status_code == 413


def test_openai_client_raises_on_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="limit of 64"):
        client.completions.create(model="tiny", prompt="x", max_tokens=100)
    bad = openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
