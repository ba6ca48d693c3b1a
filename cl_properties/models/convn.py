"""ConvN: the small encoder of the official RandBit MNIST colab, as a functional Keras model.

    3 x [Conv2D(32w | 64w | 64w, 3x3, stride 2, no bias) -> BN -> ReLU]  (stages 1-3)
    -> Flatten -> Dense(128w, no bias) -> BN -> ReLU                       (representation)

Any number of input channels (RandBit appends one constant plane per bit: 1 + bits for
MNIST, 3 + bits for RGB). Each stage ends in a `FeatureTap` named "stage1".."stage3".
Kernel initializers and BN momentum/epsilon default to the colab's (Keras defaults:
glorot_uniform, momentum 0.99, epsilon 1e-3). The colab adds an L2 penalty of 1e-4 on the
kernels; here weight decay is the optimizer's business.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from cl_properties.models.blocks import (
    batch_norm,
    check_bn_args,
    check_image_shape,
    check_width_multiplier,
    scaled_width,
)
from cl_properties.models.taps import FeatureTap

CONVN_FILTERS = (32, 64, 64)
CONVN_UNITS = 128
# The colab keeps Keras's 0.99, but its moving variance then still remembers the initial
# 1.0 after a few hundred steps (0.99**300 = 0.05): inference-mode features are off and
# probes evaluated on them fall to chance. SimCLR's 0.9 forgets within ~50 steps.
CONVN_BN_MOMENTUM = 0.9
CONVN_BN_EPSILON = 1e-3


def convn_min_input_size(padding: str) -> int:
    """Smallest height/width: 8 with 'same' padding (3 halvings), 15 with 'valid'.

    With 'valid', a 3x3 stride-2 conv maps n to floor((n - 3) / 2) + 1, so 15 -> 7 -> 3 -> 1.
    """
    if padding == "same":
        return 2 ** len(CONVN_FILTERS)
    size = 1
    for _ in CONVN_FILTERS:
        size = 2 * size + 1
    return size


def convn(
    *,
    input_shape: Sequence[int],
    width_multiplier: float = 1,
    padding: str = "same",
    sync_bn: bool = False,
    bn_momentum: float = CONVN_BN_MOMENTUM,
    bn_epsilon: float = CONVN_BN_EPSILON,
    name: str = "convn",
) -> keras.Model:
    """Build ConvN: image (H, W, C) -> representation (round(128 * width_multiplier),).

    Channels and dense units scale with `width_multiplier`. `padding` is the convolutions'
    padding: 'same' (default) or 'valid' (the colab's Keras default; 28x28 -> 13, 6, 2).
    Raises ValueError for width_multiplier <= 0, an unknown padding, bad BN arguments, or an
    input smaller than `convn_min_input_size(padding)`.
    """
    check_width_multiplier(width_multiplier)
    check_bn_args(bn_momentum, bn_epsilon)
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    shape = check_image_shape(
        input_shape, min_size=convn_min_input_size(padding), what=f"ConvN ({padding} padding)"
    )

    def bn(n: str):
        return batch_norm(name=n, sync=sync_bn, momentum=bn_momentum, epsilon=bn_epsilon)

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for s, base in enumerate(CONVN_FILTERS, start=1):
        x = keras.layers.Conv2D(
            scaled_width(base, width_multiplier),
            3,
            strides=2,
            padding=padding,
            use_bias=False,
            name=f"stage{s}_conv",
        )(x)
        x = bn(f"stage{s}_bn")(x)
        x = keras.layers.ReLU(name=f"stage{s}_relu")(x)
        x = FeatureTap(name=f"stage{s}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        scaled_width(CONVN_UNITS, width_multiplier), use_bias=False, name="dense"
    )(x)
    x = bn("dense_bn")(x)
    outputs = keras.layers.ReLU(name="dense_relu")(x)
    return keras.Model(inputs, outputs, name=name)
