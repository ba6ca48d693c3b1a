"""OptimizerConfig validation and build_optimizer wiring (schedule, decay exemptions)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.optimization import (
    LARS,
    OptimizerConfig,
    WarmUpAndDecay,
    build_optimizer,
    decay_exempt_variables,
)


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(2, 3),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dense(3),
    ])
    # Non-zero BN/bias values, so that decay would visibly change them.
    for v in decay_exempt_variables(model):
        v.assign(np.full(v.shape, 0.5, v.dtype))
    return model


@pytest.mark.parametrize("name", ["adam", "sgd", "lars"])
def test_weight_decay_spares_exempt_variables(name):
    model = small_model()
    config = OptimizerConfig(name=name, learning_rate=0.1, lr_scaling="none", schedule="constant",
                             weight_decay=0.1)
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
    config = OptimizerConfig(name="sgd", learning_rate=0.1, lr_scaling="none", schedule="constant",
                             weight_decay=0.1)
    opt = build_optimizer(config, batch_size=32, total_steps=10)
    before = [v.numpy() for v in model.trainable_variables]
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for v, old in zip(model.trainable_variables, before):
        np.testing.assert_allclose(v.numpy(), old * 0.99, rtol=1e-6)


def test_builds_scaled_warmup_schedule_and_lars():
    config = OptimizerConfig(learning_rate=0.2, lr_scaling="sqrt", warmup_fraction=0.1,
                             weight_decay=1e-6, momentum=0.8, eta=0.002)
    opt = build_optimizer(config, batch_size=64, total_steps=500)
    assert isinstance(opt, LARS)
    assert (opt.momentum, opt.eta, opt.weight_decay) == (0.8, 0.002, 1e-6)
    schedule = opt._learning_rate
    assert isinstance(schedule, WarmUpAndDecay)
    assert schedule.get_config() == {"peak_learning_rate": pytest.approx(0.2 * 8.0),
                                     "total_steps": 500, "warmup_steps": 50, "decay": "cosine",
                                     "power": 1.0}


def test_adam_and_sgd_types():
    adam = build_optimizer(OptimizerConfig(name="adam", weight_decay=0.0), batch_size=8,
                           total_steps=5)
    sgd = build_optimizer(OptimizerConfig(name="sgd", nesterov=True), batch_size=8, total_steps=5)
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9


@pytest.mark.parametrize("kwargs,match", [
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
])
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
