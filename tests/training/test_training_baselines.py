"""The reference models: the VAE's configuration and reconstruction weights, and one tiny
training run of each baseline through the probes every model shares."""

import dataclasses

import keras
import numpy as np
import pytest

from cl_properties.data import RandBit, crop_augment, source_from_arrays
from cl_properties.models import build_conv_vae
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import DataSpec, EvalConfig, PretrainConfig, build_contrastive_model
from cl_properties.training.baselines import (
    FLOOR_INIT_STRIDE,
    VaeConfig,
    probe_random_init,
    single_view_dataset,
    train_supervised,
    train_vae,
)
from cl_properties.training.config import EncoderConfig
from cl_properties.training.evaluate import probe_frozen_features
from cl_properties.training.pretrain import build_config_encoder


def _data() -> DataSpec:
    rng = np.random.default_rng(0)
    images = rng.random((24, 16, 16, 1)).astype("float32")
    source = source_from_arrays(images, {"label": (np.arange(24) % 3).astype("int32")})
    transform = RandBit(2, seed=0)
    return DataSpec(source, source, (16, 16, 3), {"label": 3}, crop_augment(), transform)


CONFIG = PretrainConfig(
    encoder=EncoderConfig(name="convn"),
    optimizer=OptimizerConfig(name="adam", learning_rate=1e-3, lr_scaling="none", weight_decay=0.0),
    batch_size=8,
    train_steps=2,
    steps_per_loop=2,
)
TINY_EVAL = EvalConfig(linear_epochs=1, knn_k=3)


def test_single_views_are_view_one_with_the_bits():
    images, labels = next(iter(single_view_dataset(CONFIG, _data(), "label")))
    assert images.shape == (8, 16, 16, 3) and labels.shape == (8,)
    assert set(np.unique(images[..., 1:])) <= {0.0, 1.0}


@pytest.mark.slow
def test_baselines_train_and_report_the_shared_probes():
    vae_config = VaeConfig(latent_dim=4, train_steps=3)
    vae = train_vae(CONFIG, _data(), vae=vae_config, evaluation=TINY_EVAL)
    supervised = train_supervised(CONFIG, _data(), evaluation=TINY_EVAL)
    for metrics in (vae, supervised):
        assert 0.0 <= metrics["linear_label"] <= 1.0 and 0.0 <= metrics["knn_label"] <= 1.0
        assert "train_loss" in metrics
    assert "train_accuracy" in supervised


def test_random_init_floor_probes_the_untrained_encoder_reproducibly():
    first = probe_random_init(CONFIG, _data(), evaluation=TINY_EVAL)
    assert set(first) == {"linear_label", "knn_label", "chance_label"}  # no training terms
    assert first == probe_random_init(CONFIG, _data(), evaluation=TINY_EVAL)  # seeded
    # The floor is the contrastive model's own encoder, untrained: same architecture, same
    # initialization from the run's seed.
    keras.utils.set_random_seed(CONFIG.seed)
    floor = build_config_encoder(CONFIG, (16, 16, 3))
    keras.utils.set_random_seed(CONFIG.seed)
    model = build_contrastive_model(CONFIG, input_shape=(16, 16, 3), probes={"label": 3})
    assert [w.shape for w in floor.weights] == [w.shape for w in model.encoder.weights]
    np.testing.assert_array_equal(floor.weights[0].numpy(), model.encoder.weights[0].numpy())


def test_an_averaged_floor_is_the_mean_of_its_initializations():
    data = _data()
    singles = []
    for k in range(2):
        keras.utils.set_random_seed(CONFIG.seed + k * FLOOR_INIT_STRIDE)
        encoder = build_config_encoder(CONFIG, data.input_shape)
        singles.append(probe_frozen_features(encoder, data, TINY_EVAL, seed=CONFIG.seed))
    averaged = probe_random_init(CONFIG, data, evaluation=TINY_EVAL, inits=2)
    assert averaged == pytest.approx({k: (singles[0][k] + singles[1][k]) / 2 for k in singles[0]})
    # One initialization is the single floor, exactly.
    assert probe_random_init(CONFIG, data, evaluation=TINY_EVAL, inits=1) == singles[0]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="inits must be an int >= 1"):
            probe_random_init(CONFIG, data, evaluation=TINY_EVAL, inits=bad)


class _Built(Exception):
    """Stops `train_vae` once it has built its model."""


@pytest.mark.parametrize(
    "encoder",
    [
        EncoderConfig(name="convn", sync_bn=True),
        EncoderConfig(name="resnet_small", cifar_stem=False),
    ],
)
def test_the_vae_encoder_is_the_config_encoder_with_its_options(monkeypatch, encoder):
    config = dataclasses.replace(CONFIG, encoder=encoder)
    built = []

    def build_and_stop(*args, **kwargs):
        built.append(build_conv_vae(*args, **kwargs))
        raise _Built

    monkeypatch.setattr("cl_properties.training.baselines.build_conv_vae", build_and_stop)
    with pytest.raises(_Built):
        train_vae(config, _data())
    vae_encoder = built[0].encoder
    batch_norms = [
        layer for layer in vae_encoder.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batch_norms and all(bn.synchronized == encoder.sync_bn for bn in batch_norms)
    assert ("stem_pool" in [layer.name for layer in vae_encoder.layers]) == (
        encoder.cifar_stem is False
    )
    # The run's encoder as every other model builds it, from the run's seed.
    keras.utils.set_random_seed(config.seed)
    expected = build_config_encoder(config, (16, 16, 3))
    assert [w.path for w in vae_encoder.weights] == [w.path for w in expected.weights]
    for got, want in zip(vae_encoder.weights, expected.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_vae_config_validates():
    with pytest.raises(ValueError, match="latent_dim"):
        VaeConfig(latent_dim=0)
    with pytest.raises(ValueError, match="kl_weight"):
        VaeConfig(kl_weight=-1.0)
    with pytest.raises(ValueError, match="bit_weighting"):
        VaeConfig(bit_weighting="none")
    with pytest.raises(ValueError, match="train_steps"):
        VaeConfig(train_steps=0)


def test_the_vae_trains_twice_the_contrastive_steps_unless_told():
    # One view per step: twice the steps see as many images as the two-view contrastive run.
    assert VaeConfig().steps(150) == 300
    assert VaeConfig(train_steps=40).steps(150) == 40


@pytest.mark.parametrize(
    "weighting, expected",
    [("group", [1.0] + [1 / 4] * 4), ("bit", [1.0] + [1 / 784] * 4), ("pixel", [1.0] * 5)],
)
def test_vae_bit_weightings(weighting, expected):
    weights = VaeConfig(bit_weighting=weighting).channel_weights((28, 28, 5), image_channels=1)
    assert weights == pytest.approx(expected, rel=1e-12)
    # Without appended channels every weighting is the plain image BCE.
    assert (
        VaeConfig(bit_weighting=weighting).channel_weights((28, 28, 3), image_channels=3)
        == [1.0] * 3
    )
