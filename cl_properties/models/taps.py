"""Access to an encoder's intermediate feature maps (local features).

Encoders mark each intermediate output they expose with a `FeatureTap` layer (an identity
layer whose name is the tap's name), so the taps are found by layer type, survive
serialization, and cost nothing at run time.

Tap names and shapes (batch dimension omitted, w = width_multiplier, H x W input):

- ResNet-18/34, CIFAR stem: "block_group1".."block_group4" =
  (H, W, 64w), (H/2, W/2, 128w), (H/4, W/4, 256w), (H/8, W/8, 512w);
  for 32x32 input: 32x32, 16x16, 8x8, 4x4.
- ResNet-50: the same spatial sizes with 4x the channels (256w, 512w, 1024w, 2048w).
- ImageNet stem (7x7 stride-2 conv + 3x3 stride-2 max-pool): spatial sizes H/4, H/8, H/16,
  H/32 (224x224 input: 56, 28, 14, 7).
- resnet_small (CIFAR stem): "block_group1".."block_group3" = (H, W, 16w),
  (H/2, W/2, 32w), (H/4, W/4, 64w).
- ConvN ('same' padding): "stage1".."stage3" = (H/2, W/2, 32w), (H/4, W/4, 64w),
  (H/8, W/8, 64w) (28x28 input: 14, 7, 4); with 'valid' padding n -> floor((n - 3) / 2) + 1
  (28x28 input: 13, 6, 2).

Halvings round up (ceil), as with 'same' padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


@keras.saving.register_keras_serializable(package="cl_properties")
class FeatureTap(keras.layers.Layer):
    """Identity layer marking a named intermediate feature map of an encoder: y = x."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def tap_names(encoder: keras.Model) -> list[str]:
    """Names of the encoder's feature taps, from the input side to the output side."""
    return [layer.name for layer in encoder.layers if isinstance(layer, FeatureTap)]


def feature_taps(encoder: keras.Model, names: Sequence[str] | None = None) -> keras.Model:
    """A model mapping the encoder's input to a dict {tap name: feature map}.

    The returned model shares its layers (and weights) with `encoder`; call it with
    `training=False` to use the BN moving statistics. `names` selects taps (default: all, see
    `tap_names`); an unknown name raises ValueError.
    """
    available = tap_names(encoder)
    if not available:
        raise ValueError(f"encoder {encoder.name!r} has no FeatureTap layers")
    selected = available if names is None else list(names)
    unknown = [n for n in selected if n not in available]
    if unknown or not selected:
        raise ValueError(
            f"unknown or empty tap names {unknown or selected}; available: {available}"
        )
    outputs = {n: encoder.get_layer(n).output for n in selected}
    return keras.Model(inputs=encoder.input, outputs=outputs, name=f"{encoder.name}_taps")
