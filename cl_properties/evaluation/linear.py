"""Offline linear evaluation of a frozen encoder: on precomputed features of the plain images
(fast), or on freshly augmented images (SimCLR's own protocol)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf


class LinearEvalResult(NamedTuple):
    """Top-1 accuracies of the trained linear classifier."""

    train_accuracy: float
    test_accuracy: float


def check_labeled_features(
    features, labels, name: str, *, rank: int = 2, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validates a (features [N, ...], labels [N]) pair and returns them as numpy arrays:
    finite features (a NaN would turn every prediction into class 0, an accuracy that looks
    like a number), integer labels in [0, num_classes)."""
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != rank:
        raise ValueError(f"{name} features must have rank {rank}, got shape {features.shape}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"{name} labels must have shape [{features.shape[0]}] to match the features, "
            f"got {labels.shape}"
        )
    if features.shape[0] == 0:
        raise ValueError(f"{name} set is empty")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError(f"{name} labels must be >= 0, got {labels.min()}")
    if num_classes is not None and labels.max() >= num_classes:
        raise ValueError(f"num_classes={num_classes} but a {name} label equals {labels.max()}")
    return check_finite(features, name), labels


def check_finite(features: np.ndarray, name: str) -> np.ndarray:
    """`features`, unless they hold a NaN or Inf: ValueError naming the set."""
    if np.issubdtype(features.dtype, np.inexact) and not np.isfinite(features).all():
        bad = np.size(features) - int(np.isfinite(features).sum())
        raise ValueError(f"{name} features hold {bad} NaN or Inf values: a diverged encoder?")
    return features


def _classifier_and_optimizer(
    num_classes: int,
    dim: int,
    kernel_initializer: str | keras.initializers.Initializer,
    *,
    learning_rate: float,
    batch_size: int,
    decay_steps: int,
) -> tuple[keras.layers.Dense, keras.optimizers.SGD]:
    """A built float32 Dense classifier (zero bias) on `dim` features and its built Nesterov
    SGD (momentum 0.9): learning rate `learning_rate * batch_size / 256`, cosine to 0 over
    `decay_steps`."""
    classifier = keras.layers.Dense(
        num_classes,
        kernel_initializer=kernel_initializer,
        bias_initializer="zeros",
        dtype="float32",
    )
    classifier.build((None, dim))
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate * batch_size / 256.0, decay_steps=decay_steps
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    optimizer.build(classifier.trainable_variables)
    return classifier, optimizer


def _accuracy(classifier: keras.layers.Dense, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of `classifier` on features x [N, D] with labels y [N]."""
    predictions = np.argmax(np.asarray(classifier(tf.constant(x, tf.float32))), axis=1)
    return float(np.mean(predictions == y))


def linear_eval(
    train_features,
    train_labels,
    test_features,
    test_labels,
    *,
    epochs: int = 90,
    batch_size: int = 256,
    learning_rate: float = 0.1,
    seed: int = 0,
    num_classes: int | None = None,
    standardize: bool = True,
    weight_decay: float = 0.0,
) -> LinearEvalResult:
    """Trains a softmax linear classifier on frozen features and reports top-1 accuracy.

    SimCLR linear-evaluation protocol on precomputed features: logits = x W + b (a Keras
    `Dense`), mean softmax cross-entropy, Nesterov momentum SGD (momentum 0.9) with the
    learning rate `learning_rate * batch_size / 256` decayed to 0 by a cosine over all
    steps, no warmup. Each epoch visits the training set in a fresh order (a stateless
    permutation from (seed, epoch)); the last batch of an epoch may be partial.

    Args:
      train_features, test_features: float [N, D] arrays.
      train_labels, test_labels: int [N] class ids.
      num_classes: number of classes; default 1 + the largest label of either split.
      standardize: divide each centred feature by its training std (a BatchNorm without
        affine parameters, with the exact training-set statistics), so that one learning
        rate suits features of any scale.
      weight_decay: coefficient c of the L2 penalty c/2 * ||W||^2 (kernel only) added to
        the loss; 0 by default, as in SimCLR's linear evaluation.

    Returns:
      LinearEvalResult(train_accuracy, test_accuracy).
    """
    train_x, train_y = check_labeled_features(
        train_features, train_labels, "train", num_classes=num_classes
    )
    # Inferred from the training labels only: a class seen only in testing is an error.
    num_classes = int(train_y.max()) + 1 if num_classes is None else num_classes
    test_x, test_y = check_labeled_features(
        test_features, test_labels, "test", num_classes=num_classes
    )
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            f"train and test feature dims differ: {train_x.shape[1]} vs {test_x.shape[1]}"
        )
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if learning_rate <= 0 or weight_decay < 0:
        raise ValueError(
            f"need learning_rate > 0 and weight_decay >= 0, got {learning_rate}, {weight_decay}"
        )

    train_x = train_x.astype(np.float32)
    test_x = test_x.astype(np.float32)
    if standardize:
        mean = train_x.mean(axis=0)
        std = train_x.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)  # constant features are only centred
        train_x = (train_x - mean) / std
        test_x = (test_x - mean) / std

    n = train_x.shape[0]
    steps_per_epoch = -(-n // batch_size)
    classifier, optimizer = _classifier_and_optimizer(
        num_classes,
        train_x.shape[1],
        keras.initializers.RandomNormal(stddev=0.01, seed=seed),
        learning_rate=learning_rate,
        batch_size=batch_size,
        decay_steps=epochs * steps_per_epoch,
    )

    @tf.function
    def train(x: tf.Tensor, y: tf.Tensor) -> None:
        # The whole run is one graph call: per-step Python overhead would dominate on small data.
        for epoch in tf.range(epochs):
            noise = tf.random.stateless_uniform(
                [n], seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            )
            order = tf.argsort(noise, stable=True)
            for step in tf.range(steps_per_epoch):
                idx = order[step * batch_size : (step + 1) * batch_size]
                xb, yb = tf.gather(x, idx), tf.gather(y, idx)
                with tf.GradientTape() as tape:
                    logits = classifier(xb)
                    loss = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits)
                    )
                    if weight_decay > 0:
                        loss += 0.5 * weight_decay * tf.reduce_sum(tf.square(classifier.kernel))
                grads = tape.gradient(loss, classifier.trainable_variables)
                optimizer.apply_gradients(zip(grads, classifier.trainable_variables, strict=True))

    train(tf.constant(train_x), tf.constant(train_y, tf.int32))
    return LinearEvalResult(
        _accuracy(classifier, train_x, train_y), _accuracy(classifier, test_x, test_y)
    )


def linear_eval_augmented(
    represent: Callable[[tf.Tensor], tf.Tensor],
    train_batches: tf.data.Dataset,
    steps: int,
    train_features,
    train_labels: Mapping[str, Any],
    test_features,
    test_labels: Mapping[str, Any],
    *,
    num_classes: Mapping[str, int],
    batch_size: int,
    learning_rate: float = 0.1,
) -> dict[str, LinearEvalResult]:
    """SimCLR's own linear evaluation (`tf2/run.py`, linear-eval mode): linear classifiers
    on the frozen encoder, trained on freshly augmented training images.

    One classifier per key of `num_classes` (key -> number of classes). `train_batches`
    yields `(images [B, ...], labels {key: [B]})`, the training images augmented anew for
    each batch (SimCLR: random crop and flip); every classifier (zero-initialized, as
    SimCLR's `zero_init_logits_layer`, no feature standardization) trains for `steps` steps
    on the same `represent(images)`, one encoder pass per batch, with mean softmax
    cross-entropy and Nesterov momentum SGD (momentum 0.9, learning rate
    `learning_rate * batch_size / 256` decayed to 0 by a cosine). Classifiers are
    independent: a key's result is the one it would get alone. Accuracies are measured on
    the un-augmented `train_features` / `test_features` (`represent` of the plain images)
    with `train_labels[key]` / `test_labels[key]` (int [N]). Returns key ->
    LinearEvalResult. ValueError for no keys, a key the labels lack, steps < 1 or
    mismatched arrays.
    """
    if not num_classes:
        raise ValueError("num_classes must map at least one label key to its classes")
    missing = [k for k in num_classes if k not in train_labels or k not in test_labels]
    if missing:
        raise ValueError(f"train_labels and test_labels lack the keys {missing}")
    if steps < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(
            f"need steps, batch_size >= 1 and learning_rate > 0, got {steps}, {batch_size}, "
            f"{learning_rate}"
        )
    train_y, test_y = {}, {}
    for key in num_classes:
        train_x, train_y[key] = check_labeled_features(
            train_features, train_labels[key], f"train {key!r}", num_classes=num_classes[key]
        )
        test_x, test_y[key] = check_labeled_features(
            test_features, test_labels[key], f"test {key!r}", num_classes=num_classes[key]
        )
    trained = {
        key: _classifier_and_optimizer(
            classes,
            train_x.shape[1],
            "zeros",
            learning_rate=learning_rate,
            batch_size=batch_size,
            decay_steps=steps,
        )
        for key, classes in num_classes.items()
    }

    @tf.function
    def train_step(images: tf.Tensor, labels: Mapping[str, tf.Tensor]) -> None:
        features = tf.stop_gradient(tf.cast(represent(images), tf.float32))
        for key, (classifier, optimizer) in trained.items():
            with tf.GradientTape() as tape:
                logits = classifier(features)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        labels=tf.cast(labels[key], tf.int32), logits=logits
                    )
                )
            grads = tape.gradient(loss, classifier.trainable_variables)
            optimizer.apply_gradients(zip(grads, classifier.trainable_variables, strict=True))

    for images, labels in train_batches.take(steps):
        train_step(images, {key: labels[key] for key in trained})
    return {
        key: LinearEvalResult(
            _accuracy(classifier, train_x, train_y[key]), _accuracy(classifier, test_x, test_y[key])
        )
        for key, (classifier, _) in trained.items()
    }
