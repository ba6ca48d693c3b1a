"""What every loss of the family shares: the result type, input checks, seeds, normalization."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Union

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# An int, a pair of ints, or an int tensor of shape [2] (e.g. tf.stack([seed, step])).
Seed = Union[int, Sequence[int], tf.Tensor]


class LossTerms(NamedTuple):
    """A loss of the family and its two parts, with `loss == alignment + lambda * distribution`
    (for NT-Xent up to rounding: see `nt_xent_terms`), and any further named terms `extras`
    that a loss adds to its objective (e.g. a remedy's term), all included in `loss`.

    Float32 scalars (float64 when both inputs are float64). For NT-Xent the parts are the
    decomposition terms, with lambda = 1 (see `nt_xent_terms`).
    """

    loss: tf.Tensor
    alignment: tf.Tensor
    distribution: tf.Tensor
    extras: Mapping[str, tf.Tensor] = types.MappingProxyType({})

    def scaled(self, factor: float) -> LossTerms:
        """Every term multiplied by `factor`."""
        return LossTerms(
            factor * self.loss,
            factor * self.alignment,
            factor * self.distribution,
            {name: factor * term for name, term in self.extras.items()},
        )


def check_temperature(temperature: float) -> float:
    """Returns `temperature` as a float; ValueError unless it is finite and > 0."""
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    return temperature


def check_nonnegative(value: float, name: str) -> float:
    """Returns `value` as a float; ValueError naming `name` unless it is finite and >= 0."""
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def check_lambda(lambda_weight: float) -> float:
    """Returns `lambda_weight` as a float; ValueError unless it is finite and >= 0."""
    return check_nonnegative(lambda_weight, "lambda_weight")


def check_scale(scale: float) -> float:
    """Returns `scale` as a float; ValueError unless it is finite and > 0."""
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    return scale


def compute_dtype(*tensors) -> str:
    """float64 when every input is float64, else float32 (bfloat16/float16 are upcast)."""
    dtypes = {keras.backend.standardize_dtype(t.dtype) for t in tensors}
    return "float64" if dtypes == {"float64"} else "float32"


def as_matrix(x, name: str):
    """`x` as a tensor; ValueError unless it has rank 2 (batch, dim)."""
    x = ops.convert_to_tensor(x)
    if len(x.shape) != 2:
        raise ValueError(f"{name} must have rank 2 (batch, dim), got shape {tuple(x.shape)}")
    return x


def same_shape(a, b, names: str) -> None:
    """ValueError when the static shapes of `a` and `b` differ in a known dimension."""
    for da, db in zip(a.shape, b.shape):
        if da is not None and db is not None and da != db:
            raise ValueError(
                f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )


def as_views(z1, z2):
    """Checks the two views (rank 2, equal shapes) and casts them to the compute dtype."""
    z1, z2 = as_matrix(z1, "z1"), as_matrix(z2, "z2")
    same_shape(z1, z2, "z1 and z2")
    dtype = compute_dtype(z1, z2)
    return ops.cast(z1, dtype), ops.cast(z2, dtype)


def l2_normalize(x, epsilon: float = 1e-12):
    """x / max(||x||, sqrt(epsilon)) along the last axis (tf.math.l2_normalize's convention)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), epsilon))


def as_seed(seed: Seed) -> tf.Tensor:
    """A stateless-RNG seed: int64 tensor of shape [2]. An int s means (s, 0)."""
    if seed is None:
        raise ValueError(
            "a seed is required (an int, a pair of ints or an int tensor of shape [2])"
        )
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (None, 2):
        raise ValueError(
            f"seed must be an int, a pair of ints or an int tensor of shape [2], got {seed!r}"
        )
    return tf.cast(seed, tf.int64)
