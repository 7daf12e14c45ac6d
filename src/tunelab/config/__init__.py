"""Run configuration: pydantic schemas, YAML loading and `key.sub=value` overrides."""

from tunelab.config.load import load_config, parse_overrides
from tunelab.config.schema import DataConfig, EvalConfig, MethodConfig, RunConfig, TrainConfig

__all__ = [
    "DataConfig",
    "EvalConfig",
    "MethodConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "parse_overrides",
]
