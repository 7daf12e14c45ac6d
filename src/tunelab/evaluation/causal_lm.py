"""Causal-LM scoring: loss and perplexity on trained tokens; generation for `tunelab generate`."""

from __future__ import annotations

import math

import numpy as np


def score_lm_features(model, features, batch_size: int, pad_id: int) -> dict:
    """{"loss", "perplexity", "tokens"} over every trained token of the packed sequences."""
    import torch
    import torch.nn.functional as F

    from tunelab.data.batching import sorted_batches
    from tunelab.tasks.causal_lm import collate

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = {
                k: v.to(device) for k, v in collate(features, np.asarray(index), pad_id).items()
            }
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, :-1].float()  # (B, T-1, V)
            target = labels[:, 1:]
            total += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)),
                    target.reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
            )
            count += int((target != -100).sum())
    model.train(was_training)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}


def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    chat: bool = True,
) -> list[str]:
    """Completions for `prompts`: rendered with the chat template when the tokenizer has one;
    greedy when temperature is 0; stops at EOS (the template's end-of-turn token)."""
    import torch

    model.eval()
    outs = []
    for prompt in prompts:
        if chat and getattr(tokenizer, "chat_template", None):
            enc = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
        else:
            enc = tokenizer(prompt, return_tensors="pt")
        enc = {k: v.to(model.device) for k, v in enc.items()}
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            ids = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
                **sampling,
            )
        outs.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    return outs


def chat_loop(
    model,
    tokenizer,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    system: str | None = None,
    read=input,
    write=None,
) -> list[dict]:
    """An interactive chat: each reply streams token by token as it is generated.
    `/reset` clears the history, `/exit` (or end of input) leaves; returns the history."""
    import sys
    import threading

    from transformers import TextIteratorStreamer

    write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    model.eval()
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            break
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            history = list(start)
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        enc = tokenizer.apply_chat_template(
            history, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False}
        )

        kwargs = {
            **{k: v.to(model.device) for k, v in enc.items()},
            "streamer": streamer,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **sampling,
        }
        thread = threading.Thread(
            target=model.generate, kwargs=kwargs, daemon=True
        )  # generate runs without grad
        thread.start()
        write("model> ")
        pieces = []
        for piece in streamer:
            pieces.append(piece)
            write(piece)
        thread.join()
        write("\n")
        history.append({"role": "assistant", "content": "".join(pieces).strip()})
    return history
