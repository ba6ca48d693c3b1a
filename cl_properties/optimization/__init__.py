"""Optimization: LARS, warmup/decay schedules, weight-decay exemptions and a config factory."""

from cl_properties.optimization.exemptions import (
    DeclaresUnadaptedVariables,
    adaptation_exempt_variables,
    decay_exempt_variables,
)
from cl_properties.optimization.factory import OptimizerConfig, build_optimizer
from cl_properties.optimization.lars import LARS
from cl_properties.optimization.schedules import WarmUpAndDecay, scaled_learning_rate

__all__ = [
    "DeclaresUnadaptedVariables",
    "LARS",
    "OptimizerConfig",
    "WarmUpAndDecay",
    "adaptation_exempt_variables",
    "build_optimizer",
    "decay_exempt_variables",
    "scaled_learning_rate",
]
