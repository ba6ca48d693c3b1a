"""Building blocks shared by the encoders and the projection head.

Every normalization is a standard `keras.layers.BatchNormalization` and every weight layer a
standard `keras.layers.Conv2D` / `keras.layers.Dense`, so that optimizer code can find BN
parameters and biases by layer type. Random initializers are created fresh for each layer:
an unseeded Keras initializer draws its seed once, at construction, so one instance shared by
two layers of the same shape would give them identical weights. Runs are made deterministic
with `keras.utils.set_random_seed(seed)` before building.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

# SimCLR (tf2/resnet.py): batch_norm_decay 0.9, BATCH_NORM_EPSILON 1e-5.
SIMCLR_BN_MOMENTUM = 0.9
SIMCLR_BN_EPSILON = 1e-5


def batch_norm(
    *,
    name: str,
    sync: bool,
    momentum: float,
    epsilon: float,
    center: bool = True,
    zero_gamma: bool = False,
) -> keras.layers.BatchNormalization:
    """A channels-last BatchNormalization layer.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta; the moving statistics follow
    m <- momentum * m + (1 - momentum) * batch_stat. With `sync=True` the batch statistics are
    all-reduced over the replicas of a tf.distribute strategy (global BN, as SimCLR's
    `global_bn`). `zero_gamma` starts gamma at 0 (SimCLR's `init_zero` for the last BN of a
    residual branch, so every block starts as the identity).
    """
    return keras.layers.BatchNormalization(
        axis=-1,
        momentum=momentum,
        epsilon=epsilon,
        center=center,
        gamma_initializer="zeros" if zero_gamma else "ones",
        synchronized=sync,
        name=name,
    )


def scaled_width(base: int, width_multiplier: float) -> int:
    """Channels of a layer: round(base * width_multiplier), at least 1."""
    return max(1, int(round(base * width_multiplier)))


def check_width_multiplier(width_multiplier: float) -> None:
    """Raise ValueError unless width_multiplier is a positive number."""
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)):
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")


def check_bn_args(bn_momentum: float, bn_epsilon: float) -> None:
    """Raise ValueError unless 0 <= bn_momentum < 1 and bn_epsilon > 0."""
    if not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
    if not bn_epsilon > 0.0:
        raise ValueError(f"bn_epsilon must be > 0, got {bn_epsilon}")


def check_image_shape(
    input_shape: Sequence[int], *, min_size: int, what: str
) -> tuple[int, int, int]:
    """Validate an image shape (height, width, channels) and return it as a tuple.

    Raises ValueError if it is not three positive integers or if height or width is below
    `min_size` (the smallest input `what` accepts).
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(
            f"input_shape must be (height, width, channels) of positive ints, got {input_shape!r}"
        )
    height, width, _ = shape
    if height < min_size or width < min_size:
        raise ValueError(
            f"input_shape {shape} is too small for {what}: height and width must be >= {min_size}"
        )
    return shape
