"""Which parameters a method trains, counted from a model's shape (no weights, no peft).

Each count follows what tunelab's methods build (methods/): LoRA-family updates on every
linear layer outside the head unless `target_modules` names them, the head trained in full
beside them (peft's modules_to_save keeps a trainable copy), freeze's top-k blocks, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.models.planner.shape import Linear, ModelShape

LORA_FAMILY = ("lora", "dora", "qlora")


@dataclass
class Trainable:
    params: int  # parameters with gradients and optimizer state
    extra_params: int  # parameters the method adds to the base (LoRA A/B, adapters, copies)
    grad_layers: range  # blocks that backpropagate (store activations, pay backward FLOPs)
    targets: list[Linear]  # linears wrapped by a LoRA-family update
    matmul_trainable: int  # trainable weights that are multiplied per token (weight-grad FLOPs)


def _targets(shape: ModelShape, target_modules) -> list[Linear]:
    body = [lin for lin in shape.linears if not lin.head and lin.layer is not None]
    if target_modules in (None, "all-linear"):
        return body
    names = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    return [lin for lin in body if any(lin.name.split(".")[-1] == n for n in names)]


def freeze_layers(shape: ModelShape, train_layers) -> list[int]:
    """The block indices freeze trains: the top k, or a range string / list of indices."""
    n = shape.layers
    if isinstance(train_layers, int):
        return list(range(max(0, n - train_layers), n))
    if isinstance(train_layers, str):
        out: list[int] = []
        for part in train_layers.split(","):
            a, _, b = part.strip().partition("-")
            out += list(range(int(a), int(b or a) + 1))
        train_layers = out
    return sorted({i % n for i in train_layers})


def trainable(shape: ModelShape, method) -> Trainable:
    """Trainable parameters of `method` (a config.method model) on this shape."""
    name = method.name
    all_layers = range(shape.layers)
    head = shape.head_params
    head_matmul = sum(lin.fan_in * lin.fan_out for lin in shape.linears if lin.head)
    lm_head = shape.lm_vocab > 0  # a (B, T, V) head: tied or large, left frozen by adapters
    head_train = 0 if lm_head else head
    head_mm = 0 if lm_head else head_matmul
    if name == "full":
        return Trainable(shape.params, 0, all_layers, [], shape.matmul_params())
    if name == "freeze":
        layers = freeze_layers(shape, method.train_layers)
        n = sum(shape.layer_params[i] for i in layers) + head
        if method.train_embeddings:
            n += shape.embedding_params
        lo = min(layers) if layers else shape.layers
        grad = all_layers if method.train_embeddings else range(lo, shape.layers)
        return Trainable(n, 0, grad, [], shape.matmul_params(range(lo, shape.layers)))
    if name in LORA_FAMILY:
        targets = _targets(shape, method.target_modules)
        extra = sum(method.r * (t.fan_in + t.fan_out) for t in targets)
        if name == "dora":
            extra += sum(t.fan_out for t in targets)  # the magnitude vector
        # the head trains beside the update, as a copy (modules_to_save)
        return Trainable(extra + head_train, extra + head_train, all_layers, targets, head_mm)
    if name == "adapter":
        per = 2 * shape.hidden * method.adapter_size + method.adapter_size + shape.hidden
        extra = per * shape.layers * (2 if method.adapter_placement == "houlsby" else 1)
        return Trainable(extra + head_train, extra, all_layers, [], head_mm)
    if name == "prefix":
        extra = method.num_virtual_tokens * shape.layers * 2 * shape.kv_dim
        return Trainable(extra + head_train, extra + head_train, all_layers, [], head_mm)
    if name == "prompt":
        extra = method.num_virtual_tokens * shape.hidden
        return Trainable(extra + head_train, extra + head_train, all_layers, [], head_mm)
    if name == "ia3":
        # peft's defaults scale keys, values and the FFN output: kv, kv and intermediate
        extra = shape.layers * (2 * shape.kv_dim + shape.intermediate)
        return Trainable(extra + head_train, extra + head_train, all_layers, [], head_mm)
    raise ValueError(f"method.name: the planner does not know method {name!r}")
