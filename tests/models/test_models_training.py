"""Encoder + head train under a plain and a MirroredStrategy step; synchronized BN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.models import ProjectionHead, build_encoder


def _images(n, shape, seed=0):
    return np.random.RandomState(seed).rand(n, *shape).astype("float32")


def _loss(z):
    # Any differentiable loss will do: pull the projections towards 1.
    return tf.reduce_mean(tf.square(z - 1.0))


def _build(name, shape, sync_bn):
    enc = build_encoder(name, input_shape=shape, sync_bn=sync_bn)
    head = ProjectionHead(2, 16, 8, sync_bn=sync_bn)
    head.build(enc.output_shape)
    variables = enc.trainable_variables + head.trainable_variables
    opt = keras.optimizers.Adam(1e-2)
    opt.build(variables)  # under a strategy, slots must exist before the tf.function
    return enc, head, variables, opt


def _snapshot(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


@pytest.mark.parametrize("name,shape", [("resnet_small", (16, 16, 3)), ("convn", (28, 28, 3))])
def test_one_step_changes_weights(name, shape):
    keras.utils.set_random_seed(0)
    enc, head, variables, opt = _build(name, shape, sync_bn=False)
    x = _images(4, shape)
    before = _snapshot(variables)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = _loss(head(enc(x, training=True), training=True))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    loss0 = float(step(x))
    after = _snapshot(variables)
    changed = {v.path for v, a, b in zip(variables, before, after) if not np.array_equal(a, b)}
    # Layers that receive gradients at step 1 changed (residual branches behind a zero gamma
    # get none yet, SimCLR's init_zero).
    assert enc.layers[1].kernel.path in changed
    assert {v.path for v in head.trainable_variables} <= changed
    assert np.isfinite(loss0)
    for _ in range(3):
        loss = float(step(x))
    assert loss < loss0


def test_sync_bn_uses_global_batch_statistics(two_cpu_strategy):
    x = _images(4, (8, 8, 3))
    outputs = {}
    for sync in (True, False):
        with two_cpu_strategy.scope():
            keras.utils.set_random_seed(1)
            enc = build_encoder("resnet_small", input_shape=(8, 8, 3), sync_bn=sync)
        full = keras.ops.convert_to_numpy(enc(x, training=True))  # one replica: whole batch
        dist = two_cpu_strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(4)
        )
        per_replica = two_cpu_strategy.run(
            tf.function(lambda b: enc(b, training=True)), args=(next(iter(dist)),)
        )
        split = np.concatenate(
            [t.numpy() for t in two_cpu_strategy.experimental_local_results(per_replica)]
        )
        outputs[sync] = np.abs(split - full).max()
    assert outputs[True] < 1e-5  # synchronized: identical to the single-device full batch
    assert outputs[False] > 1e-3  # per-replica statistics: different


def test_distributed_step_with_sync_bn(two_cpu_strategy):
    strategy = two_cpu_strategy
    with strategy.scope():
        keras.utils.set_random_seed(0)
        enc, head, variables, opt = _build("convn", (16, 16, 3), sync_bn=True)
    before = _snapshot(variables)
    dist = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(_images(8, (16, 16, 3))).batch(8)
    )

    @tf.function
    def step(batch):
        def fn(x):
            with tf.GradientTape() as tape:
                loss = _loss(head(enc(x, training=True), training=True))
                scaled = loss / strategy.num_replicas_in_sync
            opt.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            return loss

        return strategy.run(fn, args=(batch,))

    step(next(iter(dist)))
    after = _snapshot(variables)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    # Mirrored variables (trainable and BN moving statistics) agree on both replicas.
    for v in enc.variables + head.variables:
        copies = [t.numpy() for t in strategy.experimental_local_results(v.value)]
        np.testing.assert_array_equal(copies[0], copies[1])
    moving = enc.get_layer("dense_bn").moving_mean
    assert not np.array_equal(keras.ops.convert_to_numpy(moving), 0)
