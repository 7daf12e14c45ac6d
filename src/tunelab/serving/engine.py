"""Continuous batching for generation: one decoding loop per causal LM, in its own thread.

Concurrent requests share every forward pass. A request that arrives while others decode
joins at the next step: its prompt is prefilled (left-padded, with other newcomers) and its
KV cache is merged into the running one, left-padded to a common length; a finished row
leaves the batch at once. So 16 clients keep ~16 rows in flight instead of queueing behind
each other, and a long answer does not hold a short one back.

Rows carry their own sampling settings, stop strings and token limits. On a base model that
serves several LoRA adapters, each row names its adapter and peft runs the mixed batch in
one pass (`adapter_names=`). Text goes back through `emit` (called from this thread): deltas
as they are safe to show (never part of a stop string), then a final "done" event.

`hold` is a hook for tests and operators, off unless given: while `hold()` is true the loop
does no work at all (takes nothing from the queue, decodes no step), so requests wait, time
out (504) or find the queue full (429) whatever the machine's speed; once it is false again
the loop carries on where it stopped. `tunelab serve --hold-file PATH` wires it to a file.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tunelab.serving.sampling import Sampling, choose_tokens, find_stop, safe_end

log = logging.getLogger("tunelab.serving")


def _token_nll(logits, tokens: list[int]) -> list[float]:
    """-log p(token) of each row's chosen token under the model's raw logits (R, V)."""
    import torch

    rows = torch.arange(len(tokens), device=logits.device)
    chosen = torch.as_tensor(tokens, device=logits.device)
    return (-torch.log_softmax(logits.float(), -1)[rows, chosen]).tolist()


class QueueFull(Exception):
    """More requests wait than the engine's queue allows (the HTTP layer answers 429)."""


@dataclass
class GenJob:
    prompt_ids: list[int]
    max_tokens: int
    emit: Callable[[dict], None]  # called from the engine thread
    sampling: Sampling = field(default_factory=Sampling)
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None  # peft adapter name on a shared base ("__base__": none)
    cancelled: bool = False  # set by the HTTP layer (client gone, timeout)
    generated: list[int] = field(default_factory=list)
    emitted: int = 0  # characters already sent
    text: str = ""  # decoded so far (incrementally, see GenerationEngine._text)
    prefix_offset: int = 0  # generated[prefix_offset:read_offset] decodes to text's tail
    read_offset: int = 0
    nll: float = 0.0  # the model's own -log p of the generated tokens, summed

    def finish(self, text: str, reason: str) -> None:
        if len(text) > self.emitted:
            self.emit({"type": "delta", "text": text[self.emitted :]})
        self.emit(
            {
                "type": "done",
                "finish": reason,
                "text": text,
                "prompt_tokens": len(self.prompt_ids),
                "completion_tokens": len(self.generated),
                # per-token NLL of the answer under the served model (the monitor watches it)
                "nll": round(self.nll / len(self.generated), 4) if self.generated else None,
            }
        )


def eos_ids(model, tokenizer) -> set[int]:
    """The tokens that end a turn: the tokenizer's EOS and the generation config's."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    return {i for i in ids if i is not None}


class GenerationEngine:
    """The decoding loop of one model (or one base with its adapters)."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        multi_adapter: bool = False,
        on_step: Callable[[int], None] | None = None,
        on_tokens: Callable[[int], None] | None = None,
        name: str = "model",
        hold: Callable[[], bool] | None = None,
    ):
        import inspect

        self.model, self.tokenizer = model, tokenizer
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000
        self.max_queue, self.multi_adapter = max_queue, multi_adapter
        self.on_step, self.on_tokens = on_step or (lambda n: None), on_tokens or (lambda n: None)
        self.hold = hold
        self.eos = eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        forward = getattr(model, "get_base_model", lambda: model)().forward
        self.keep_last = "logits_to_keep" in inspect.signature(forward).parameters
        self.inbox: queue.Queue[GenJob] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tunelab-gen-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def waiting(self) -> int:
        """Requests in the queue that still want an answer (timed-out or abandoned ones are
        dropped when the loop next collects, and take no place meanwhile)."""
        with self.inbox.mutex:
            return sum(1 for j in self.inbox.queue if not j.cancelled)

    def submit(self, job: GenJob) -> None:
        if (waiting := self.waiting()) >= self.max_queue:
            raise QueueFull(f"{waiting} requests already wait")
        self.inbox.put(job)

    def _held(self) -> bool:
        return self.hold is not None and self.hold()

    # -- the loop --------------------------------------------------------------------------

    def _collect(self, block: bool, free: int) -> list[GenJob]:
        """New jobs, up to `free`. When idle, wait for one, then up to max_wait for more, so
        requests that arrive together are prefilled together."""
        jobs: list[GenJob] = []
        if free <= 0:
            return jobs
        if block:  # idle: wait for a request without taking it yet
            with self.inbox.not_empty:
                if not self.inbox.queue:
                    self.inbox.not_empty.wait(0.2)
        # the hold is checked once a request is there, so one sent after it began stays queued
        if not self.inbox.queue or self._held():
            return jobs
        jobs.append(self.inbox.get_nowait())  # only this thread takes from the queue
        if block:
            deadline = time.monotonic() + self.max_wait
            while len(jobs) < free and (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(self.inbox.get(timeout=left))
                except queue.Empty:
                    break
        while len(jobs) < free:
            try:
                jobs.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return [j for j in jobs if not j.cancelled]

    def _run(self) -> None:
        import torch

        self.active: list[GenJob] = []
        self.cache, self.mask = None, None  # DynamicCache; (B, L) 1 = real token
        while not self._stop.is_set():
            if self._held():
                self._stop.wait(0.01)  # held (test/operator hook): no work until released
                continue
            new = self._collect(not self.active, self.max_batch_size - len(self.active))
            if not new and not self.active:
                continue
            try:
                with torch.inference_mode():
                    if new:
                        self._prefill(new)
                    if self.active:
                        self._step()
            except Exception as exc:  # a failed pass fails its rows, not the server
                log.exception("generation step failed")
                for job in self.active + new:
                    job.emit({"type": "error", "message": f"generation failed: {exc}"})
                self.active, self.cache, self.mask = [], None, None

    def _forward(self, ids, mask, positions, cache, jobs: list[GenJob]):
        """Logits of the last position (R, V) and the updated cache."""
        kwargs = {"attention_mask": mask, "position_ids": positions, "use_cache": True}
        if self.keep_last:
            kwargs["logits_to_keep"] = 1
        if self.multi_adapter:
            kwargs["adapter_names"] = [j.adapter or "__base__" for j in jobs]
        out = self.model(input_ids=ids, past_key_values=cache, **kwargs)
        return out.logits[:, -1, :], out.past_key_values

    def _prefill(self, jobs: list[GenJob]) -> None:
        """Run the newcomers' prompts (left-padded) and merge their cache into the batch's."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)  # (N, P)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)  # (N, P)
        for r, j in enumerate(jobs):
            ids[r, width - len(j.prompt_ids) :] = torch.tensor(j.prompt_ids)
            mask[r, width - len(j.prompt_ids) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (N, P)
        cache = DynamicCache(config=self.model.config)
        logits, cache = self._forward(ids, mask, positions, cache, jobs)
        if any(type(layer).__name__ != "DynamicLayer" for layer in cache.layers):
            raise RuntimeError("serving needs a plain dynamic KV cache (no sliding window)")
        self._merge(cache, mask)
        self.active += jobs
        tokens = choose_tokens(logits, [j.sampling for j in jobs], [[]] * len(jobs))
        self._advance(jobs, tokens, _token_nll(logits, tokens))

    def _merge(self, cache, mask) -> None:
        """Append rows (cache, mask (N, P)) to the running batch, left-padding the shorter."""
        import torch

        if self.cache is None:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])

        def pad(t, dim):  # left-pad t along dim to `width`
            missing = width - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        for old, add in zip(self.cache.layers, cache.layers):  # keys: (B, H, L, D)
            old.keys = torch.cat([pad(old.keys, 2), pad(add.keys, 2)], dim=0)
            old.values = torch.cat([pad(old.values, 2), pad(add.values, 2)], dim=0)
        self.mask = torch.cat([pad(self.mask, 1), pad(mask, 1)], dim=0)

    def _step(self) -> None:
        """One decoding step for every active row."""
        import torch

        jobs = self.active
        self.on_step(len(jobs))
        device = self.mask.device
        last = torch.tensor([[j.generated[-1]] for j in jobs], device=device)  # (B, 1)
        positions = self.mask.sum(-1, keepdim=True)  # (B, 1): real tokens before this one
        mask = torch.cat([self.mask, self.mask.new_ones((len(jobs), 1))], dim=1)  # (B, L+1)
        logits, self.cache = self._forward(last, mask, positions, self.cache, jobs)
        self.mask = mask
        settings = [j.sampling for j in jobs]
        tokens = choose_tokens(logits, settings, [j.generated for j in jobs])
        self._advance(jobs, tokens, _token_nll(logits, tokens))

    def _advance(self, jobs: list[GenJob], tokens: list[int], nll: list[float]) -> None:
        """Record each row's new token, stream what is safe, retire finished rows."""
        done = set()
        self.on_tokens(sum(1 for t in tokens if t not in self.eos))
        for job, token, loss in zip(jobs, tokens, nll):
            if job.cancelled:
                done.add(id(job))
                continue
            if token in self.eos:
                job.finish(job.text, "stop")
                done.add(id(job))
                continue
            job.generated.append(token)
            job.nll += loss
            text = self._text(job)
            longest = max((len(s) for s in job.stop), default=0)
            cut = find_stop(text, job.stop, max(0, job.emitted - longest)) if job.stop else None
            if cut is not None:
                job.finish(text[:cut], "stop")
                done.add(id(job))
            elif len(job.generated) >= job.max_tokens:
                job.finish(text, "length")
                done.add(id(job))
            else:
                end = safe_end(text, job.stop)
                if end > job.emitted:
                    job.emit({"type": "delta", "text": text[job.emitted : end]})
                    job.emitted = end
        if done:
            self._retire(done)

    def _text(self, job: GenJob) -> str:
        """The row's text after its newest token, decoding only a short window of tokens
        (as TGI and vLLM do), so a step costs the same at token 2000 as at token 2; text
        waits while the window ends inside a multi-byte character."""
        decode = self.tokenizer.decode
        ids = job.generated
        before = decode(ids[job.prefix_offset : job.read_offset], skip_special_tokens=True)
        after = decode(ids[job.prefix_offset :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            job.text += after[len(before) :]
            job.prefix_offset, job.read_offset = job.read_offset, len(ids)
        return job.text

    def _retire(self, done: set[int]) -> None:
        import torch

        keep = [i for i, j in enumerate(self.active) if id(j) not in done]
        self.active = [self.active[i] for i in keep]
        if not keep:
            self.cache, self.mask = None, None
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.mask = self.mask[index]
        first = int(self.mask.any(0).nonzero()[0])  # columns left of it are padding in every row
        self.mask = self.mask[:, first:]
        for layer in self.cache.layers:  # (B, H, L, D)
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
