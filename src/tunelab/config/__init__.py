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
from tunelab.config.model_meta import ModelMeta, read_model_meta, write_model_meta
from tunelab.config.procedure import MultitaskEntry, TaskDataConfig
from tunelab.config.run_result import (
    RunInfo,
    RunResult,
    Timing,
    read_run_result,
    write_run_result,
)
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
    "ModelMeta",
    "MultitaskEntry",
    "PrefixMethod",
    "PromptMethod",
    "QloraMethod",
    "RunConfig",
    "RunInfo",
    "RunResult",
    "TaskDataConfig",
    "Timing",
    "TrainConfig",
    "config_keys",
    "format_keys",
    "load_config",
    "method_config",
    "parse_overrides",
    "read_model_meta",
    "read_run_result",
    "switch_method",
    "updated",
    "write_model_meta",
    "write_run_result",
]
