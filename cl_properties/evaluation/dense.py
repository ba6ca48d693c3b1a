"""Scores for local features on images with per-pixel semantic masks (MultiDigits).

Semantic masks are int [N, H, W] with 0 = background and class + 1 on the pixels of a
digit of that class. Feature maps are float [N, h, w, C] (an encoder's block-group output
or `local_features.raw_patch_maps`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

from cl_properties.evaluation.kmeans import cluster_maps
from cl_properties.evaluation.linear import LinearEvalResult, linear_eval


def _check_maps_and_masks(feature_maps, semantic_masks, name: str) -> tuple[np.ndarray, np.ndarray]:
    feature_maps = np.asarray(feature_maps)
    semantic_masks = np.asarray(semantic_masks)
    if feature_maps.ndim != 4:
        raise ValueError(
            f"{name} feature maps must have shape [N, h, w, C], got {feature_maps.shape}"
        )
    if semantic_masks.ndim != 3 or semantic_masks.shape[0] != feature_maps.shape[0]:
        raise ValueError(
            f"{name} semantic masks must have shape [{feature_maps.shape[0]}, H, W], "
            f"got {semantic_masks.shape}"
        )
    if not np.issubdtype(semantic_masks.dtype, np.integer) or semantic_masks.min() < 0:
        raise ValueError(f"{name} semantic masks must hold integers >= 0")
    return feature_maps, semantic_masks


def downsample_masks(semantic_masks, size: tuple[int, int], *, num_labels: int) -> np.ndarray:
    """Majority label of each feature cell: int [N, H, W] -> int32 [N, h, w].

    Each label's area fraction per cell comes from an area resize of the one-hot mask
    (cells of H/h x W/w pixels, fractional at the borders when h does not divide H); the
    cell takes the label with the largest fraction, the smaller label on ties.
    """
    masks = np.asarray(semantic_masks)
    if masks.max() >= num_labels:
        raise ValueError(f"mask label {masks.max()} is out of range for {num_labels} labels")
    best_fraction = np.full((masks.shape[0], *size), -1.0, np.float32)
    best_label = np.zeros((masks.shape[0], *size), np.int32)
    # One label at a time: a full one-hot [N, H, W, num_labels] would not fit for large N.
    for label in range(num_labels):
        fraction = tf.image.resize(
            tf.cast(masks == label, tf.float32)[..., None], size, method="area"
        )
        fraction = np.asarray(fraction)[..., 0]
        better = fraction > best_fraction
        best_label[better] = label
        best_fraction[better] = fraction[better]
    return best_label


def _foreground_locations(feature_maps: np.ndarray, masks: np.ndarray, num_classes: int):
    """Features [M, C] and digit classes [M] of the cells whose majority label is a digit."""
    cell_labels = downsample_masks(masks, feature_maps.shape[1:3], num_labels=num_classes + 1)
    foreground = cell_labels > 0
    return feature_maps[foreground], cell_labels[foreground] - 1


def dense_probe(
    train_feature_maps,
    train_semantic_masks,
    test_feature_maps,
    test_semantic_masks,
    *,
    num_classes: int,
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float = 0.1,
    seed: int = 0,
) -> LinearEvalResult:
    """Dense linear probe: digit class from the feature vector at each foreground location.

    The masks are reduced to the feature resolution by `downsample_masks` (majority label
    of each cell); the cells whose label is a digit (> 0) become examples (feature vector,
    label - 1). A softmax linear classifier is trained on the train images' cells with
    `linear_eval` (standardized features, Nesterov SGD, cosine decay) and scored on the
    held-out test images' foreground cells.

    Returns:
      LinearEvalResult with the accuracies over foreground cells of the train/test images.
    """
    train_maps, train_masks = _check_maps_and_masks(
        train_feature_maps, train_semantic_masks, "train"
    )
    test_maps, test_masks = _check_maps_and_masks(test_feature_maps, test_semantic_masks, "test")
    if train_maps.shape[-1] != test_maps.shape[-1]:
        raise ValueError(
            f"train and test channels differ: {train_maps.shape[-1]} vs {test_maps.shape[-1]}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    train_x, train_y = _foreground_locations(train_maps, train_masks, num_classes)
    test_x, test_y = _foreground_locations(test_maps, test_masks, num_classes)
    if train_x.shape[0] == 0 or test_x.shape[0] == 0:
        raise ValueError("no foreground cell at the feature resolution in the train or test masks")
    return linear_eval(
        train_x,
        train_y,
        test_x,
        test_y,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        num_classes=num_classes,
    )


def ari_scores(cluster_ids, semantic_masks) -> dict[str, float]:
    """Adjusted Rand index between cluster maps and semantic masks, averaged over images.

    `all`: ARI over all pixels of each image. `foreground`: ARI over the digit pixels
    (mask > 0) only, averaged over the images that have any (NaN when none has). Uses
    `sklearn.metrics.adjusted_rand_score`, which ignores how the ids are numbered.

    Args:
      cluster_ids: int [N, H, W] cluster map per image.
      semantic_masks: int [N, H, W].
    """
    clusters = np.asarray(cluster_ids)
    masks = np.asarray(semantic_masks)
    if clusters.ndim != 3 or clusters.shape != masks.shape:
        raise ValueError(
            f"cluster maps {clusters.shape} and masks {masks.shape} must both be [N, H, W]"
        )
    if clusters.shape[0] == 0:
        raise ValueError("no images to score")
    all_scores, foreground_scores = [], []
    for cluster, mask in zip(clusters, masks, strict=True):
        all_scores.append(adjusted_rand_score(mask.ravel(), cluster.ravel()))
        foreground = mask > 0
        if foreground.any():
            foreground_scores.append(adjusted_rand_score(mask[foreground], cluster[foreground]))
    return {
        "all": float(np.mean(all_scores)),
        "foreground": float(np.mean(foreground_scores)) if foreground_scores else float("nan"),
    }


def kmeans_ari(
    feature_maps,
    semantic_masks,
    k: int,
    seed: int,
    *,
    iterations: int = 20,
    normalize: bool = True,
    batch_size: int = 256,
) -> dict[str, float]:
    """k-means agreement with the semantic masks: `cluster_maps` per image, then `ari_scores`.

    The feature vectors of each image are clustered into k groups (k-means++ with `seed`,
    `iterations` Lloyd steps), the cluster map is upsampled to the mask size, and the ARI
    with the mask is averaged over images, on all pixels and on digit pixels. Images are
    clustered `batch_size` at a time to bound memory.
    """
    maps, masks = _check_maps_and_masks(feature_maps, semantic_masks, "kmeans_ari")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    clusters = np.concatenate(
        [
            np.asarray(
                cluster_maps(
                    maps[start : start + batch_size],
                    k,
                    image_size=masks.shape[1:3],
                    seed=seed,
                    iterations=iterations,
                    normalize=normalize,
                )
            )
            for start in range(0, maps.shape[0], batch_size)
        ]
    )
    return ari_scores(clusters, masks)
