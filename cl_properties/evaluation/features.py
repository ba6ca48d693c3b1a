"""Feature extraction from a frozen model over an eval dataset."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf


def _accepts_training(fn: Callable) -> bool:
    """Whether `fn` can be called with a `training=` keyword."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def extract_features(
    model_or_fn: keras.Model | Callable[..., tf.Tensor],
    dataset: tf.data.Dataset | Iterable,
    *,
    label_keys: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Runs a frozen model over every batch of an eval dataset.

    `dataset` yields eval batches `(image [B, H, W, C], labels {name: int32 [B]})`; a partial
    last batch is kept, so all N rows come back in dataset order. `model_or_fn` is a Keras
    layer/model (called as `model(image, training=False)` inside one `tf.function`) or any
    callable mapping images to features (called with `training=False` when its signature
    accepts it, eagerly otherwise). The model's output may have any rank: pooled [B, D]
    features give [N, D], feature maps [B, h, w, C] give [N, h, w, C].

    Args:
      label_keys: label names to return; None returns every label of the dataset.

    Returns:
      (features, labels): features float array [N, ...]; labels maps name -> int array [N].
    """
    if isinstance(model_or_fn, keras.Layer):
        # One traced graph for all batches; only the partial last batch may retrace.
        forward = tf.function(lambda x: model_or_fn(x, training=False), reduce_retracing=True)
    elif callable(model_or_fn):
        forward = (
            (lambda x: model_or_fn(x, training=False))
            if _accepts_training(model_or_fn)
            else model_or_fn
        )
    else:
        raise ValueError(
            f"model_or_fn must be a keras.Model or a callable, got {type(model_or_fn)}"
        )

    feature_chunks: list[np.ndarray] = []
    label_chunks: dict[str, list[np.ndarray]] = {}
    for element in dataset:
        if not (
            isinstance(element, (tuple, list))
            and len(element) == 2
            and isinstance(element[1], dict)
        ):
            raise ValueError(
                "dataset must yield eval batches (image, labels) with labels a dict name -> [B]"
            )
        images, labels = element
        keys = list(labels) if label_keys is None else list(label_keys)
        missing = [key for key in keys if key not in labels]
        if missing:
            raise ValueError(f"label_keys {missing} are not in the dataset labels {sorted(labels)}")
        features = np.asarray(forward(images))
        batch = int(images.shape[0])
        if features.ndim < 1 or features.shape[0] != batch:
            raise ValueError(
                f"model output has shape {features.shape}, expected a leading batch dim {batch}"
            )
        feature_chunks.append(features)
        for key in keys:
            label_chunks.setdefault(key, []).append(np.asarray(labels[key]).reshape(batch))
    if not feature_chunks:
        raise ValueError("dataset is empty: no batches to extract features from")
    return (
        np.concatenate(feature_chunks, axis=0),
        {key: np.concatenate(chunks, axis=0) for key, chunks in label_chunks.items()},
    )
