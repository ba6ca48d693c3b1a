"""Builds an optimizer (LARS, Adam or momentum SGD) with its schedule from a frozen config."""

from __future__ import annotations

import dataclasses

import keras

from cl_properties.optimization.exemptions import (
    adaptation_exempt_variables,
    decay_exempt_variables,
)
from cl_properties.optimization.lars import LARS
from cl_properties.optimization.schedules import (
    DECAYS,
    LR_SCALINGS,
    WarmUpAndDecay,
    scaled_learning_rate,
)

OPTIMIZERS = ("lars", "adam", "sgd")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer hyperparameters; defaults are SimCLR's (LARS, lr 0.3 linear-scaled, wd 1e-6).

    learning_rate is the base rate before `lr_scaling` (see `scaled_learning_rate`).
    Warmup: give `warmup_steps` or `warmup_fraction` (of total steps), or neither (no warmup).
    weight_decay: LARS adds it to the gradient (coupled L2, before the trust ratio); Adam/SGD
    use Keras's decoupled decay, w -= lr * weight_decay * w, applied before the gradient step.
    momentum and nesterov apply to LARS and SGD; eta to LARS; power to the polynomial schedule.
    """

    name: str = "lars"
    learning_rate: float = 0.3
    lr_scaling: str = "linear"
    schedule: str = "cosine"
    warmup_steps: int | None = None
    warmup_fraction: float | None = None
    weight_decay: float = 1e-6
    momentum: float = 0.9
    nesterov: bool = False
    eta: float = 0.001
    power: float = 1.0

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.name!r}; expected one of {OPTIMIZERS}.")
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(
                f"Unknown lr_scaling {self.lr_scaling!r}; expected one of {LR_SCALINGS}."
            )
        if self.schedule not in DECAYS:
            raise ValueError(f"Unknown schedule {self.schedule!r}; expected one of {DECAYS}.")
        if self.learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}.")
        if self.eta <= 0:
            raise ValueError(f"eta must be > 0, got {self.eta}.")
        if self.power <= 0:
            raise ValueError(f"power must be > 0, got {self.power}.")
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError("Give warmup_steps or warmup_fraction, not both.")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.warmup_fraction is not None and not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}.")

    def resolved_warmup_steps(self, total_steps: int) -> int:
        """warmup_steps, or round(warmup_fraction * total_steps), or 0; must be <= total_steps."""
        if self.warmup_steps is not None:
            warmup = self.warmup_steps
        elif self.warmup_fraction is not None:
            warmup = int(round(self.warmup_fraction * total_steps))
        else:
            warmup = 0
        if warmup > total_steps:
            raise ValueError(f"warmup_steps={warmup} exceeds total_steps={total_steps}.")
        return warmup


def build_optimizer(
    config: OptimizerConfig,
    *,
    batch_size: int,
    total_steps: int,
    model: keras.layers.Layer | None = None,
) -> keras.optimizers.Optimizer:
    """The optimizer described by `config`, on a `WarmUpAndDecay` schedule.

    Peak lr = scaled_learning_rate(config.learning_rate, batch_size, config.lr_scaling).
    If `model` (built) is given, `decay_exempt_variables(model)` (normalization gamma/beta,
    biases) are exempt from weight decay and, for LARS, `adaptation_exempt_variables(model)`
    (those, plus what the model declares, e.g. its online probes) from the trust ratio; without
    a model every variable is decayed and adapted. Create it under the strategy scope when
    distributing.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    schedule = WarmUpAndDecay(
        scaled_learning_rate(config.learning_rate, batch_size, config.lr_scaling),
        total_steps=total_steps,
        warmup_steps=config.resolved_warmup_steps(total_steps),
        decay=config.schedule,
        power=config.power,
    )
    weight_decay = config.weight_decay or None
    if config.name == "lars":
        optimizer = LARS(
            schedule,
            momentum=config.momentum,
            weight_decay=weight_decay,
            eta=config.eta,
            nesterov=config.nesterov,
        )
    elif config.name == "adam":
        optimizer = keras.optimizers.Adam(schedule, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.SGD(
            schedule,
            momentum=float(config.momentum),
            nesterov=config.nesterov,
            weight_decay=weight_decay,
        )
    if model is not None:
        optimizer.exclude_from_weight_decay(var_list=decay_exempt_variables(model))
        if isinstance(optimizer, LARS):
            optimizer.exclude_from_layer_adaptation(adaptation_exempt_variables(model))
    return optimizer
