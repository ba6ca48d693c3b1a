"""LARS with the semantics of SimCLR's `tf2/lars_optimizer.py` (classic momentum)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cl_properties")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You, Gitman, Ginsburg 2017) as used by SimCLR.

    For each variable w with gradient g, learning rate lr, momentum m and velocity v:

        g' = g + weight_decay * w            (coupled L2 decay; skipped for decay-exempt w)
        t  = eta * ||w|| / ||g'||            (t = 1 if ||w|| = 0, ||g'|| = 0 or w is
                                              adaptation-exempt)
        v <- m * v + lr * t * g'
        w <- w - v                           (nesterov: w <- w - (m * v + lr * t * g'))

    Norms are Frobenius norms over the whole variable. Exemptions are by variable identity:
    `exclude_from_weight_decay(var_list=...)` (Keras's own mechanism) and
    `exclude_from_layer_adaptation(var_list=...)`; as in SimCLR, adaptation exemptions default
    to the weight-decay exemptions. Both must be set before the optimizer is built and, as in
    Keras, are not part of `get_config`. Unlike Keras's decoupled `weight_decay`
    (w -= lr * wd * w), `weight_decay` here is added to the gradient, before the trust ratio.
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.1,
        momentum: float = 0.9,
        weight_decay: float | None = None,
        eta: float = 0.001,
        nesterov: bool = False,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"LARS momentum must be in [0, 1), got {momentum}.")
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"LARS weight_decay must be >= 0, got {weight_decay}.")
        if eta <= 0:
            raise ValueError(f"LARS eta must be > 0, got {eta}.")
        self.momentum = float(momentum)
        self.eta = float(eta)
        self.nesterov = bool(nesterov)
        self._exclude_from_adaptation: set | None = None

    def exclude_from_layer_adaptation(self, var_list: Sequence[keras.Variable]) -> None:
        """Exempts `var_list` (by identity) from the trust ratio (they get t = 1).

        Replaces the default, which is the set given to `exclude_from_weight_decay`.
        """
        if self.built:
            raise ValueError(
                "exclude_from_layer_adaptation() must be called before the optimizer is built."
            )
        self._exclude_from_adaptation = {self._var_key(v) for v in var_list}

    def _do_layer_adaptation(self, variable) -> bool:
        if self._exclude_from_adaptation is None:
            return self._use_weight_decay(variable)
        return self._var_key(variable) not in self._exclude_from_adaptation

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        """Creates one zero-initialized momentum slot per variable."""
        if self.built:
            return
        super().build(var_list)
        self.momentums = [self.add_variable_from_reference(v, name="momentum") for v in var_list]

    def _apply_weight_decay(self, variables) -> None:
        # The base class would apply decoupled decay here; LARS couples it in update_step.
        return

    def update_step(self, gradient, variable, learning_rate) -> None:
        """One LARS step for one variable (see the class docstring)."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        grad = ops.cast(gradient, dtype)
        if self.weight_decay and self._use_weight_decay(variable):
            # convert_to_tensor, not cast: a Python float must not round through float32.
            weight_decay = ops.convert_to_tensor(self.weight_decay, dtype)
            grad = ops.add(grad, ops.multiply(weight_decay, variable))
        if self._do_layer_adaptation(variable):
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(grad)))
            both_positive = ops.logical_and(ops.greater(w_norm, 0), ops.greater(g_norm, 0))
            # The safe denominator keeps the unselected branch finite.
            ratio = self.eta * w_norm / ops.where(both_positive, g_norm, ops.ones_like(g_norm))
            lr = lr * ops.where(both_positive, ratio, ops.ones_like(ratio))
        step = ops.multiply(lr, grad)
        velocity = self.momentums[self._get_variable_index(variable)]
        momentum = ops.convert_to_tensor(self.momentum, dtype)
        self.assign(velocity, ops.add(ops.multiply(velocity, momentum), step))
        if self.nesterov:
            self.assign_sub(variable, ops.add(ops.multiply(velocity, momentum), step))
        else:
            self.assign_sub(variable, velocity)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"momentum": self.momentum, "eta": self.eta, "nesterov": self.nesterov})
        return config
