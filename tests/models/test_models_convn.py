"""ConvN, the RandBit colab's encoder."""

import keras
import numpy as np
import pytest

from cl_properties.models import convn, feature_taps


@pytest.mark.parametrize("shape", [(28, 28, 1 + 20), (32, 32, 3 + 5), (28, 28, 1)])
def test_accepts_any_number_of_channels(shape):
    enc = convn(input_shape=shape)
    out = enc(np.random.RandomState(0).rand(2, *shape).astype("float32"), training=True)
    assert tuple(out.shape) == (2, 128)
    assert enc.get_layer("stage1_conv").kernel.shape == (3, 3, shape[-1], 32)


def test_layout_and_width_multiplier():
    enc = convn(input_shape=(28, 28, 1), width_multiplier=2)
    assert enc.output_shape == (None, 256)
    assert [enc.get_layer(f"stage{s}_conv").filters for s in (1, 2, 3)] == [64, 128, 128]
    convs = [layer for layer in enc.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.strides == (2, 2) and c.kernel_size == (3, 3) and not c.use_bias for c in convs)
    dense = enc.get_layer("dense")
    assert not dense.use_bias and dense.kernel.shape == (4 * 4 * 128, 256)
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 4 and all(b.momentum == 0.9 and b.epsilon == 1e-3 for b in bns)
    # ReLU output: the representation is non-negative.
    out = enc(np.random.RandomState(1).rand(3, 28, 28, 1).astype("float32"), training=True)
    assert np.all(keras.ops.convert_to_numpy(out) >= 0)


def test_valid_padding_matches_colab_shapes():
    enc = convn(input_shape=(28, 28, 11), padding="valid")
    taps = feature_taps(enc)(np.zeros((1, 28, 28, 11), "float32"))
    assert [tuple(taps[f"stage{s}"].shape[1:3]) for s in (1, 2, 3)] == [(13, 13), (6, 6), (2, 2)]
    assert enc.get_layer("dense").kernel.shape == (2 * 2 * 64, 128)


def test_sync_bn():
    enc = convn(input_shape=(16, 16, 2), sync_bn=True)
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(b.synchronized for b in bns)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(input_shape=(7, 28, 1)), "too small.*>= 8"),
        (dict(input_shape=(14, 14, 1), padding="valid"), "too small.*>= 15"),
        (dict(input_shape=(28, 28, 1), padding="causal"), "padding"),
        (dict(input_shape=(28, 28, 1), width_multiplier=0), "width_multiplier"),
        (dict(input_shape=(28, 28, 1), bn_epsilon=0.0), "bn_epsilon"),
        (dict(input_shape=(28, 28)), "input_shape"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        convn(**kwargs)


def test_smallest_valid_input_builds():
    enc = convn(input_shape=(15, 15, 1), padding="valid")
    assert enc(np.zeros((2, 15, 15, 1), "float32")).shape == (2, 128)
