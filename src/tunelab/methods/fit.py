"""Which methods fit a model: a method the model cannot take is refused before any weights
load, in one line that names the model family, the task and the methods that do fit.

A method module may expose `refusal(cfg, task, model_config) -> str | None`: why `cfg.name`
cannot adapt this model for `task` here (None: it can). `model_config` is the model's
transformers config (config.json only, no weights); it is None for the early check that
needs only the task and the machine (qlora without a GPU refuses before data is read).
"""

from __future__ import annotations

from tunelab.config.method import MethodConfig, method_config, switch_method
from tunelab.errors import ConfigError


def refusal(cfg: MethodConfig, task: str, model_config=None) -> str | None:
    from tunelab.methods import get_method

    says = getattr(get_method(cfg.name), "refusal", None)
    return says(cfg, task, model_config) if says else None


def fitting_methods(task: str, model_config=None, cfg: MethodConfig | None = None) -> list[str]:
    """The methods that would adapt this model for `task` on this machine."""
    from tunelab.methods import MODULES

    base = cfg or method_config()
    fits = []
    for name in MODULES:
        try:  # the settings both methods have are kept (a kept one may not fit: merge: true)
            other = switch_method(base, name)
        except ConfigError:
            continue
        if refusal(other, task, model_config) is None:
            fits.append(name)
    return fits


def family(model_config) -> str:
    """`bert`, `llama`, `encoder-decoder (bert -> bert)`: what a user calls the architecture."""
    kind = getattr(model_config, "model_type", None) or "unknown"
    enc, dec = getattr(model_config, "encoder", None), getattr(model_config, "decoder", None)
    if enc is not None and dec is not None:
        kind += f" ({enc.model_type} -> {dec.model_type})"
    return kind


def check(cfg: MethodConfig, task: str, model_config=None) -> None:
    """Raise ConfigError (method.name) when the method cannot adapt this model here."""
    why = refusal(cfg, task, model_config)
    if why is None:
        return
    where = f"a {family(model_config)} model for {task}" if model_config is not None else task
    fits = ", ".join(fitting_methods(task, model_config, cfg)) or "none"
    raise ConfigError(
        "method.name", f"{cfg.name!r} cannot adapt {where}: {why}; methods that fit: {fits}"
    )
