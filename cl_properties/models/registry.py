"""One factory for every encoder, by name."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from cl_properties.models.blocks import SIMCLR_BN_EPSILON, SIMCLR_BN_MOMENTUM
from cl_properties.models.convn import CONVN_BN_EPSILON, CONVN_BN_MOMENTUM, convn
from cl_properties.models.resnet import RESNET_SPECS, resnet

ENCODER_NAMES: tuple[str, ...] = (*RESNET_SPECS, "convn")

# SimCLR picks the CIFAR stem for images of at most 32x32 pixels (`cifar_stem=image_size<=32`).
CIFAR_STEM_MAX_SIZE = 32


def build_encoder(
    name: str,
    *,
    input_shape: Sequence[int],
    width_multiplier: float = 1,
    cifar_stem: bool | None = None,
    sync_bn: bool = False,
    bn_momentum: float | None = None,
    bn_epsilon: float | None = None,
) -> keras.Model:
    """Build the encoder `name` (one of `ENCODER_NAMES`): image (H, W, C) -> representation.

    Representation dims: 512w (resnet18/34), 2048w (resnet50), 64w (resnet_small), 128w
    (convn), w = width_multiplier. For ResNets, `cifar_stem=None` picks the CIFAR stem iff
    max(H, W) <= 32 (SimCLR's rule); ConvN has no stem and rejects an explicit `cifar_stem`.
    `bn_momentum`/`bn_epsilon` default to SimCLR's (0.9, 1e-5) for ResNets and to the RandBit
    colab's (0.99, 1e-3) for ConvN. Intermediate feature maps: `cl_properties.models.taps`.

    Raises ValueError for an unknown name or any argument the encoder rejects.
    """
    if name == "convn":
        if cifar_stem is not None:
            raise ValueError("cifar_stem applies to ResNet encoders only, not 'convn'")
        return convn(
            input_shape=input_shape,
            width_multiplier=width_multiplier,
            sync_bn=sync_bn,
            bn_momentum=CONVN_BN_MOMENTUM if bn_momentum is None else bn_momentum,
            bn_epsilon=CONVN_BN_EPSILON if bn_epsilon is None else bn_epsilon,
        )
    if name not in RESNET_SPECS:
        raise ValueError(f"unknown encoder {name!r}; known: {list(ENCODER_NAMES)}")
    if cifar_stem is None:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
        cifar_stem = max(shape[:2]) <= CIFAR_STEM_MAX_SIZE
    return resnet(
        name,
        input_shape=input_shape,
        width_multiplier=width_multiplier,
        cifar_stem=cifar_stem,
        sync_bn=sync_bn,
        bn_momentum=SIMCLR_BN_MOMENTUM if bn_momentum is None else bn_momentum,
        bn_epsilon=SIMCLR_BN_EPSILON if bn_epsilon is None else bn_epsilon,
    )
