"""The `method:` section of a run config: which parameters train (docs/methods.md compares them).

One model per method, picked by `name` (like `procedure:`), so that a setting of another
method is an error (`method.r: not a setting of method 'full'`) instead of being ignored.
`method: {r: 8}` (no name) is LoRA, the default, and `method: full` is `method: {name: full}`.

`MethodConfig` is the union, for annotations and validation; build one with
`method_config("lora", r=8)` or the class itself (`LoraMethod(r=8)`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

from tunelab.config.validation import format_validation_error

METHODS = ("full", "freeze", "lora", "dora", "qlora", "adapter", "prefix", "prompt", "ia3")
DEFAULT_METHOD = "lora"
FOLDABLE = ("lora", "dora", "ia3")  # peft updates merge_and_unload folds into the base
_UNMERGEABLE = ("adapter", "prefix", "prompt")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _merge_field():
    return Field(
        None,
        description="fold the trained update into the base so model/ is a plain model folder "
        "(adapter/ keeps the update alone); None: where the method allows (lora, dora, ia3; "
        "qlora keeps the adapter alone); false: model/ is the update alone",
    )


class _Method(_Strict):
    """What every method has: a name, `merge` (declared last in each, as it always was) and
    whether model/ holds the update folded in."""

    name: str

    @property
    def merges(self) -> bool:
        """Whether model/ holds the update folded into the base."""
        if self.name in ("adapter", "prefix", "prompt", "full", "freeze"):
            return False
        if self.name == "qlora":  # the adapter applies to a full-precision base anywhere
            return bool(self.merge)
        return self.merge is not False


class FullMethod(_Method):
    """Every weight trains."""

    name: Literal["full"] = "full"
    merge: bool | None = _merge_field()


class FreezeMethod(_Method):
    """The top layers (or the listed ones) train; the rest stay frozen."""

    name: Literal["freeze"] = "freeze"
    train_layers: int | str | list[int] = Field(
        2,
        description="freeze: an int k trains the top k layers; a range string '0-1,4' or a list "
        "of layer indices (negative counts from the top) trains exactly those",
    )
    train_embeddings: bool = Field(False, description="freeze: also train the embeddings")
    merge: bool | None = _merge_field()

    @model_validator(mode="after")
    def _check(self) -> FreezeMethod:
        if isinstance(self.train_layers, int) and self.train_layers < 0:
            raise ValueError("train_layers: must be >= 0 (or a range like '0-1,4')")
        return self


class _LoraFamily(_Method):
    r: int = Field(16, gt=0)
    alpha: int | None = Field(None, gt=0, description="None: 2 * r")
    dropout: float = Field(0.1, ge=0, lt=1)
    rslora: bool = Field(
        False, description="lora/dora: scale updates by alpha/sqrt(r) (rank-stabilized LoRA)"
    )
    target_modules: list[str] | str | None = Field(
        None,
        description="lora/dora/qlora/ia3: module names or 'all-linear'; None: every linear "
        "layer outside the head (ia3: peft's per-architecture default)",
    )
    merge: bool | None = _merge_field()


class LoraMethod(_LoraFamily):
    """Low-rank updates of the linear layers (peft LoRA); the default."""

    name: Literal["lora"] = "lora"


class DoraMethod(_LoraFamily):
    """LoRA with the weights split into magnitude and direction (peft DoRA)."""

    name: Literal["dora"] = "dora"


class QloraMethod(_LoraFamily):
    """LoRA on a base loaded in 4-bit NF4 (needs a CUDA GPU and bitsandbytes)."""

    name: Literal["qlora"] = "qlora"


class _Unmergeable(_Method):
    @model_validator(mode="after")
    def _check_merge(self) -> _Unmergeable:
        if self.merge:
            raise ValueError(
                f"merge: {self.name} cannot be folded into the base weights; leave merge unset"
            )
        return self


class AdapterMethod(_Unmergeable):
    """Bottleneck adapters inserted after the FFN (and attention) blocks."""

    name: Literal["adapter"] = "adapter"
    adapter_size: int = Field(64, gt=0, description="adapter: bottleneck width")
    adapter_placement: Literal["pfeiffer", "houlsby"] = Field(
        "pfeiffer",
        description="adapter: after each FFN (pfeiffer) or after attention and FFN (houlsby)",
    )
    merge: bool | None = _merge_field()


class PrefixMethod(_Unmergeable):
    """Learned key/value prefixes in every layer (peft prefix tuning)."""

    name: Literal["prefix"] = "prefix"
    num_virtual_tokens: int = Field(20, gt=0, description="prefix/prompt: learned tokens")
    merge: bool | None = _merge_field()


class PromptMethod(_Unmergeable):
    """A learned soft prompt before the input (peft prompt tuning)."""

    name: Literal["prompt"] = "prompt"
    num_virtual_tokens: int = Field(20, gt=0, description="prefix/prompt: learned tokens")
    prompt_init: str | None = Field(
        None, description="prompt: initialise the soft prompt from this text's embeddings"
    )
    merge: bool | None = _merge_field()


class Ia3Method(_Method):
    """Learned rescaling vectors on keys, values and the FFN (peft IA3)."""

    name: Literal["ia3"] = "ia3"
    target_modules: list[str] | str | None = Field(
        None,
        description="lora/dora/qlora/ia3: module names or 'all-linear'; None: every linear "
        "layer outside the head (ia3: peft's per-architecture default)",
    )
    merge: bool | None = _merge_field()


METHOD_CLASSES: dict[str, type[_Method]] = {
    "full": FullMethod,
    "freeze": FreezeMethod,
    "lora": LoraMethod,
    "dora": DoraMethod,
    "qlora": QloraMethod,
    "adapter": AdapterMethod,
    "prefix": PrefixMethod,
    "prompt": PromptMethod,
    "ia3": Ia3Method,
}
assert tuple(METHOD_CLASSES) == METHODS


def _method_input(value: Any) -> Any:
    """`method: full` -> `{name: full}`; a mapping without `name` is the default method."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "name" not in value:
        return {**value, "name": DEFAULT_METHOD}
    return value


MethodConfig = Annotated[
    FullMethod
    | FreezeMethod
    | LoraMethod
    | DoraMethod
    | QloraMethod
    | AdapterMethod
    | PrefixMethod
    | PromptMethod
    | Ia3Method,
    Field(discriminator="name"),
    BeforeValidator(_method_input),
]
"""Any one method's section (a discriminated union on `name`)."""

_ADAPTER: TypeAdapter = TypeAdapter(MethodConfig)


def method_config(name: str = DEFAULT_METHOD, **settings: Any) -> MethodConfig:
    """A validated method section: `method_config("freeze", train_layers=1)`. Raises
    ConfigError naming `method.<key>` (a setting of another method included)."""
    from pydantic import ValidationError

    try:
        return _ADAPTER.validate_python({**settings, "name": name})
    except ValidationError as exc:
        raise format_validation_error(exc, "method") from None


def switch_method(method: MethodConfig, name: str) -> MethodConfig:
    """`method` as method `name`: the settings given explicitly that `name` has too are kept
    (r from lora to dora, merge and target_modules from lora to ia3), the others dropped.
    Validated: ConfigError if a kept setting does not fit (merge: true for prefix)."""
    if name not in METHOD_CLASSES:
        raise ValueError(f"unknown method {name!r}; one of {', '.join(METHODS)}")
    keys = METHOD_CLASSES[name].model_fields
    kept = {k: getattr(method, k) for k in method.model_fields_set if k in keys and k != "name"}
    return method_config(name, **kept)
