"""Handwritten-digit sources for the controlled datasets (RandBit, DigitOnImages, MultiDigits).

Offline default: scikit-learn's bundled digits (1,797 images of 8x8 pixels, values 0..16),
scaled to [0, 1] and resized bilinearly, with a seeded stratified train/test split. At scale:
MNIST through TFDS. Both are registered datasets ("sklearn", "digits" and "mnist" in
`cl_properties.data.registry`), whose records `sources.source_arrays` turns into the arrays
of `DigitArrays`, so every builder accepts either.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import sklearn.datasets
import tensorflow as tf
from sklearn.model_selection import train_test_split

SPLITS = ("train", "test", "all")
NATIVE_SIZE = 8  # scikit-learn digits are 8x8


class DigitArrays(NamedTuple):
    """Digit images float32 [N, H, W, 1] in [0, 1] and their classes int32 [N] in 0..9."""

    images: np.ndarray
    labels: np.ndarray


def resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of [N, H, W, C] images to [N, size, size, C].

    Returns float32 clipped to [0, 1]; images already of that size are returned unchanged.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if images.shape[1:3] == (size, size):
        return images
    resized = tf.image.resize(images, (size, size), method="bilinear", antialias=True)
    return np.clip(resized.numpy(), 0.0, 1.0).astype(np.float32)


def load_digits(
    split: str, *, size: int = 28, seed: int = 0, test_fraction: float = 0.2
) -> DigitArrays:
    """scikit-learn's digits as `DigitArrays` of `size` x `size` pixels (offline, no download).

    Pixel values are `v / 16` (v in 0..16), then resized bilinearly (size=8 keeps the native
    images). The train/test split is stratified by class and fixed by `seed`:
    `test` holds ceil(1797 * test_fraction) images (360 for 0.2), `train` the rest (1,437);
    `all` returns the 1,797 images in the library's order.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sklearn.datasets.load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]
    labels = bunch.target.astype(np.int32)
    if split != "all":
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
        )
        idx = np.sort(train_idx if split == "train" else test_idx)
        images, labels = images[idx], labels[idx]
    return DigitArrays(resize_digits(images, size), labels)


def digit_pool(images: np.ndarray, labels: np.ndarray, pool_size: int, *, seed: int) -> DigitArrays:
    """`pool_size` pairwise-distinct digit images chosen uniformly (seeded) from a source.

    Duplicated images in the source count once, so the pool holds exactly `pool_size`
    unique images (the knob K of DigitOnImages: K=1 means one digit image for everything).
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int32)
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"need images [N, H, W, C] and labels [N], got {images.shape} and {labels.shape}"
        )
    _, distinct = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    if not 1 <= pool_size <= len(distinct):
        raise ValueError(
            f"pool_size must be in 1..{len(distinct)} (distinct images available), got {pool_size}"
        )
    chosen = np.random.default_rng(seed).choice(np.sort(distinct), pool_size, replace=False)
    return DigitArrays(images[chosen], labels[chosen])
