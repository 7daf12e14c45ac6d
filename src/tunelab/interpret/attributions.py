"""Token attributions of one model input: Integrated Gradients, gradient x input, occlusion.

All three explain a scalar *score* of the model's output (the target class's log-probability,
a tag's log-probability, the log-likelihood of a generated span; see the `*_score` builders)
and give one number per input token. Positive means the token raises the score.

- **Integrated Gradients** (captum `LayerIntegratedGradients` on the input-embedding layer):
  the path integral of the gradient from a *baseline* input to the real one. It is complete:
  the attributions sum to score(input) - score(baseline), up to the integral's approximation
  error (captum's convergence delta).
- **gradient x input** (captum `LayerGradientXActivation` on the embeddings): the embedding
  times the score's gradient with respect to it, summed over the hidden dimension. One
  backward pass; a first-order (local) view.
- **occlusion**: score(input) - score(input with token i replaced by the baseline token), one
  token at a time, batched. Model-agnostic and easy to read; misses interactions.

Classes and tags are explained by their log-odds by default (`score="log_odds"`).

The baseline replaces every *attributable* token by one baseline token and keeps the rest
(special tokens such as [CLS]/[SEP]/<|im_start|>, and for a generated span the generated
tokens). The baseline token is [MASK] when the tokenizer has one (an encoder pretrained with
masked-LM reads it as "some word here", a more neutral reference than [PAD], which it never
saw inside text), else the pad token, else unk, else eos; `baseline_token_id(choice=...)`
picks another. Non-attributable positions get 0 from every method (IG gives exactly 0 there,
since the baseline equals the input; the others are zeroed to match).

Scores may be vectors (B, K) instead of scalars (B,): each method then returns (K, T), row k
explaining output k (the per-generated-token view of a causal LM); IG does it by repeating the
input K times with a per-row captum target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

METHODS = ("ig", "grad_x_input", "occlusion")
METHOD_NAMES = {
    "ig": "Integrated Gradients",
    "grad_x_input": "gradient x input",
    "occlusion": "occlusion",
}


@dataclass
class ModelInput:
    """One tokenized input: ids (1, T), the other model inputs (each (1, T)), and which
    positions attributions are for (T,) bool."""

    input_ids: object
    extra: dict = field(default_factory=dict)
    attributable: object = None

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


def baseline_token_id(tokenizer, choice: str = "auto") -> int:
    """The token id that stands for "no information": auto = [MASK], else pad, else unk, else
    eos; or "mask" / "pad" / "unk" / "eos", or a literal token string in the vocabulary."""
    from tunelab.errors import ConfigError

    order = ["mask", "pad", "unk", "eos"] if choice == "auto" else [choice]
    for name in order:
        if name in ("mask", "pad", "unk", "eos"):
            tid = getattr(tokenizer, f"{name}_token_id", None)
        else:
            tid = tokenizer.convert_tokens_to_ids(name)
            tid = None if tid == tokenizer.unk_token_id and name != tokenizer.unk_token else tid
        if tid is not None:
            return int(tid)
    raise ConfigError("--baseline", f"the tokenizer has no {choice} token", choice, has_value=True)


def baseline_ids(inp: ModelInput, token_id: int):
    """The input ids with every attributable position set to the baseline token: (1, T)."""
    import torch

    return torch.where(
        inp.attributable[None, :], torch.full_like(inp.input_ids, token_id), inp.input_ids
    )


def _forward(model, keys: tuple[str, ...], score: Callable):
    """forward(input_ids, *extra) -> score(logits): the function captum differentiates."""

    def f(input_ids, *extra):
        logits = model(input_ids=input_ids, **dict(zip(keys, extra))).logits
        return score(logits.float())

    return f


def _expand(inp: ModelInput, k: int):
    ids = inp.input_ids.expand(k, -1)
    return ids, tuple(v.expand(k, -1) for v in inp.extra.values())


def _finish(attr, inp: ModelInput, outputs: int | None):
    """(K, T, D) layer attributions -> (T,) or (K, T) per token, zero off the attributable."""
    per_token = attr.sum(-1).detach().float() * inp.attributable[None, :].float()  # (K, T)
    return per_token[0] if outputs is None else per_token


def scores(model, inp: ModelInput, score: Callable, ids=None, batch_size: int = 32):
    """score(model(ids)) for ids (N, T) (default: the input itself) in batches: (N,) or (N, K)."""
    import torch

    ids = inp.input_ids if ids is None else ids
    f = _forward(model, tuple(inp.extra), score)
    out = []
    with torch.no_grad():
        for s in range(0, ids.shape[0], batch_size):
            chunk = ids[s : s + batch_size]
            out.append(f(chunk, *(v.expand(len(chunk), -1) for v in inp.extra.values())))
    return torch.cat(out)


def integrated_gradients(
    model,
    inp: ModelInput,
    score: Callable,
    base_id: int,
    *,
    steps: int = 50,
    outputs: int | None = None,
    batch_size: int | None = None,
):
    """(attributions (T,) or (K, T), convergence delta per output) by IG on the embeddings.
    `batch_size`: rows per forward pass (steps are chunked to bound memory)."""
    from captum.attr import LayerIntegratedGradients

    k = outputs or 1
    lig = LayerIntegratedGradients(
        _forward(model, tuple(inp.extra), score), model.get_input_embeddings()
    )
    ids, extra = _expand(inp, k)
    base = baseline_ids(inp, base_id).expand(k, -1)
    attr, delta = lig.attribute(
        ids,
        baselines=base,
        target=None if outputs is None else list(range(k)),
        additional_forward_args=extra or None,
        n_steps=steps,
        internal_batch_size=max(k, batch_size or min(steps * k, 64)),
        return_convergence_delta=True,
    )
    return _finish(attr, inp, outputs), delta.detach().float()


def grad_x_input(model, inp: ModelInput, score: Callable, *, outputs: int | None = None):
    """Embedding x d score / d embedding, summed over the hidden size: (T,) or (K, T)."""
    from captum.attr import LayerGradientXActivation

    k = outputs or 1
    gxa = LayerGradientXActivation(
        _forward(model, tuple(inp.extra), score), model.get_input_embeddings()
    )
    ids, extra = _expand(inp, k)
    attr = gxa.attribute(
        ids,
        target=None if outputs is None else list(range(k)),
        additional_forward_args=extra or None,
    )
    return _finish(attr, inp, outputs)


def occlusion(
    model,
    inp: ModelInput,
    score: Callable,
    base_id: int,
    *,
    outputs: int | None = None,
    batch_size: int = 32,
):
    """score(input) - score(input with token i set to the baseline token), per attributable
    token i (others 0): (T,) or (K, T). One forward pass per token, batched."""
    import torch

    positions = inp.attributable.nonzero().flatten().tolist()
    full = scores(model, inp, score)  # (1,) or (1, K)
    variants = inp.input_ids.repeat(len(positions), 1)  # (P, T)
    for row, pos in enumerate(positions):
        variants[row, pos] = base_id
    out = torch.zeros((outputs or 1, inp.length))
    if positions:
        drop = full - scores(model, inp, score, variants, batch_size)  # (P,) or (P, K)
        out[:, positions] = drop.reshape(len(positions), -1).T.float()
    return out[0] if outputs is None else out


def attribute(
    model,
    inp: ModelInput,
    score: Callable,
    base_id: int,
    methods: tuple[str, ...] = METHODS,
    *,
    steps: int = 50,
    outputs: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """{"attributions": {method: list}, "score", "baseline_score", "convergence_delta"} for the
    chosen methods; lists are (T,) or (K, T) as nested lists."""
    result: dict = {"attributions": {}}
    full = scores(model, inp, score)[0]
    base = scores(model, inp, score, baseline_ids(inp, base_id))[0]
    result["score"] = full.tolist()
    result["baseline_score"] = base.tolist()
    for m in methods:
        if m == "ig":
            attr, delta = integrated_gradients(
                model, inp, score, base_id, steps=steps, outputs=outputs, batch_size=batch_size
            )
            result["convergence_delta"] = delta.tolist() if outputs else float(delta[0])
        elif m == "grad_x_input":
            attr = grad_x_input(model, inp, score, outputs=outputs)
        elif m == "occlusion":
            attr = occlusion(model, inp, score, base_id, outputs=outputs)
        else:
            from tunelab.errors import ConfigError

            raise ConfigError(
                "--method", f"unknown method; choose from {', '.join(METHODS)}", m, has_value=True
            )
        result["attributions"][m] = attr.tolist()
    return result


# --- scores: logits -> (B,) or (B, K) -------------------------------------------------------


def class_score(target: int, multi_label: bool = False, kind: str = "log_odds") -> Callable:
    """Score of class `target` from classifier logits (B, C): its log-odds (default: log p -
    log(1 - p), which does not saturate as p -> 1 the way log p does, so gradients stay
    informative for confident predictions), log-probability (softmax; sigmoid for
    multi-label), probability, or raw logit."""
    import torch.nn.functional as F

    def f(logits):  # (B, C)
        if kind == "logit":
            return logits[:, target]
        if kind == "log_odds":
            return log_odds(logits, target, multi_label)
        lp = F.logsigmoid(logits) if multi_label else F.log_softmax(logits, -1)  # (B, C)
        return lp[:, target] if kind == "log_prob" else lp[:, target].exp()

    return f


def tag_score(positions: list[int], tags: list[int], kind: str = "log_odds") -> Callable:
    """Sum over (position, tag) pairs of the tag's log-odds (or log-probability, probability,
    logit) in token-classifier logits (B, T, C): e.g. the first sub-tokens of an entity's
    words."""
    import torch.nn.functional as F

    def f(logits):  # (B, T, C)
        picked = logits[:, positions, :]  # (B, W, C)
        if kind == "log_odds":
            return sum(log_odds(picked[:, w], t) for w, t in enumerate(tags))
        if kind != "logit":
            picked = F.log_softmax(picked, -1)
        vals = picked[:, range(len(tags)), tags]  # (B, W)
        return (vals.exp() if kind == "prob" else vals).sum(-1)

    return f


def log_odds(logits, target: int, multi_label: bool = False):
    """log p / (1 - p) of class `target` from logits (B, C): z_t - logsumexp_{j != t} z_j
    (softmax), or z_t itself (sigmoid)."""
    import torch

    if multi_label:
        return logits[:, target]
    others = torch.cat([logits[:, :target], logits[:, target + 1 :]], dim=1)  # (B, C - 1)
    return logits[:, target] - torch.logsumexp(others, dim=1)


def span_score(prompt_len: int, span_ids: list[int], per_token: bool = False) -> Callable:
    """Log-likelihood of the span that follows the prompt in causal-LM logits (B, T, V):
    sum over span tokens j of log p(span_j | prompt, span_<j) -> (B,), or each term -> (B, G)."""
    import torch
    import torch.nn.functional as F

    g = len(span_ids)

    def f(logits):  # (B, T, V); the logit at t predicts token t + 1
        lp = F.log_softmax(logits[:, prompt_len - 1 : prompt_len - 1 + g], -1)  # (B, G, V)
        idx = torch.tensor(span_ids, device=lp.device)[None, :, None].expand(lp.shape[0], -1, 1)
        per = lp.gather(-1, idx)[..., 0]  # (B, G)
        return per if per_token else per.sum(-1)

    return f
