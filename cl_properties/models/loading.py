"""Loading a trained encoder from a file, and rebuilding one for another input size."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence

import h5py
import keras
import tensorflow as tf

from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.models.taps import tap_names


def with_input_shape(encoder: keras.Model, input_shape: Sequence[int]) -> keras.Model:
    """The same functional encoder (same weights) rebuilt for another input size.

    Convolutional encoders are size-agnostic: the input layer's shape is replaced in the
    encoder's config, the model is rebuilt from it and the weights are copied. The channel
    count must stay the same (see `match_channels` for grey images). Returns `encoder`
    itself when the shape already matches.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    current = tuple(encoder.input_shape[1:])
    if current == shape:
        return encoder
    if current[-1] != shape[-1]:
        raise ValueError(f"encoder takes {current[-1]} channels, not {shape[-1]}")
    config = encoder.get_config()
    inputs = [layer for layer in config.get("layers", []) if layer["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ValueError(f"encoder {encoder.name!r} is not a functional model with one input")
    inputs[0]["config"]["batch_shape"] = [None, *shape]
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(encoder.get_weights())
    return rebuilt


def load_encoder(
    path: str,
    *,
    input_shape: Sequence[int],
    build_encoder: Callable[[], keras.Model] | None = None,
) -> keras.Model:
    """An encoder with feature taps from a file saved by an earlier run.

    Supported: a `.keras` file of a `ContrastiveModel` (its encoder is taken) or of an
    encoder (a model with `FeatureTap` layers); a `.weights.h5` file of an encoder's
    weights, loaded into `build_encoder()` (which must build the same architecture). The
    encoder is rebuilt for `input_shape` (`with_input_shape`) when its spatial size
    differs; grey images are repeated to its channels at scoring time.

    Raises ValueError for a missing, corrupt or unsupported file, or a model without taps.
    """
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"checkpoint {path!r} does not exist")
    if path.endswith(".weights.h5"):
        if build_encoder is None:
            raise ValueError(f"{path!r} holds weights only: an encoder builder is needed")
        encoder = build_encoder()
        if not h5py.is_hdf5(path):
            raise ValueError(
                f"checkpoint {path!r} is not an HDF5 weights file (corrupt or of another format)"
            )
        try:
            encoder.load_weights(path)
        except ValueError as error:
            raise ValueError(
                f"{path!r} does not hold the weights of a {encoder.name!r} encoder (of a whole "
                f"ContrastiveModel? save its encoder, or the model as .keras): {error}"
            ) from error
    elif path.endswith(".keras"):
        if not zipfile.is_zipfile(path):  # Keras would report it as "File not found"
            raise ValueError(
                f"checkpoint {path!r} is not a .keras archive (corrupt or of another format)"
            )
        model = keras.saving.load_model(path)
        encoder = model.encoder if isinstance(model, ContrastiveModel) else model
    else:
        raise ValueError(
            f"unsupported checkpoint {path!r}: expected a .keras file (ContrastiveModel or "
            "encoder) or an encoder's .weights.h5 file"
        )
    if not tap_names(encoder):
        raise ValueError(f"the model in {path!r} has no feature taps (FeatureTap layers)")
    channels = encoder.input_shape[-1]
    return with_input_shape(encoder, (*tuple(input_shape)[:2], channels))
