"""Run configuration: pydantic schemas, YAML loading and `key.sub=value` overrides."""

from tunelab.config.keys import ConfigKey, config_keys, format_keys
from tunelab.config.load import load_config, parse_overrides
from tunelab.config.method import (
    AdapterMethod,
    DoraMethod,
    FreezeMethod,
    FullMethod,
    Ia3Method,
    LoraMethod,
    MethodConfig,
    PrefixMethod,
    PromptMethod,
    QloraMethod,
    method_config,
    switch_method,
)
from tunelab.config.procedure import MultitaskEntry, TaskDataConfig
from tunelab.config.schema import DataConfig, EvalConfig, RunConfig, TrainConfig
from tunelab.config.update import updated

__all__ = [
    "AdapterMethod",
    "ConfigKey",
    "DataConfig",
    "DoraMethod",
    "EvalConfig",
    "FreezeMethod",
    "FullMethod",
    "Ia3Method",
    "LoraMethod",
    "MethodConfig",
    "MultitaskEntry",
    "PrefixMethod",
    "PromptMethod",
    "QloraMethod",
    "RunConfig",
    "TaskDataConfig",
    "TrainConfig",
    "config_keys",
    "format_keys",
    "load_config",
    "method_config",
    "parse_overrides",
    "switch_method",
    "updated",
]
