"""ResNet encoders: output dims, stems, width multiplier, synchronized BN, serialization."""

import keras
import numpy as np
import pytest

from cl_properties.models import RESNET_SPECS, ResNetSpec, resnet


def _images(n, shape, seed=0):
    return np.random.RandomState(seed).rand(n, *shape).astype("float32")


@pytest.mark.parametrize(
    "name,cifar_stem,size,dim",
    [
        ("resnet18", True, 32, 512),
        ("resnet18", False, 64, 512),
        ("resnet34", True, 32, 512),
        ("resnet34", False, 32, 512),
        ("resnet50", True, 32, 2048),
        ("resnet_small", True, 32, 64),
        ("resnet_small", False, 16, 64),
    ],
)
def test_representation_dims(name, cifar_stem, size, dim):
    enc = resnet(name, input_shape=(size, size, 3), cifar_stem=cifar_stem)
    out = enc(_images(2, (size, size, 3)), training=True)
    assert tuple(out.shape) == (2, dim)
    assert enc.name == name
    assert np.all(np.isfinite(out))


def test_stems_differ_in_layers():
    cifar = resnet("resnet_small", input_shape=(32, 32, 3), cifar_stem=True)
    imagenet = resnet("resnet_small", input_shape=(32, 32, 3), cifar_stem=False)
    assert cifar.get_layer("stem_conv").kernel.shape == (3, 3, 3, 16)
    assert imagenet.get_layer("stem_conv").kernel.shape == (7, 7, 3, 16)
    assert imagenet.get_layer("stem_conv").strides == (2, 2)
    assert isinstance(imagenet.get_layer("stem_pool"), keras.layers.MaxPooling2D)
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in cifar.layers)


@pytest.mark.parametrize(
    "name,w,widths",
    [("resnet18", 0.5, (32, 64, 128, 256)), ("resnet_small", 3, (48, 96, 192))],
)
def test_width_multiplier_scales_channels(name, w, widths):
    enc = resnet(name, input_shape=(32, 32, 3), width_multiplier=w)
    assert enc.output_shape == (None, widths[-1])
    assert enc.get_layer("stem_conv").filters == widths[0]
    for g, width in enumerate(widths, start=1):
        assert enc.get_layer(f"block_group{g}_block1_conv2").filters == width


def test_resnet18_layout_matches_simclr():
    enc = resnet("resnet18", input_shape=(32, 32, 3))
    convs = [layer for layer in enc.layers if isinstance(layer, keras.layers.Conv2D)]
    # stem + 8 blocks x 2 convs + 4 projection shortcuts
    assert len(convs) == 1 + 16 + 4
    assert all(not c.use_bias for c in convs)
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == len(convs)
    assert all(b.momentum == 0.9 and b.epsilon == 1e-5 and not b.synchronized for b in bns)
    # The last BN of every residual branch starts at gamma = 0 (SimCLR init_zero).
    zero = [b.name for b in bns if np.all(keras.ops.convert_to_numpy(b.gamma) == 0)]
    expected = [f"block_group{g}_block{i}_bn2" for g in range(1, 5) for i in (1, 2)]
    assert sorted(zero) == sorted(expected)


def test_zero_gamma_blocks_start_as_identity_plus_shortcut():
    # With gamma = 0 at init, the second block of a group computes relu(x + 0) = x for x >= 0.
    enc = resnet(ResNetSpec("basic", (2,), (4,)), input_shape=(8, 8, 3))
    sub = keras.Model(
        enc.input,
        [
            enc.get_layer("block_group1_block1_out").output,
            enc.get_layer("block_group1_block2_out").output,
        ],
    )
    a, b = sub(_images(2, (8, 8, 3)), training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_resnet50_bottleneck_layout():
    spec = RESNET_SPECS["resnet50"]
    assert spec.block == "bottleneck" and spec.expansion == 4
    enc = resnet("resnet50", input_shape=(32, 32, 3))
    assert enc.get_layer("block_group1_block1_conv3").filters == 256
    assert enc.get_layer("block_group1_block1_conv1").kernel.shape == (1, 1, 64, 64)
    assert enc.get_layer("block_group2_block1_conv2").strides == (2, 2)


def test_sync_bn_uses_synchronized_layers():
    enc = resnet(
        "resnet_small", input_shape=(16, 16, 3), sync_bn=True, bn_momentum=0.8, bn_epsilon=1e-4
    )
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(b.synchronized for b in bns)
    assert all(b.momentum == 0.8 and b.epsilon == 1e-4 for b in bns)


def test_serialization_round_trip(tmp_path):
    enc = resnet("resnet_small", input_shape=(16, 16, 3), sync_bn=True)
    x = _images(2, (16, 16, 3))
    clone = keras.Model.from_config(enc.get_config())
    clone.set_weights(enc.get_weights())
    reference = enc(x, training=False)
    np.testing.assert_allclose(clone(x, training=False), reference, rtol=1e-6, atol=1e-6)
    path = tmp_path / "enc.keras"
    enc.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), reference, rtol=1e-6, atol=1e-6)
    bns = [layer for layer in loaded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(b.synchronized for b in bns)


def test_deterministic_given_seed():
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        weights.append(resnet("resnet_small", input_shape=(16, 16, 3)).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    # Layers of the same shape must not share an initial kernel.
    enc = resnet(ResNetSpec("basic", (2,), (8,)), input_shape=(8, 8, 3))
    k1 = keras.ops.convert_to_numpy(enc.get_layer("block_group1_block1_conv2").kernel)
    k2 = keras.ops.convert_to_numpy(enc.get_layer("block_group1_block2_conv2").kernel)
    assert not np.array_equal(k1, k2)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(spec="resnet101", input_shape=(32, 32, 3)), "unknown ResNet"),
        (dict(spec="resnet18", input_shape=(32, 32, 3), width_multiplier=0), "width_multiplier"),
        (dict(spec="resnet18", input_shape=(32, 32, 3), width_multiplier=-1.5), "width_multiplier"),
        (dict(spec="resnet18", input_shape=(7, 32, 3), cifar_stem=True), "too small.*>= 8"),
        (dict(spec="resnet18", input_shape=(31, 31, 3), cifar_stem=False), "too small.*>= 32"),
        (dict(spec="resnet_small", input_shape=(3, 3, 3)), "too small.*>= 4"),
        (dict(spec="resnet18", input_shape=(32, 32)), "input_shape"),
        (dict(spec="resnet18", input_shape=(32, 32, 0)), "input_shape"),
        (dict(spec="resnet18", input_shape=(32, 32, 3), bn_momentum=1.0), "bn_momentum"),
    ],
)
def test_bad_arguments(kwargs, match):
    spec = kwargs.pop("spec")
    with pytest.raises(ValueError, match=match):
        resnet(spec, **kwargs)


def test_bad_spec():
    with pytest.raises(ValueError, match="block"):
        ResNetSpec("dense", (1,), (8,))
    with pytest.raises(ValueError, match="same length"):
        ResNetSpec("basic", (1, 1), (8,))
