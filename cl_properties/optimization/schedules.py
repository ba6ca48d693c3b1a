"""Learning-rate scaling with batch size and warmup-then-decay schedules (SimCLR conventions)."""

from __future__ import annotations

import math

import keras
from keras import ops

LR_SCALINGS = ("linear", "sqrt", "none")
DECAYS = ("cosine", "constant", "polynomial")


def scaled_learning_rate(base_lr: float, batch_size: int, scaling: str) -> float:
    """SimCLR's batch-size scaling of the learning rate.

    "linear": base_lr * batch_size / 256; "sqrt": base_lr * sqrt(batch_size);
    "none": base_lr.
    """
    if base_lr < 0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if scaling == "linear":
        return base_lr * batch_size / 256.0
    if scaling == "sqrt":
        return base_lr * math.sqrt(batch_size)
    if scaling == "none":
        return float(base_lr)
    raise ValueError(f"Unknown learning-rate scaling {scaling!r}; expected one of {LR_SCALINGS}.")


@keras.saving.register_keras_serializable(package="cl_properties")
class WarmUpAndDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak_learning_rate`, then decay over the remaining steps.

    With W = warmup_steps, T = total_steps, p = clip((step - W) / max(T - W, 1), 0, 1):

        lr(step) = peak * step / W                   for step < W
                 = peak * 0.5 * (1 + cos(pi * p))    decay="cosine" (SimCLR's WarmUpAndCosineDecay)
                 = peak * (1 - p) ** power           decay="polynomial" (Keras PolynomialDecay
                                                     with end_learning_rate=0)
                 = peak                              decay="constant"

    The optimizer evaluates the schedule at its iteration count before incrementing it, so with
    W > 0 the first update uses lr = 0, as in SimCLR.
    """

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        decay: str = "cosine",
        power: float = 1.0,
    ):
        if peak_learning_rate < 0:
            raise ValueError(f"peak_learning_rate must be >= 0, got {peak_learning_rate}.")
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}.")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}."
            )
        if decay not in DECAYS:
            raise ValueError(f"Unknown decay {decay!r}; expected one of {DECAYS}.")
        if power <= 0:
            raise ValueError(f"power must be > 0, got {power}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        warmup = float(self.warmup_steps)
        warmup_lr = peak * step / max(warmup, 1.0)
        progress = ops.clip((step - warmup) / max(self.total_steps - warmup, 1.0), 0.0, 1.0)
        if self.decay == "cosine":
            decayed = peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.decay == "polynomial":
            decayed = peak * ops.power(1.0 - progress, self.power)
        else:
            decayed = peak * ops.ones_like(progress)
        return ops.where(step < warmup, warmup_lr, decayed)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "power": self.power,
        }
