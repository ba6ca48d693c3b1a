"""Loading trained encoders from files and rebuilding them for another input size."""

import keras
import numpy as np
import pytest

from cl_properties.losses import ContrastiveLoss
from cl_properties.models import (
    ContrastiveModel,
    ProjectionHead,
    build_encoder,
    load_encoder,
    with_input_shape,
)


def _images(n: int, size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


def test_with_input_shape_keeps_the_weights():
    encoder = build_encoder("resnet_small", input_shape=(16, 16, 3))
    bigger = with_input_shape(encoder, (24, 24, 3))
    assert bigger.input_shape == (None, 24, 24, 3)
    x = _images(2, 24, 3)
    np.testing.assert_allclose(bigger(x), build_like(encoder, bigger)(x), rtol=1e-5, atol=1e-6)
    back = with_input_shape(bigger, (16, 16, 3))
    x = _images(2, 16, 3)
    np.testing.assert_allclose(back(x), encoder(x), rtol=1e-5, atol=1e-6)
    assert with_input_shape(encoder, (16, 16, 3)) is encoder
    with pytest.raises(ValueError, match="channels"):
        with_input_shape(encoder, (16, 16, 1))


def build_like(encoder: keras.Model, sized: keras.Model) -> keras.Model:
    """A fresh encoder of `sized`'s input shape with `encoder`'s weights, built directly."""
    fresh = build_encoder("resnet_small", input_shape=sized.input_shape[1:])
    fresh.set_weights(encoder.get_weights())
    return fresh


def test_load_encoder_from_supported_files(tmp_path):
    encoder = build_encoder("resnet_small", input_shape=(16, 16, 3))
    x = _images(2, 16, 3)
    model = ContrastiveModel(encoder, ProjectionHead(depth=1, output_dim=8), ContrastiveLoss())
    model.save(tmp_path / "model.keras")
    encoder.save(tmp_path / "encoder.keras")
    encoder.save_weights(tmp_path / "encoder.weights.h5")

    def build():
        return build_encoder("resnet_small", input_shape=(16, 16, 3))

    for name in ("model.keras", "encoder.keras", "encoder.weights.h5"):
        loaded = load_encoder(str(tmp_path / name), input_shape=(16, 16, 1), build_encoder=build)
        np.testing.assert_allclose(loaded(x), encoder(x), rtol=1e-5, atol=1e-6)
    # A 16 px RGB checkpoint scored on 24 px grey images: rebuilt at 24 px, 3 channels kept.
    resized = load_encoder(str(tmp_path / "encoder.keras"), input_shape=(24, 24, 1))
    assert resized.input_shape == (None, 24, 24, 3)
    for ours, theirs in zip(resized.get_weights(), encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_load_encoder_bad_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_encoder(str(tmp_path / "missing.keras"), input_shape=(16, 16, 1))
    (tmp_path / "model.ckpt").write_text("")
    with pytest.raises(ValueError, match="unsupported checkpoint"):
        load_encoder(str(tmp_path / "model.ckpt"), input_shape=(16, 16, 1))
    plain = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="no feature taps"):
        load_encoder(str(tmp_path / "plain.keras"), input_shape=(16, 16, 1))
    build_encoder("convn", input_shape=(16, 16, 1)).save_weights(tmp_path / "convn.weights.h5")
    with pytest.raises(ValueError, match="does not hold the weights"):
        load_encoder(
            str(tmp_path / "convn.weights.h5"),
            input_shape=(16, 16, 1),
            build_encoder=lambda: build_encoder("resnet_small", input_shape=(16, 16, 1)),
        )
    with pytest.raises(ValueError, match="builder"):
        load_encoder(str(tmp_path / "convn.weights.h5"), input_shape=(16, 16, 1))
