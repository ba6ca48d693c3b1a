"""LARS against a numpy transcription of SimCLR's LARSOptimizer (classic momentum)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.optimization import LARS, WarmUpAndDecay

LR = 0.5  # exactly representable in the optimizer's float32 learning-rate variable


def simclr_lars_step(w, g, v, *, lr, momentum, weight_decay, eta, nesterov, decay, adapt):
    """SimCLR tf2/lars_optimizer.py `_resource_apply_dense`, classic_momentum=True."""
    if decay and weight_decay:
        g = g + weight_decay * w
    trust = 1.0
    if adapt:
        w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
        trust = eta * w_norm / g_norm if (w_norm > 0 and g_norm > 0) else 1.0
    scaled_lr = lr * trust
    next_v = momentum * v + scaled_lr * g
    update = momentum * next_v + scaled_lr * g if nesterov else next_v
    return w - update, next_v


def run_both(w0, grads, *, exclude_decay=False, exclude_adapt=None, **hyper):
    """Applies `grads` with LARS (float64) and the numpy reference; returns both trajectories."""
    var = keras.Variable(w0, dtype="float64")
    opt = LARS(learning_rate=LR, **hyper)
    if exclude_decay:
        opt.exclude_from_weight_decay(var_list=[var])
    if exclude_adapt is not None:
        opt.exclude_from_layer_adaptation(var_list=[var] if exclude_adapt else [])
    opt.build([var])
    w, v = w0.copy(), np.zeros_like(w0)
    adapt = not exclude_adapt if exclude_adapt is not None else not exclude_decay
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        w, v = simclr_lars_step(
            w,
            g,
            v,
            lr=LR,
            momentum=hyper.get("momentum", 0.9),
            weight_decay=hyper.get("weight_decay"),
            eta=hyper.get("eta", 0.001),
            nesterov=hyper.get("nesterov", False),
            decay=not exclude_decay,
            adapt=adapt,
        )
        np.testing.assert_allclose(var.numpy(), w, rtol=1e-12, atol=1e-12)
    return var.numpy(), w


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_normal_weight_matches_simclr(rng, nesterov):
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(4)]
    final, _ = run_both(w0, grads, weight_decay=1e-2, eta=0.01, nesterov=nesterov)
    # Sanity: the trust ratio makes this differ from plain momentum SGD.
    plain, _ = run_both(w0, grads, exclude_decay=True, weight_decay=1e-2, nesterov=nesterov)
    assert not np.allclose(final, plain)


def test_excluded_variable_is_plain_momentum_sgd(rng):
    w0 = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(3)]
    final, _ = run_both(w0, grads, exclude_decay=True, weight_decay=0.1)
    w, v = w0.copy(), np.zeros(5)
    for g in grads:
        v = 0.9 * v + LR * g
        w = w - v
    np.testing.assert_allclose(final, w, rtol=1e-12)


def test_adaptation_exclusion_is_separate_from_decay(rng):
    w0 = rng.normal(size=(3, 3))
    grads = [rng.normal(size=(3, 3)) for _ in range(3)]
    run_both(w0, grads, weight_decay=1e-2, exclude_adapt=True)  # decayed, not adapted
    run_both(w0, grads, weight_decay=1e-2, exclude_decay=True, exclude_adapt=False)


def test_zero_gradient_without_decay_gives_trust_one(rng):
    w0 = rng.normal(size=(3,))
    grads = [rng.normal(size=(3,)), np.zeros(3), np.zeros(3)]
    final, _ = run_both(w0, grads)
    # After the first step, zero gradients only let the momentum coast: no 0/0.
    assert np.all(np.isfinite(final))


def test_zero_gradient_with_decay_shrinks_by_lr_eta(rng):
    w0 = rng.normal(size=(3,))
    final, _ = run_both(w0, [np.zeros(3)], weight_decay=1e-3, eta=0.01)
    # g' = wd w, t = eta / wd, so the update is lr * eta * w.
    np.testing.assert_allclose(final, w0 * (1 - LR * 0.01), rtol=1e-12)


def test_zero_weight_gives_trust_one(rng):
    g = rng.normal(size=(2, 2))
    final, _ = run_both(np.zeros((2, 2)), [g], weight_decay=1e-2)
    np.testing.assert_allclose(final, -LR * g, rtol=1e-12)


def test_float32_matches_reference(rng):
    w0 = rng.normal(size=(6, 2)).astype(np.float32)
    var = keras.Variable(w0)
    opt = LARS(learning_rate=LR, weight_decay=1e-3, eta=0.01)
    w, v = w0.astype(np.float64), np.zeros((6, 2))
    for _ in range(3):
        g = rng.normal(size=(6, 2)).astype(np.float32)
        opt.apply_gradients([(tf.constant(g), var)])
        w, v = simclr_lars_step(
            w,
            g.astype(np.float64),
            v,
            lr=LR,
            momentum=0.9,
            weight_decay=1e-3,
            eta=0.01,
            nesterov=False,
            decay=True,
            adapt=True,
        )
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5, atol=1e-6)


def test_get_config_round_trip():
    schedule = WarmUpAndDecay(1.2, total_steps=100, warmup_steps=10)
    opt = LARS(schedule, momentum=0.8, weight_decay=1e-6, eta=0.002, nesterov=True)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, LARS)
    assert restored.get_config() == opt.get_config()
    assert isinstance(restored._learning_rate, WarmUpAndDecay)
    assert restored._learning_rate.get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "kwargs", [{"momentum": 1.0}, {"momentum": -0.1}, {"eta": 0.0}, {"weight_decay": -1e-3}]
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        LARS(0.1, **kwargs)


def test_adaptation_exclusion_after_build_raises():
    var = keras.Variable(np.ones(2, np.float32))
    opt = LARS(0.1)
    opt.build([var])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_layer_adaptation([var])


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    h = keras.layers.BatchNormalization()(h, training=False)  # affine: batch-split invariant
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs)


def _lars_for(model):
    from cl_properties.optimization import decay_exempt_variables

    opt = LARS(LR, weight_decay=1e-2, eta=0.01)
    opt.exclude_from_weight_decay(var_list=decay_exempt_variables(model))
    opt.build(model.trainable_variables)
    return opt


def test_distributed_matches_single_device(two_cpu_strategy):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    global_batch = x.shape[0]
    assert two_cpu_strategy.num_replicas_in_sync == 2

    single = _small_model(0)
    single_opt = _lars_for(single)
    with two_cpu_strategy.scope():
        mirrored = _small_model(0)
        mirrored_opt = _lars_for(mirrored)
    mirrored.set_weights(single.get_weights())
    bias = mirrored.layers[-1].bias
    bias_before = bias.numpy()

    def loss_fn(model, xb, yb):
        # Sum over the local batch / global batch: replica gradients sum to the global one.
        return tf.reduce_sum(tf.square(model(xb) - yb)) / global_batch

    @tf.function
    def single_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(single, xb, yb)
        grads = tape.gradient(loss, single.trainable_variables)
        single_opt.apply_gradients(zip(grads, single.trainable_variables))
        return grads

    @tf.function
    def mirrored_step(dist_inputs):
        def replica_fn(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(mirrored, xb, yb)
            grads = tape.gradient(loss, mirrored.trainable_variables)
            mirrored_opt.apply_gradients(zip(grads, mirrored.trainable_variables))

        two_cpu_strategy.run(replica_fn, args=dist_inputs)

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
    dist_batch = next(iter(two_cpu_strategy.experimental_distribute_dataset(dataset)))
    for step in range(3):
        grads = single_step(x, y)
        mirrored_step(dist_batch)
        if step == 0:
            # The exempt bias takes a plain SGD step from zero momentum: lr * g.
            index = next(
                i for i, v in enumerate(single.trainable_variables) if v is single.layers[-1].bias
            )
            bias_grad = grads[index]
            np.testing.assert_allclose(
                bias.numpy(), bias_before - LR * bias_grad.numpy(), rtol=1e-6, atol=1e-6
            )
    for got, want in zip(mirrored.get_weights(), single.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
