"""Weighted k-nearest-neighbour classification on frozen features (InstDisc / DINO)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cl_properties.evaluation.linear import check_finite, check_labeled_features


@tf.function(reduce_retracing=True)
def _vote(
    bank: tf.Tensor, bank_onehot: tf.Tensor, queries: tf.Tensor, k: int, temperature: float
) -> tf.Tensor:
    """Class scores sum_{j in topk(q)} exp(sim(q, j) / T) * onehot(y_j) for a batch of queries."""
    similarity = tf.matmul(queries, bank, transpose_b=True)  # [Q, N], both sides l2-normalized
    top_sim, top_idx = tf.math.top_k(similarity, k=k, sorted=True)
    weights = tf.exp(top_sim / tf.cast(temperature, similarity.dtype))  # [Q, k]
    neighbour_onehot = tf.gather(bank_onehot, top_idx)  # [Q, k, C]
    return tf.einsum("qk,qkc->qc", weights, neighbour_onehot)


def knn_predict(
    train_features,
    train_labels,
    test_features,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Predicted classes of the test features by a temperature-weighted kNN vote.

    Features are l2-normalized; for a query q the k train features with the highest
    cosine similarity s_j vote for their class with weight exp(s_j / T), and the class with
    the largest total wins (ties go to the smallest class id). k is clipped to the bank
    size. Queries are processed `batch_size` at a time, so memory is O(batch_size * N).
    Computes in float64 when the features are float64, in float32 otherwise.
    """
    train_x, train_y = check_labeled_features(train_features, train_labels, "train")
    test_x = check_finite(np.asarray(test_features), "test")
    if test_x.ndim != 2 or test_x.shape[1] != train_x.shape[1]:
        raise ValueError(
            f"test features must have shape [M, {train_x.shape[1]}], got {test_x.shape}"
        )
    if k < 1 or temperature <= 0 or batch_size < 1:
        raise ValueError(
            f"need k >= 1, temperature > 0, batch_size >= 1; got {k}, {temperature}, {batch_size}"
        )
    if num_classes is None:
        num_classes = int(train_y.max()) + 1
    elif num_classes <= train_y.max():
        raise ValueError(f"num_classes={num_classes} but a train label equals {train_y.max()}")
    dtype = tf.float64 if train_x.dtype == np.float64 and test_x.dtype == np.float64 else tf.float32
    k = min(int(k), train_x.shape[0])

    bank = tf.math.l2_normalize(tf.constant(train_x, dtype), axis=1)
    bank_onehot = tf.one_hot(train_y, num_classes, dtype=dtype)
    predictions = []
    for start in range(0, test_x.shape[0], batch_size):
        queries = tf.math.l2_normalize(
            tf.constant(test_x[start : start + batch_size], dtype), axis=1
        )
        scores = _vote(bank, bank_onehot, queries, k, float(temperature))
        predictions.append(np.argmax(np.asarray(scores), axis=1))
    if not predictions:
        return np.zeros([0], np.int64)
    return np.concatenate(predictions)


def knn_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> float:
    """Top-1 accuracy of the weighted kNN classifier `knn_predict` on the test set."""
    test_x, test_y = check_labeled_features(test_features, test_labels, "test")
    predictions = knn_predict(
        train_features,
        train_labels,
        test_x,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        batch_size=batch_size,
    )
    return float(np.mean(predictions == test_y))
