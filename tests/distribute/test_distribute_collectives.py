"""`cross_replica_concat` and replica queries, with and without a strategy."""

import numpy as np
import tensorflow as tf

from cl_properties.distribute import cross_replica_concat, num_replicas_in_sync, replica_id


def test_single_replica_is_identity():
    x = tf.constant([[1.0, 2.0]])
    assert cross_replica_concat(x) is x
    assert num_replicas_in_sync() == 1
    assert int(replica_id()) == 0


def test_gathers_in_replica_order_with_gradient(two_cpu_strategy):
    strategy = two_cpu_strategy
    weights = tf.constant(np.arange(1.0, 9.0).reshape(4, 2), tf.float32)  # global coefficients

    def local_rows(context):
        r = context.replica_id_in_sync_group
        return tf.constant([[10.0 * r, 10.0 * r + 1], [10.0 * r + 2, 10.0 * r + 3]])

    def replica_fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            gathered, pair = cross_replica_concat((x, x[:, :1]))
            # Every replica computes the same global objective, scaled by 1 / replicas.
            objective = tf.reduce_sum(weights * gathered) / num_replicas_in_sync()
        count = tf.constant(num_replicas_in_sync())
        return gathered, pair, tape.gradient(objective, x), replica_id(), count

    @tf.function
    def run(x):
        return strategy.run(replica_fn, args=(x,))

    gathered, pair, grads, ids, counts = run(
        strategy.experimental_distribute_values_from_function(local_rows)
    )
    expected = np.array([[0, 1], [2, 3], [10, 11], [12, 13]], np.float32)
    for r in range(2):
        np.testing.assert_array_equal(strategy.experimental_local_results(gathered)[r], expected)
        np.testing.assert_array_equal(strategy.experimental_local_results(pair)[r], expected[:, :1])
        # The adjoint of the gather: each replica gets its own rows of the summed gradient.
        np.testing.assert_allclose(
            strategy.experimental_local_results(grads)[r], weights.numpy()[2 * r : 2 * r + 2]
        )
        assert int(strategy.experimental_local_results(ids)[r]) == r
        assert int(strategy.experimental_local_results(counts)[r]) == 2
    with strategy.scope():  # cross-replica context
        assert num_replicas_in_sync() == 2
