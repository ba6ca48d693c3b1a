"""ResNet encoders (post-activation, as SimCLR's tf2/resnet.py) as functional Keras models.

- ResNet-18/34: basic blocks [conv3x3(stride) BN ReLU, conv3x3 BN(gamma=0)] + shortcut, ReLU.
- ResNet-50: bottleneck blocks [conv1x1 BN ReLU, conv3x3(stride) BN ReLU,
  conv1x1(4x) BN(gamma=0)] + shortcut, ReLU.
- The first block of every block group has a projection shortcut (conv1x1(stride) + BN), as
  in SimCLR; block group k (k >= 2) halves the spatial size.
- Stems: CIFAR = conv3x3 stride 1 + BN ReLU (no max-pool); ImageNet = conv7x7 stride 2 +
  BN ReLU + 3x3 stride-2 max-pool.
- Strided convolutions pad explicitly with (k - 1) // 2 before and the rest after, then
  convolve 'valid' (SimCLR's fixed padding); stride-1 convolutions use 'same'.
- Output: the global average of the last block group (the representation), dims
  512w (18/34), 2048w (50), 64w (resnet_small).

Each block group ends in a `FeatureTap` layer named "block_group1".. (see `taps.py` for
shapes). Convolutions have no bias and use SimCLR's VarianceScaling() initializer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from cl_properties.models.blocks import (
    SIMCLR_BN_EPSILON,
    SIMCLR_BN_MOMENTUM,
    batch_norm,
    check_bn_args,
    check_image_shape,
    check_width_multiplier,
    scaled_width,
)
from cl_properties.models.taps import FeatureTap


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """Architecture of a ResNet: block type, blocks and base channels per block group.

    `widths[k]` is the base (width 1) number of filters of block group k+1; a bottleneck
    block outputs 4x that. The stem has `widths[0]` filters.
    """

    block: str  # "basic" or "bottleneck"
    blocks_per_group: tuple[int, ...]
    widths: tuple[int, ...]

    def __post_init__(self):
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {self.block!r}")
        if len(self.blocks_per_group) != len(self.widths) or not self.widths:
            raise ValueError(
                f"blocks_per_group {self.blocks_per_group} and widths {self.widths} must be "
                "non-empty and of the same length"
            )
        if min(self.blocks_per_group) < 1 or min(self.widths) < 1:
            raise ValueError("blocks_per_group and widths must be positive")

    @property
    def expansion(self) -> int:
        """Output channels of a block per base filter (4 for bottleneck blocks)."""
        return 4 if self.block == "bottleneck" else 1


RESNET_SPECS: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2), (64, 128, 256, 512)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3), (64, 128, 256, 512)),
    "resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3), (64, 128, 256, 512)),
    # CPU-scale encoder for local-feature experiments: 3 block groups of one basic block.
    "resnet_small": ResNetSpec("basic", (1, 1, 1), (16, 32, 64)),
}


def min_input_size(spec: ResNetSpec, cifar_stem: bool) -> int:
    """Smallest height/width accepted: the total downsampling factor of the network.

    CIFAR stem: 2^(groups - 1); ImageNet stem: 4 * 2^(groups - 1) (32 for four groups).
    """
    return (1 if cifar_stem else 4) * 2 ** (len(spec.widths) - 1)


class _Builder:
    """Creates the named layers of one ResNet (holds the BN settings)."""

    def __init__(self, sync_bn: bool, bn_momentum: float, bn_epsilon: float):
        self.sync_bn = sync_bn
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon

    def conv(self, x, filters: int, kernel_size: int, strides: int, name: str):
        if strides > 1:
            pad_total = kernel_size - 1
            pad = (pad_total // 2, pad_total - pad_total // 2)
            x = keras.layers.ZeroPadding2D(padding=(pad, pad), name=f"{name}_pad")(x)
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same" if strides == 1 else "valid",
            use_bias=False,
            kernel_initializer=keras.initializers.VarianceScaling(),
            name=name,
        )(x)

    def bn(self, x, name: str, relu: bool = True, zero_gamma: bool = False):
        x = batch_norm(
            name=name,
            sync=self.sync_bn,
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            zero_gamma=zero_gamma,
        )(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x

    def block(self, x, block: str, filters: int, strides: int, projection: bool, name: str):
        out_filters = filters * (4 if block == "bottleneck" else 1)
        shortcut = x
        if projection:
            shortcut = self.conv(x, out_filters, 1, strides, f"{name}_proj_conv")
            shortcut = self.bn(shortcut, f"{name}_proj_bn", relu=False)
        if block == "basic":
            y = self.conv(x, filters, 3, strides, f"{name}_conv1")
            y = self.bn(y, f"{name}_bn1")
            y = self.conv(y, filters, 3, 1, f"{name}_conv2")
            y = self.bn(y, f"{name}_bn2", relu=False, zero_gamma=True)
        else:
            y = self.conv(x, filters, 1, 1, f"{name}_conv1")
            y = self.bn(y, f"{name}_bn1")
            y = self.conv(y, filters, 3, strides, f"{name}_conv2")
            y = self.bn(y, f"{name}_bn2")
            y = self.conv(y, out_filters, 1, 1, f"{name}_conv3")
            y = self.bn(y, f"{name}_bn3", relu=False, zero_gamma=True)
        y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
        return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet(
    spec: str | ResNetSpec,
    *,
    input_shape: Sequence[int],
    width_multiplier: float = 1,
    cifar_stem: bool = True,
    sync_bn: bool = False,
    bn_momentum: float = SIMCLR_BN_MOMENTUM,
    bn_epsilon: float = SIMCLR_BN_EPSILON,
    name: str | None = None,
) -> keras.Model:
    """Build a ResNet encoder: image (H, W, C) -> pooled representation (D,).

    `spec` is a `ResNetSpec` or a name in `RESNET_SPECS` ("resnet18", "resnet34",
    "resnet50", "resnet_small"). Channels are round(base * width_multiplier); D =
    widths[-1] * expansion * width_multiplier. `sync_bn=True` uses synchronized BN (batch
    statistics all-reduced across replicas). Block-group outputs are `FeatureTap` layers
    "block_group1".. (see `cl_properties.models.taps`).

    Raises ValueError for an unknown name, width_multiplier <= 0, bad BN arguments, or an
    input smaller than the network's downsampling factor (`min_input_size`).
    """
    if isinstance(spec, str):
        if spec not in RESNET_SPECS:
            raise ValueError(f"unknown ResNet {spec!r}; known: {sorted(RESNET_SPECS)}")
        name = name or spec
        spec = RESNET_SPECS[spec]
    check_width_multiplier(width_multiplier)
    check_bn_args(bn_momentum, bn_epsilon)
    stem = "CIFAR stem" if cifar_stem else "ImageNet stem"
    shape = check_image_shape(
        input_shape, min_size=min_input_size(spec, cifar_stem), what=f"a ResNet with the {stem}"
    )
    b = _Builder(sync_bn, bn_momentum, bn_epsilon)

    inputs = keras.Input(shape=shape, name="image")
    stem_width = scaled_width(spec.widths[0], width_multiplier)
    if cifar_stem:
        x = b.conv(inputs, stem_width, 3, 1, "stem_conv")
        x = b.bn(x, "stem_bn")
    else:
        x = b.conv(inputs, stem_width, 7, 2, "stem_conv")
        x = b.bn(x, "stem_bn")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for g, (blocks, base) in enumerate(zip(spec.blocks_per_group, spec.widths), start=1):
        filters = scaled_width(base, width_multiplier)
        for i in range(1, blocks + 1):
            x = b.block(
                x,
                spec.block,
                filters,
                strides=(1 if g == 1 or i > 1 else 2),
                projection=(i == 1),
                name=f"block_group{g}_block{i}",
            )
        x = FeatureTap(name=f"block_group{g}")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name=name or "resnet")
