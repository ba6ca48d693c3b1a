"""Cross-replica collectives for losses that need the global batch (negatives, SWD quantiles).

All helpers also work outside any strategy and in cross-replica context, where they act as
a single replica (identity gather, id 0).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def num_replicas_in_sync() -> int:
    """Number of replicas of the current strategy (1 outside any strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context, e.g. directly under `strategy.scope()`
        return tf.distribute.get_strategy().num_replicas_in_sync
    return context.num_replicas_in_sync


def replica_id() -> tf.Tensor:
    """This replica's index in its sync group, an int32 scalar (0 outside a replica context)."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def cross_replica_concat(value: Any, axis: int = 0) -> Any:
    """Concatenates `value` (a tensor or nested structure) over all replicas along `axis`.

    Replica r's part lands at position r (replica order), so tensors that are paired row by
    row on every replica (the two views z1, z2) stay paired in the global result. Identity
    with one replica or outside a replica context.

    Differentiable: `ReplicaContext.all_gather` carries a gradient that all-reduces (sums)
    the upstream gradients of every replica and slices out this replica's rows, the exact
    adjoint of the gather. So when every replica computes the same global objective L from
    the gathered tensor and scales it by 1 / num_replicas_in_sync, the sum of the replicas'
    gradients (what an optimizer under a strategy applies) is dL/dw, the single-device
    gradient (checked in tests/distribute).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_gather(value, axis=axis)
