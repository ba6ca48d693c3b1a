"""ContrastiveModel: training lowers the loss, online probes learn without shaping the
representation, every head depth trains, get_config and .keras files round-trip, bad inputs."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import ContrastiveLoss
from cl_properties.models import ProjectionHead, build_encoder
from cl_properties.models.contrastive import ContrastiveModel

SHAPE = (16, 16, 1)


def _model(depth=2, probes=None, encoder=None, learning_rate=1e-2, loss=None):
    keras.utils.set_random_seed(0)
    encoder = encoder or build_encoder("convn", input_shape=SHAPE)
    head = ProjectionHead(depth, 32, 16)
    model = ContrastiveModel(
        encoder, head, loss or ContrastiveLoss(method="nt_xent", temperature=0.5), probes=probes
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def _views(n=16, seed=0):
    """Two noisy copies of n random images, and a random binary label."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE), dtype=np.float32)
    v1, v2 = (
        np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1).astype(np.float32) for _ in range(2)
    )
    return (v1, v2), {"label": rng.integers(0, 2, n).astype(np.int32)}


def _repeat(batch):
    return tf.data.Dataset.from_tensors(batch).repeat()


@pytest.mark.slow
def test_train_steps_lower_the_loss_on_a_fixed_batch():
    model = _model(probes={"label": 2})
    # One step per Keras epoch: metrics are reset per epoch, so history holds per-step values.
    history = model.fit(_repeat(_views()), epochs=15, steps_per_epoch=1, verbose=0).history
    losses = history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.5, losses
    assert history["contrastive_accuracy"][-1] >= history["contrastive_accuracy"][0]
    # NT-Xent's reported terms decompose the loss exactly (paper-notes section 1).
    np.testing.assert_allclose(
        np.asarray(history["alignment"]) + np.asarray(history["distribution"]), losses, rtol=1e-5
    )


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_every_head_depth_builds_and_trains(depth):
    model = _model(depth=depth)
    (v1, _), _ = batch = _views()
    z = model.project(v1, training=False)
    # Depth 0 is the identity: the loss sees ConvN's 128-d representation.
    assert z.shape == (16, 128 if depth == 0 else 16)
    assert len(model.head.dense_layers) == depth
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(_repeat(batch), epochs=1, steps_per_epoch=2, verbose=0).history
    assert np.isfinite(history["loss"][0])
    changed = [not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) > len(changed) // 2


def _separable(n, seed):
    """Images whose label is 1 iff the top-left pixel is above 0.5: linear in the pixels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 4, 1), dtype=np.float32)
    return x, {"label": (x[:, 0, 0, 0] > 0.5).astype(np.int32)}


def test_online_probe_learns_a_linearly_separable_label():
    # The representation is the flattened image, so the label is linearly separable in it.
    encoder = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()])
    model = _model(depth=1, probes={"label": 2}, encoder=encoder, learning_rate=0.05)
    x, y = _separable(512, seed=0)
    train = tf.data.Dataset.from_tensor_slices(((x, x), y)).repeat().batch(64)
    model.fit(train, epochs=1, steps_per_epoch=150, verbose=0)
    test_x, test_y = _separable(256, seed=1)
    scores = model.evaluate(test_x, test_y, batch_size=64, return_dict=True, verbose=0)
    assert scores["probe_label_accuracy"] > 0.9
    assert set(scores) == {"probe_label_loss", "probe_label_accuracy"}


@pytest.mark.slow
def test_probes_do_not_shape_the_representation():
    # Same initial encoder and head, same data: with or without a probe, the encoder trains
    # identically, because the probe sees stop-gradient features.
    weights = {}
    for probes in ({}, {"label": 2}):
        model = _model(probes=probes)
        model.fit(_repeat(_views()), epochs=1, steps_per_epoch=3, verbose=0)
        weights[bool(probes)] = [np.array(w) for w in model.encoder.weights]
    for a, b in zip(weights[False], weights[True]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_get_config_round_trip_rebuilds_the_same_model(tmp_path):
    loss = ContrastiveLoss(method="swd", prior="hypercube", lambda_weight=5.0, seed=3)
    model = _model(depth=3, probes={"label": 2, "colour": 5}, loss=loss)
    (v1, _), _ = _views()
    config = model.get_config()
    clone = ContrastiveModel.from_config(config)
    assert clone.probe_classes == {"label": 2, "colour": 5}
    assert clone.head.get_config() == model.head.get_config()
    assert clone.contrastive_loss.get_config() == loss.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.project(v1), model.project(v1))

    # A trained model's `.keras` file resumes training exactly: weights and optimizer slots.
    views, labels = _views()
    batch = views, {**labels, "colour": np.arange(len(labels["label"]), dtype=np.int32) % 5}
    model.fit(_repeat(batch), epochs=1, steps_per_epoch=2, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras only warns when it skips the optimizer's slots
        loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ContrastiveModel)
    np.testing.assert_array_equal(loaded.project(v1), model.project(v1))
    np.testing.assert_array_equal(loaded(v1), model(v1))
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) > 2
    for want, got in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(got, want)
    for trained in (model, loaded):
        trained.fit(_repeat(batch), epochs=1, steps_per_epoch=1, verbose=0)
    for want, got in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_without_a_probed_label_raises():
    model = _model(probes={"digit": 10})
    with pytest.raises(ValueError, match="no label 'digit'"):
        model.fit(_repeat(_views()), epochs=1, steps_per_epoch=1, verbose=0)


def test_probe_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        _model(probes={"label": 1})


def test_separate_bn_views_encode_each_view_alone_and_joint_views_together():
    (v1, v2), _ = _views()
    joint = _model()
    separate = _model()
    separate.bn_views = "separate"  # same weights (seeded), the colab's BatchNorm per view
    features, _ = separate._encode_views(v1, v2, training=True)
    want = [separate.encoder(v, training=True) for v in (v1, v2)]
    np.testing.assert_allclose(features, np.concatenate(want), rtol=1e-5, atol=1e-6)
    joint_features, _ = joint._encode_views(v1, v2, training=True)
    assert np.abs(joint_features - features).max() > 1e-3  # batch statistics of 2B images
    # At inference BatchNorm uses its moving statistics: the two ways agree.
    fresh_joint, fresh_separate = _model(), _model()
    fresh_separate.bn_views = "separate"
    a, _ = fresh_joint._encode_views(v1, v2, training=False)
    b, _ = fresh_separate._encode_views(v1, v2, training=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("probe_views, examples", [("both", 32), ("first", 16)])
def test_probes_train_on_both_views_or_the_first(probe_views, examples):
    model = _model(probes={"label": 2})
    model.probe_views = probe_views
    batch = _views(n=16)
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    assert float(model._probe_accuracy["label"].count) == examples


def test_view_options_are_checked_and_serialized():
    encoder = build_encoder("convn", input_shape=SHAPE)
    model = ContrastiveModel(
        encoder,
        ProjectionHead(1, 8, 8),
        ContrastiveLoss(),
        bn_views="separate",
        probe_views="first",
    )
    clone = ContrastiveModel.from_config(model.get_config())
    assert (clone.bn_views, clone.probe_views) == ("separate", "first")
    with pytest.raises(ValueError, match="bn_views must be one of"):
        ContrastiveModel(encoder, ProjectionHead(1, 8, 8), ContrastiveLoss(), bn_views="per_view")
    with pytest.raises(ValueError, match="probe_views must be one of"):
        ContrastiveModel(encoder, ProjectionHead(1, 8, 8), ContrastiveLoss(), probe_views="two")
