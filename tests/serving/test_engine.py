"""The continuous-batching engine against transformers' own generate, and its text handling."""

from __future__ import annotations

import threading

import pytest

from tunelab.serving.engine import GenerationEngine, GenJob, QueueFull
from tunelab.serving.sampling import Sampling, choose_tokens, find_stop, safe_end


@pytest.fixture(scope="module")
def lm(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(
        tiny_llama
    )


def _run(engine, jobs_spec, join_at: list[int] | None = None):
    """Submit (prompt_ids, max_tokens, stop) jobs and wait for all. With `join_at`, job i is
    submitted from inside the engine's loop once it has run join_at[i] decoding steps (0: at
    once), so rows join others mid-way however fast the machine decodes."""
    done, events = {}, {}
    jobs = []
    for i, (ids, n, stop) in enumerate(jobs_spec):
        events[i] = threading.Event()
        streamed = []

        def emit(ev, i=i, streamed=streamed):
            if ev["type"] == "delta":
                streamed.append(ev["text"])
            else:
                done[i] = {**ev, "streamed": "".join(streamed)}
                events[i].set()

        jobs.append(GenJob(ids, n, emit, stop=stop))
    join_at = join_at or [0] * len(jobs)
    steps, on_step = [0], engine.on_step

    def step_then_join(rows: int) -> None:  # called by the engine before each step
        on_step(rows)
        steps[0] += 1
        for job, at in zip(jobs, join_at):
            if at == steps[0]:
                engine.submit(job)

    engine.on_step = step_then_join
    for job, at in zip(jobs, join_at):
        if at == 0:
            engine.submit(job)
    for e in events.values():
        assert e.wait(60)  # bounds a hang only
    return jobs, [done[i] for i in range(len(jobs_spec))]


def test_joined_rows_decode_exactly_as_generate_alone(lm):
    model, tok = lm
    prompts = [
        "Hello there",
        "What is the capital of France? Tell me more",
        "a",
        "one two three four",
    ]
    lengths = [20, 35, 7, 28]
    want = []
    for p, n in zip(prompts, lengths):
        ids = tok(p, return_tensors="pt")
        out = model.generate(
            **ids,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
        want.append(out[0, ids["input_ids"].shape[1] :].tolist())
    steps = []
    engine = GenerationEngine(model, tok, max_batch_size=8, max_wait_ms=1, on_step=steps.append)
    engine.eos = set()  # run every row to its full length, as min_new_tokens does above
    engine.start()
    try:
        # rows join while others are mid-way (at decoding steps 4, 9, 14) and leave at
        # different times
        specs = [(tok(p)["input_ids"], n, []) for p, n in zip(prompts, lengths)]
        jobs, done = _run(engine, specs, join_at=[0, 4, 9, 14])
    finally:
        engine.close()
    assert [j.generated for j in jobs] == want
    assert [d["finish"] for d in done] == ["length"] * 4
    assert [d["completion_tokens"] for d in done] == lengths
    assert max(steps) == 4  # all four rows shared decoding steps (step 15)
    for job, d in zip(jobs, done):
        assert d["streamed"] == d["text"] == tok.decode(job.generated, skip_special_tokens=True)


def test_stop_strings_cut_and_never_stream(lm):
    model, tok = lm
    engine = GenerationEngine(model, tok, max_wait_ms=1)
    engine.eos = set()
    engine.start()
    try:
        ids = tok("The city of")["input_ids"]
        _, (free,) = _run(engine, [(ids, 16, [])])
        text = free["text"]
        stop = text[len(text) // 2 :][:3]
        _, (cut,) = _run(engine, [(ids, 16, [stop])])
    finally:
        engine.close()
    assert cut["text"] == text[: text.find(stop)] and cut["finish"] == "stop"
    assert cut["streamed"] == cut["text"] and stop not in cut["streamed"]


def test_hold_queues_requests_and_releases_them(lm):
    """The test/operator hook: while held nothing is taken from the queue (so it fills: 429),
    a cancelled request gives up its place, and on release the live one is decoded."""
    model, tok = lm
    held = threading.Event()
    held.set()
    engine = GenerationEngine(model, tok, max_wait_ms=1, max_queue=1, hold=held.is_set)
    engine.eos = set()
    engine.start()
    try:
        ids = tok("hi")["input_ids"]
        gone = GenJob(ids, 3, lambda ev: pytest.fail(f"a cancelled job got {ev}"))
        engine.submit(gone)
        assert engine.waiting() == 1
        with pytest.raises(QueueFull):
            engine.submit(GenJob(ids, 3, lambda ev: None))
        gone.cancelled = True  # its client timed out
        assert engine.waiting() == 0
        finished = threading.Event()
        live = GenJob(ids, 3, lambda ev: ev["type"] == "done" and finished.set())
        engine.submit(live)
        assert engine.waiting() == 1 and not live.generated
        held.clear()
        assert finished.wait(60)  # bounds a hang only
    finally:
        engine.close()
    assert len(live.generated) == 3 and not gone.generated


def test_find_stop_and_safe_end():
    assert find_stop("abc STOP def", ["STOP", "def"]) == 4
    assert find_stop("abc", ["x"]) is None
    assert safe_end("hello wor", ["world"]) == 6  # "wor" may become "world": held back
    assert safe_end("hello", ["xyz"]) == 5
    assert safe_end("caf\ufffd", []) == 3  # half a character: held back


def test_choose_tokens_greedy_top_k_top_p_and_penalties():
    import torch

    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 4.9]])
    assert choose_tokens(logits, [Sampling(), Sampling()], [[], []]) == [1, 0]
    # top_k=1 leaves only the best token, whatever the temperature
    assert choose_tokens(logits, [Sampling(temperature=2, top_k=1, seed=0)] * 2, [[], []]) == [1, 0]
    # top_p below the best token's probability keeps only the best token
    assert choose_tokens(logits, [Sampling(temperature=1, top_p=0.01, seed=3)] * 2, [[], []]) == [
        1,
        0,
    ]
    # the smallest positive top_p the API accepts (5e-324 is 0.0 in float32) still keeps one
    tiny = Sampling(temperature=1, top_p=5e-324, presence_penalty=1.08, seed=0)
    assert choose_tokens(logits, [tiny, tiny], [[2], [3]]) == [1, 0]
    # a frequency penalty of 2 on token 0 (seen once) hands row 2 to token 3
    assert choose_tokens(logits[1:], [Sampling(frequency_penalty=2)], [[0]]) == [3]
    draws = {
        choose_tokens(logits[:1], [Sampling(temperature=1, seed=s)], [[]])[0] for s in range(200)
    }
    assert draws == {0, 1, 2, 3}  # sampling reaches every token at temperature 1
    same = [choose_tokens(logits[:1], [Sampling(temperature=1, seed=7)], [[]]) for _ in range(3)]
    assert same[0] == same[1] == same[2]  # a seed makes it repeatable
