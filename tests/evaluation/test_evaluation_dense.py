import numpy as np
import pytest

from cl_properties.evaluation import (
    ari_scores,
    dense_probe,
    downsample_masks,
    kmeans_ari,
)

NUM_CLASSES = 10


def _block_masks(n: int, cells: int, cell: int, seed: int) -> np.ndarray:
    """Masks [n, cells*cell, cells*cell] of cell-aligned blocks: background or digit class + 1."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, NUM_CLASSES + 1, size=(n, cells, cells))
    grid[rng.random(grid.shape) < 0.3] = 0
    return np.repeat(np.repeat(grid, cell, axis=1), cell, axis=2).astype(np.int32)


def test_downsample_masks_takes_the_majority_label_of_each_cell():
    mask = np.array([[[0, 0, 3, 3], [0, 2, 3, 1], [2, 2, 0, 0], [2, 0, 1, 0]]], np.int32)
    np.testing.assert_array_equal(downsample_masks(mask, (2, 2), num_labels=4), [[[0, 3], [2, 0]]])
    # 2 vs 2 tie between labels 1 and 2 in a cell: the smaller label wins.
    np.testing.assert_array_equal(
        downsample_masks(np.array([[[2, 1], [1, 2]]]), (1, 1), num_labels=3), [[[1]]]
    )


def test_dense_probe_is_perfect_on_features_encoding_the_class_map():
    masks = _block_masks(80, 7, 4, seed=0)
    features = np.eye(NUM_CLASSES + 1, dtype=np.float32)[
        downsample_masks(masks, (7, 7), num_labels=NUM_CLASSES + 1)
    ]
    result = dense_probe(
        features[:60], masks[:60], features[60:], masks[60:], num_classes=NUM_CLASSES, epochs=5
    )
    assert result.test_accuracy >= 0.98 and result.train_accuracy >= 0.98


def test_dense_probe_is_near_chance_on_random_features():
    masks = _block_masks(80, 7, 4, seed=1)
    features = np.random.default_rng(2).normal(size=(80, 7, 7, 16)).astype(np.float32)
    result = dense_probe(
        features[:60], masks[:60], features[60:], masks[60:], num_classes=NUM_CLASSES, epochs=5
    )
    assert result.test_accuracy < 0.2


def test_ari_is_one_for_a_permuted_perfect_clustering_and_zero_for_random():
    masks = _block_masks(4, 8, 8, seed=3)
    permutation = np.random.default_rng(4).permutation(NUM_CLASSES + 1) + 5
    assert ari_scores(permutation[masks], masks) == {
        "all": pytest.approx(1.0),
        "foreground": pytest.approx(1.0),
    }
    random_clusters = np.random.default_rng(5).integers(0, 4, size=masks.shape)
    scores = ari_scores(random_clusters, masks)
    assert abs(scores["all"]) < 0.05 and abs(scores["foreground"]) < 0.05


def test_ari_foreground_is_nan_without_digit_pixels():
    masks = np.zeros((2, 8, 8), np.int32)
    scores = ari_scores(np.zeros_like(masks), masks)
    assert scores["all"] == 1.0 and np.isnan(scores["foreground"])


def test_kmeans_ari_recovers_a_class_map_encoded_in_the_features():
    rng = np.random.default_rng(6)
    masks = np.zeros((5, 32, 32), np.int32)
    for mask in masks:  # background and two digits, aligned with the 8 x 8 feature cells
        first, second = rng.choice(NUM_CLASSES, size=2, replace=False) + 1
        mask[:16, :16], mask[16:, 8:24] = first, second
    features = np.eye(NUM_CLASSES + 1, dtype=np.float32)[
        downsample_masks(masks, (8, 8), num_labels=NUM_CLASSES + 1)
    ]
    scores = kmeans_ari(features, masks, 3, seed=0, batch_size=2)
    assert scores == {"all": pytest.approx(1.0), "foreground": pytest.approx(1.0)}


def test_bad_inputs():
    masks = _block_masks(4, 4, 2, seed=0)
    features = np.zeros((4, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match="masks"):
        dense_probe(features, masks[:3], features, masks, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="out of range"):
        dense_probe(features, masks, features, masks, num_classes=3)
    with pytest.raises(ValueError, match=r"\[N, h, w, C\]"):
        kmeans_ari(features[0], masks, 2, seed=0)
    with pytest.raises(ValueError, match="must both be"):
        ari_scores(masks[:, :2], masks)
    with pytest.raises(ValueError, match="k must be"):
        kmeans_ari(features, masks, 0, seed=0)
