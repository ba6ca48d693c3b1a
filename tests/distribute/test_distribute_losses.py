"""Under MirroredStrategy (two logical CPUs) every loss gives the single-device global-batch
loss and, after dividing by the replica count and summing replica gradients, its gradient;
NT-Xent with extra negatives gathers them and masks them over the global batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.distribute import num_replicas_in_sync
from cl_properties.losses import (
    ContrastiveLoss,
    contrastive_accuracy,
    nt_xent_extra_negatives_terms,
)

CONFIGS = [
    {"method": "nt_xent", "temperature": 0.2},
    {"method": "ifm", "temperature": 0.2, "epsilon": 0.1, "alpha": 0.5},
    {"method": "decoupled", "temperature": 0.5, "lambda_weight": 0.3},
    {"method": "swd", "prior": "hypersphere", "lambda_weight": 5.0, "seed": 1},
    {"method": "swd", "prior": "hypercube", "lambda_weight": 5.0, "seed": 2},
    {"method": "swd", "prior": "normal", "lambda_weight": 5.0, "seed": 3},
]
GLOBAL_BATCH, IN_DIM, OUT_DIM, STEP = 8, 5, 6, 7


def split_per_replica(strategy, x):
    per_replica = len(x) // strategy.num_replicas_in_sync

    def part(context):
        start = context.replica_id_in_sync_group * per_replica
        return tf.constant(x[start : start + per_replica])

    return strategy.experimental_distribute_values_from_function(part)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['method']}-{c.get('prior', '')}")
def test_distributed_equals_single_device(two_cpu_strategy, config):
    strategy = two_cpu_strategy
    loss_fn = ContrastiveLoss(**config)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.normal(size=(GLOBAL_BATCH, IN_DIM)).astype(np.float32) for _ in range(2))

    single = keras.layers.Dense(OUT_DIM)
    single.build((None, IN_DIM))
    with tf.GradientTape() as tape:
        expected = loss_fn(single(x1), single(x2), step=STEP)
    expected_grads = tape.gradient(expected.loss, single.trainable_variables)

    with strategy.scope():
        layer = keras.layers.Dense(OUT_DIM)
        layer.build((None, IN_DIM))
        layer.set_weights(single.get_weights())

    def replica_step(v1, v2):
        with tf.GradientTape() as tape:
            terms = loss_fn(layer(v1), layer(v2), step=STEP)
            scaled = terms.loss / num_replicas_in_sync()
        grads = tape.gradient(scaled, layer.trainable_variables)
        return terms, grads, contrastive_accuracy(layer(v1), layer(v2))

    @tf.function
    def distributed_step(v1, v2):
        terms, grads, accuracy = strategy.run(replica_step, args=(v1, v2))
        summed = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
        return terms, summed, accuracy

    terms, grads, accuracy = distributed_step(
        split_per_replica(strategy, x1), split_per_replica(strategy, x2)
    )
    for name in ("loss", "alignment", "distribution"):
        got, want = getattr(terms, name), getattr(expected, name)
        local = strategy.experimental_local_results(got)
        assert len(local) == 2
        for value in local:  # the global value on every replica
            np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    single_accuracy = contrastive_accuracy(single(x1), single(x2)).numpy()
    for value in strategy.experimental_local_results(accuracy):
        assert value.numpy() == single_accuracy


def test_extra_negatives_are_gathered_and_masked_over_the_global_batch(two_cpu_strategy):
    strategy = two_cpu_strategy
    rng = np.random.default_rng(0)
    z1, z2, extra = (rng.normal(size=(GLOBAL_BATCH, OUT_DIM)).astype(np.float32) for _ in "abc")
    own = np.eye(GLOBAL_BATCH, dtype=bool)  # what BitMatchedContrastiveModel masks
    expected = nt_xent_extra_negatives_terms(z1, z2, extra, own, 0.2).loss

    @tf.function
    def distributed(v1, v2, e):
        return strategy.run(
            lambda a, b, c: nt_xent_extra_negatives_terms(a, b, c, own, 0.2).loss, args=(v1, v2, e)
        )

    got = distributed(*(split_per_replica(strategy, x) for x in (z1, z2, extra)))
    for value in strategy.experimental_local_results(got):
        np.testing.assert_allclose(value.numpy(), expected.numpy(), rtol=1e-5)
