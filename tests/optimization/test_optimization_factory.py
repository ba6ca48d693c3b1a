"""OptimizerConfig validation and build_optimizer wiring (schedule, decay and LARS exemptions)."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import ContrastiveLoss
from cl_properties.models import ProjectionHead
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.optimization import (
    LARS,
    OptimizerConfig,
    WarmUpAndDecay,
    build_optimizer,
    decay_exempt_variables,
)


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    # Non-zero BN/bias values, so that decay would visibly change them.
    for v in decay_exempt_variables(model):
        v.assign(np.full(v.shape, 0.5, v.dtype))
    return model


@pytest.mark.parametrize("name", ["adam", "sgd", "lars"])
def test_weight_decay_spares_exempt_variables(name):
    model = small_model()
    config = OptimizerConfig(
        name=name, learning_rate=0.1, lr_scaling="none", schedule="constant", weight_decay=0.1
    )
    opt = build_optimizer(config, batch_size=32, total_steps=10, model=model)
    before = [v.numpy() for v in model.trainable_variables]
    zeros = [tf.zeros_like(v) for v in model.trainable_variables]
    opt.apply_gradients(zip(zeros, model.trainable_variables))
    exempt = {id(v) for v in decay_exempt_variables(model)}
    assert len(exempt) == 4  # conv bias, BN gamma and beta, dense bias
    for v, old in zip(model.trainable_variables, before):
        if id(v) in exempt:
            np.testing.assert_array_equal(v.numpy(), old)
        else:
            # Kernels shrink towards 0: by lr*wd (decoupled) or lr*eta (LARS, see its tests).
            factor = 1 - 0.1 * (0.001 if name == "lars" else 0.1)
            np.testing.assert_allclose(v.numpy(), old * factor, rtol=1e-6)


def test_without_model_everything_is_decayed():
    model = small_model()
    config = OptimizerConfig(
        name="sgd", learning_rate=0.1, lr_scaling="none", schedule="constant", weight_decay=0.1
    )
    opt = build_optimizer(config, batch_size=32, total_steps=10)
    before = [v.numpy() for v in model.trainable_variables]
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for v, old in zip(model.trainable_variables, before):
        np.testing.assert_allclose(v.numpy(), old * 0.99, rtol=1e-6)


def test_builds_scaled_warmup_schedule_and_lars():
    config = OptimizerConfig(
        learning_rate=0.2,
        lr_scaling="sqrt",
        warmup_fraction=0.1,
        weight_decay=1e-6,
        momentum=0.8,
        eta=0.002,
    )
    opt = build_optimizer(config, batch_size=64, total_steps=500)
    assert isinstance(opt, LARS)
    assert (opt.momentum, opt.eta, opt.weight_decay) == (0.8, 0.002, 1e-6)
    schedule = opt._learning_rate
    assert isinstance(schedule, WarmUpAndDecay)
    assert schedule.get_config() == {
        "peak_learning_rate": pytest.approx(0.2 * 8.0),
        "total_steps": 500,
        "warmup_steps": 50,
        "decay": "cosine",
        "power": 1.0,
    }


def test_adam_and_sgd_types():
    adam = build_optimizer(
        OptimizerConfig(name="adam", weight_decay=0.0), batch_size=8, total_steps=5
    )
    sgd = build_optimizer(OptimizerConfig(name="sgd", nesterov=True), batch_size=8, total_steps=5)
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "rmsprop"}, "optimizer"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"lr_scaling": "cubic"}, "lr_scaling"),
        ({"schedule": "step"}, "schedule"),
        ({"momentum": 1.0}, "momentum"),
        ({"eta": 0.0}, "eta"),
        ({"warmup_steps": 5, "warmup_fraction": 0.1}, "not both"),
        ({"warmup_fraction": 1.5}, "warmup_fraction"),
        ({"warmup_steps": -2}, "warmup_steps"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimizerConfig(**kwargs)


def test_warmup_longer_than_training_raises():
    with pytest.raises(ValueError, match="exceeds total_steps"):
        build_optimizer(OptimizerConfig(warmup_steps=20), batch_size=8, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        build_optimizer(OptimizerConfig(), batch_size=8, total_steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        build_optimizer(OptimizerConfig(), batch_size=0, total_steps=10)


def contrastive_model():
    """A tiny ContrastiveModel: Dense encoder (kernel, bias), linear head, a 3-class probe."""
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
    model = ContrastiveModel(
        encoder, ProjectionHead(1, None, 4), ContrastiveLoss(temperature=0.5), probes={"label": 3}
    )
    # Non-zero biases, so that decay would visibly change them.
    for v in decay_exempt_variables(model):
        v.assign(np.full(v.shape, 0.5, v.dtype))
    return model


LARS_CONFIG = OptimizerConfig(
    name="lars",
    learning_rate=0.5,
    lr_scaling="none",
    schedule="constant",
    weight_decay=0.1,
    eta=1e-3,
)


@pytest.mark.parametrize("name", ["adam", "sgd", "lars"])
def test_probes_keep_kernel_decay_but_get_no_trust_ratio(name):
    # SimCLR: head_supervised is outside LARS's decay and trust ratio, but add_weight_decay puts
    # its kernel's L2 into the loss; every optimizer's probe kernel is decayed, no bias is.
    model = contrastive_model()
    config = dataclasses.replace(LARS_CONFIG, name=name)
    opt = build_optimizer(config, batch_size=8, total_steps=10, model=model)
    probe, encoder_dense = model.probes["label"], model.encoder.layers[-1]
    before = {id(v): v.numpy() for v in model.trainable_variables}
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    decayed = 1 - 0.5 * 0.1  # lr * wd: decoupled, or LARS's coupled decay with trust ratio 1
    np.testing.assert_allclose(probe.kernel.numpy(), before[id(probe.kernel)] * decayed, rtol=1e-6)
    np.testing.assert_array_equal(probe.bias.numpy(), before[id(probe.bias)])
    # Encoder kernels keep LARS's trust ratio: g = wd * w makes a step of lr * eta * w.
    encoder_decayed = 1 - 0.5 * (1e-3 if name == "lars" else 0.1)
    np.testing.assert_allclose(
        encoder_dense.kernel.numpy(), before[id(encoder_dense.kernel)] * encoder_decayed, rtol=1e-6
    )


def test_lars_train_step_gives_probes_trust_ratio_1_and_still_adapts_the_encoder():
    model = contrastive_model()
    wd = 1.0  # large, so that decay is a visible part of every step
    config = dataclasses.replace(LARS_CONFIG, weight_decay=wd)
    opt = build_optimizer(config, batch_size=8, total_steps=10, model=model)
    model.compile(optimizer=opt)
    rng = np.random.default_rng(0)
    v1, v2 = (rng.normal(size=(8, 4)).astype(np.float32) for _ in range(2))
    y = rng.integers(0, 3, 8).astype(np.int32)
    probe, kernel = model.probes["label"], model.encoder.layers[-1].kernel
    w, b, k = probe.kernel.numpy(), probe.bias.numpy(), kernel.numpy()
    both = np.concatenate([v1, v2])
    with tf.GradientTape() as tape:
        features = model.encoder(both, training=True)
        z = model.head(features, training=True)
        contrastive = model.contrastive_loss(z[:8], z[8:]).loss
    k_grad = tape.gradient(contrastive, kernel).numpy()

    model.train_step(((v1, v2), {"label": y}))

    # The probe's softmax cross-entropy gradient by hand, on both views' stop-gradient features.
    f = features.numpy()
    logits = f @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(16), np.concatenate([y, y])] -= 1
    w_grad, b_grad = f.T @ p / 16, p.mean(0)
    # First step (zero momentum), trust ratio 1: w -= lr * (g + wd * w); the bias is not decayed.
    np.testing.assert_allclose(
        probe.kernel.numpy(), w - 0.5 * (w_grad + wd * w), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(probe.bias.numpy(), b - 0.5 * b_grad, rtol=1e-5, atol=1e-7)
    # The encoder kernel is decayed and adapted: w -= lr * eta * ||w|| / ||g'|| * g'.
    g = k_grad + wd * k
    step = 0.5 * 1e-3 * np.linalg.norm(k) / np.linalg.norm(g) * g
    np.testing.assert_allclose(kernel.numpy(), k - step, rtol=1e-5, atol=1e-8)
