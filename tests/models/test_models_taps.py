"""Feature taps: names and shapes of intermediate feature maps (local features)."""

import keras
import numpy as np
import pytest

from cl_properties.models import FeatureTap, build_encoder, feature_taps, resnet, tap_names


def _taps(enc, shape, n=2):
    x = np.random.RandomState(0).rand(n, *shape).astype("float32")
    out = feature_taps(enc)(x, training=False)
    return {k: tuple(v.shape) for k, v in out.items()}


def test_resnet18_cifar_stem_taps():
    enc = build_encoder("resnet18", input_shape=(32, 32, 3), width_multiplier=0.5)
    assert tap_names(enc) == [f"block_group{g}" for g in (1, 2, 3, 4)]
    assert _taps(enc, (32, 32, 3)) == {
        "block_group1": (2, 32, 32, 32),
        "block_group2": (2, 16, 16, 64),
        "block_group3": (2, 8, 8, 128),
        "block_group4": (2, 4, 4, 256),
    }


def test_resnet18_imagenet_stem_taps():
    enc = build_encoder("resnet18", input_shape=(64, 64, 3))
    assert _taps(enc, (64, 64, 3)) == {
        "block_group1": (2, 16, 16, 64),
        "block_group2": (2, 8, 8, 128),
        "block_group3": (2, 4, 4, 256),
        "block_group4": (2, 2, 2, 512),
    }


def test_resnet50_tap_channels():
    enc = build_encoder("resnet50", input_shape=(32, 32, 3), cifar_stem=False)
    assert _taps(enc, (32, 32, 3), n=1) == {
        "block_group1": (1, 8, 8, 256),
        "block_group2": (1, 4, 4, 512),
        "block_group3": (1, 2, 2, 1024),
        "block_group4": (1, 1, 1, 2048),
    }


def test_resnet_small_taps_non_square():
    enc = build_encoder("resnet_small", input_shape=(28, 20, 1))
    assert _taps(enc, (28, 20, 1)) == {
        "block_group1": (2, 28, 20, 16),
        "block_group2": (2, 14, 10, 32),
        "block_group3": (2, 7, 5, 64),
    }


def test_convn_taps():
    enc = build_encoder("convn", input_shape=(28, 28, 6))
    assert tap_names(enc) == ["stage1", "stage2", "stage3"]
    assert _taps(enc, (28, 28, 6)) == {
        "stage1": (2, 14, 14, 32),
        "stage2": (2, 7, 7, 64),
        "stage3": (2, 4, 4, 64),
    }


def test_taps_share_weights_with_encoder():
    enc = resnet("resnet_small", input_shape=(16, 16, 3))
    taps = feature_taps(enc, names=["block_group3"])
    x = np.random.RandomState(2).rand(3, 16, 16, 3).astype("float32")
    last = keras.ops.convert_to_numpy(taps(x, training=False)["block_group3"])
    # The representation is the spatial mean of the last block group.
    np.testing.assert_allclose(last.mean(axis=(1, 2)), enc(x, training=False), rtol=1e-5, atol=1e-6)
    assert {id(w) for w in taps.weights} <= {id(w) for w in enc.weights}


def test_taps_after_reload(tmp_path):
    enc = resnet("resnet_small", input_shape=(8, 8, 3))
    enc.save(tmp_path / "e.keras")
    loaded = keras.saving.load_model(tmp_path / "e.keras")
    assert tap_names(loaded) == tap_names(enc)
    assert isinstance(loaded.get_layer("block_group1"), FeatureTap)


def test_bad_tap_names():
    enc = resnet("resnet_small", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="unknown"):
        feature_taps(enc, names=["block_group4"])
    with pytest.raises(ValueError, match="empty"):
        feature_taps(enc, names=[])
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no FeatureTap"):
        feature_taps(plain)
