"""Which variables are exempt from weight decay and from LARS adaptation: found by layer type,
or declared by the layers that own them; never by name."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import keras

# Layers whose scale (gamma) and offset (beta) are exempt. SimCLR exempts batch norm; the other
# normalization layers get the same treatment because their gamma/beta play the same role.
_NORMALIZATION_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)
# Layers whose `bias` is exempt.
_BIAS_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


@runtime_checkable
class DeclaresUnadaptedVariables(Protocol):
    """A layer naming variables of its own that LARS must not adapt (trust ratio 1)."""

    def layer_adaptation_exempt_variables(self) -> list[keras.Variable]: ...


def decay_exempt_variables(model: keras.layers.Layer) -> list[keras.Variable]:
    """The gamma/beta of normalization layers and the biases of Dense/Conv layers in `model`.

    Walks every layer reachable from `model` (nested models and custom layers included) and
    selects variables by layer type, never by name. Moving statistics are not included (they
    are non-trainable). Kernels are never included. The model must be built.
    """
    exempt: list[keras.Variable] = []
    # `_flatten_layers` is Keras's own recursive, de-duplicated walk (Layer.layers is one level).
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if not isinstance(layer, _NORMALIZATION_LAYERS + _BIAS_LAYERS):
            continue
        if not layer.built:
            raise ValueError(
                f"Layer {layer.name!r} is not built; build the model before listing its "
                "decay-exempt variables."
            )
        if isinstance(layer, _NORMALIZATION_LAYERS):
            candidates = (layer.gamma, layer.beta)
        else:
            candidates = (layer.bias,)
        exempt.extend(v for v in candidates if v is not None)
    return exempt


def adaptation_exempt_variables(model: keras.layers.Layer) -> list[keras.Variable]:
    """`decay_exempt_variables(model)` plus what the layers of `model` declare through
    `layer_adaptation_exempt_variables()` (e.g. `ContrastiveModel`'s online probes).

    SimCLR's LARS exempts its supervised head from decay and trust ratio, but SimCLR adds the
    head kernel's L2 to the loss (`add_weight_decay`): for an unadapted variable that is the
    same step as LARS's coupled decay. So declared variables are exempt from adaptation only;
    their decay is `decay_exempt_variables`'s (kernels decayed, biases not). De-duplicated by
    identity. The model must be built.
    """
    exempt = {id(v): v for v in decay_exempt_variables(model)}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, DeclaresUnadaptedVariables):
            exempt.update((id(v), v) for v in layer.layer_adaptation_exempt_variables())
    return list(exempt.values())
