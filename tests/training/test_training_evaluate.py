"""`pretrain` trains every head depth from explicit config; `train_and_evaluate` reports the
online probe, linear evaluation and kNN for every label key."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data import RandBit, crop_augment, make_shapes, source_from_arrays
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import (
    DataSpec,
    EncoderConfig,
    EvalConfig,
    HeadConfig,
    LossConfig,
    PretrainConfig,
    build_contrastive_model,
    pretrain,
    train_and_evaluate,
)
from cl_properties.training.evaluate import SIMCLR_LINEAR_BATCH, probe_frozen_features

SIZE = 16
BATCH = 8


def _config(depth=2, steps=2, loss="nt_xent"):
    return PretrainConfig(
        encoder=EncoderConfig(name="convn"),
        head=HeadConfig(depth=depth, hidden_dim=32, output_dim=16),
        loss=LossConfig(loss, {"temperature": 0.5, "lambda_weight": 1.0}),
        optimizer=OptimizerConfig(
            name="adam", learning_rate=1e-3, lr_scaling="none", weight_decay=0.0
        ),
        batch_size=BATCH,
        train_steps=steps,
        steps_per_loop=steps,
        seed=0,
    )


def _train_data(context, start):
    assert context is None and start == 0  # one replica, fresh start
    rng = np.random.default_rng(0)
    views = rng.random((2, 4 * BATCH, SIZE, SIZE, 1), dtype=np.float32)
    labels = {"label": rng.integers(0, 3, 4 * BATCH).astype(np.int32)}
    return tf.data.Dataset.from_tensor_slices(((views[0], views[1]), labels)).repeat().batch(BATCH)


def test_loss_scale_reaches_the_model_and_is_validated():
    config = dataclasses.replace(
        _config(), loss=LossConfig("nt_xent", {"temperature": 0.5, "scale": 2.0})
    )
    model = build_contrastive_model(config, input_shape=(SIZE, SIZE, 1), probes={})
    assert model.contrastive_loss.scale == 2.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale"):
            LossConfig("nt_xent", {"scale": bad})


def test_loss_config_names_a_registered_loss_and_replaces_only_what_it_gives():
    config = LossConfig("swd_normal", {"scale": 2.0})
    assert config.resolved() == {
        "method": "swd",
        "prior": "normal",
        "lambda_weight": 5.0,
        "scale": 2.0,
    }
    loss = config.build(seed=3)
    assert (loss.lambda_weight, loss.normalize, loss.seed, loss.scale) == (5.0, False, 3, 2.0)
    with pytest.raises(ValueError, match="unknown loss 'triplet'; registered: nt_xent, decoupled"):
        LossConfig("triplet")
    with pytest.raises(ValueError, match="loss 'nt_xent': .*unexpected keyword argument 'tau'"):
        LossConfig("nt_xent", {"tau": 0.2})


@pytest.mark.parametrize(
    "depth,loss", [(0, "nt_xent"), (1, "decoupled"), (2, "swd_normal"), (3, "swd_hypercube")]
)
def test_every_head_depth_pretrains(depth, loss):
    result = pretrain(
        _config(depth, loss=loss),
        input_shape=(SIZE, SIZE, 1),
        probes={"label": 3},
        train_data=_train_data,
        verbose=0,
    )
    model = result.model
    assert model.head.depth == depth and len(model.head.dense_layers) == depth
    z = model.project(tf.zeros((2, SIZE, SIZE, 1)))
    assert z.shape == (2, 128 if depth == 0 else 16)
    assert int(model.optimizer.iterations) == 2
    assert [len(v) for v in result.history.values()] == [1] * len(result.history)
    for name in (
        "loss",
        "alignment",
        "distribution",
        "contrastive_accuracy",
        "probe_label_accuracy",
    ):
        assert np.isfinite(result.final_metrics[name]), name


def _shapes_data() -> DataSpec:
    train, test = (make_shapes(n, size=SIZE, seed=seed) for n, seed in ((64, 0), (32, 1)))
    return DataSpec(
        train=source_from_arrays(train.images, {"label": train.labels, "parity": train.labels % 2}),
        test=source_from_arrays(test.images, {"label": test.labels, "parity": test.labels % 2}),
        input_shape=(SIZE, SIZE, 1),
        probes={"label": 4, "parity": 2},
        augment=crop_augment(),
    )


@pytest.mark.slow
def test_train_and_evaluate_reports_three_evaluations_per_label():
    _, metrics = train_and_evaluate(
        _config(steps=4),
        _shapes_data(),
        evaluation=EvalConfig(linear_epochs=2, knn_k=5, batch_size=32),
        verbose=0,
    )
    for key in ("label", "parity"):
        for kind in ("online", "linear", "knn"):
            assert 0.0 <= metrics[f"{kind}_{key}"] <= 1.0, (kind, key)
    assert np.isfinite(metrics["train_loss"]) and metrics["pretrain_seconds"] > 0


def test_online_only_evaluation_skips_linear_and_knn():
    _, metrics = train_and_evaluate(
        _config(steps=2), _shapes_data(), evaluation=EvalConfig(offline=False), verbose=0
    )
    assert {"online_label", "online_parity"} <= set(metrics)
    assert not any(k.startswith(("linear_", "knn_")) for k in metrics)


def test_frozen_probes_report_the_test_sets_chance_level():
    # Test labels: class 0 six times, class 1 twice -> always answering 0 scores 0.75; the
    # "single" label has one class only -> chance 1.
    rng = np.random.default_rng(0)
    images = rng.random((8, SIZE, SIZE, 1), dtype=np.float32)
    labels = {"label": np.array([0, 0, 0, 1, 0, 1, 0, 0]), "single": np.zeros(8, np.int64)}
    data = DataSpec(
        train=source_from_arrays(images, labels),
        test=source_from_arrays(images, labels),
        input_shape=(SIZE, SIZE, 1),
        probes={"label": 2, "single": 2},
        augment=crop_augment(),
    )
    metrics = probe_frozen_features(
        lambda x: tf.reshape(x, (tf.shape(x)[0], -1)),
        data,
        EvalConfig(linear_epochs=1, knn_k=3, batch_size=4),
        seed=0,
    )
    assert metrics["chance_label"] == 0.75 and metrics["chance_single"] == 1.0


def test_image_channels_exclude_what_the_view_transform_appends():
    source = source_from_arrays(
        np.zeros((2, 8, 8, 1), np.float32), {"label": np.zeros(2, np.int64)}
    )
    spec = DataSpec(source, source, (8, 8, 1 + 3), {"label": 2}, crop_augment(), RandBit(3))
    assert spec.image_channels == 1
    assert dataclasses.replace(spec, input_shape=(8, 8, 3), view_transform=None).image_channels == 3


def test_the_simclr_linear_protocol_trains_on_augmented_images():
    data = _shapes_data()
    encoder = build_contrastive_model(_config(steps=1), input_shape=data.input_shape, probes={})
    metrics = probe_frozen_features(
        encoder, data, EvalConfig(linear_epochs=2, knn_k=5, linear_protocol="simclr"), seed=0
    )
    assert all(0.0 <= metrics[f"linear_{key}"] <= 1.0 for key in ("label", "parity"))
    with pytest.raises(ValueError, match="linear_protocol must be one of"):
        EvalConfig(linear_protocol="finetune")


def test_the_simclr_protocol_trains_every_key_on_one_encoder_pass_per_batch():
    data = _shapes_data()  # 64 training and 32 test images; probes "label" and "parity"
    evaluation = EvalConfig(linear_epochs=2, knn_k=5, linear_protocol="simclr")
    images_seen = tf.Variable(0, dtype=tf.int64)

    def represent(images):
        images_seen.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return tf.reshape(images, (tf.shape(images)[0], -1))

    both = probe_frozen_features(represent, data, evaluation, seed=0)
    # The plain images once, then 2 epochs x 1 augmented batch, each encoded once for both keys.
    assert int(images_seen.numpy()) == 64 + 32 + 2 * SIMCLR_LINEAR_BATCH
    for key, classes in data.probes.items():  # each key's probe is the one it gets alone
        alone = dataclasses.replace(data, probes={key: classes})
        assert probe_frozen_features(represent, alone, evaluation, seed=0) == {
            name: value for name, value in both.items() if name.endswith(f"_{key}")
        }
