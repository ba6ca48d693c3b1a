"""DigitOnImages (paper section 4): a digit pasted on every image of a background dataset.

Every background image gets ONE digit image, fixed for that image: it is drawn from a pool of
K unique digit images by a seeded hash of the image's index, so it is the same in every epoch,
every build and at evaluation. The digit is pasted at the 9 cells of a 3x3 grid (as in the
official colab, whose 224 px offsets are {33, 100, 168}; here the gaps are exactly equal:
{35, 98, 161}) or at one position fixed per image, and merged with the background by pixel
max (the colab) or clipped addition (the paper's text). Labels: {"object": background class,
"digit": digit class}. K is the knob: K=1 adds no information; large K makes the digit a
feature that competes with (and can suppress) the object feature.

`digit_on_images_map` returns a function for `tf.data.Dataset.map` over shared-format records
(TFDS backgrounds such as tf_flowers or imagenet2012); `make_digit_on_images` applies the same
function to numpy arrays (e.g. `make_shapes`), so both paths give identical images.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from cl_properties.data.digits import digit_pool, resize_digits
from cl_properties.data.hashing import index_hash
from cl_properties.data.sources import source_from_arrays

POSITIONS = ("grid", "random")
MERGES = ("max", "add")
GRID_CELLS = 3  # per side
# index_hash salts: which pool digit, and the row/column of a "random" position.
_SALT_DIGIT, _SALT_TOP, _SALT_LEFT = 0, 1, 2


class DigitOnImagesArrays(NamedTuple):
    """images float32 [N, H, W, C]; labels {"object", "digit"} int32 [N]; pool_index int32 [N]."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    pool_index: np.ndarray


def grid_offsets(canvas: int | tf.Tensor, digit_size: int, cells: int = GRID_CELLS) -> tf.Tensor:
    """Top-left offsets (int32 [cells]) of `cells` digits spread evenly along one side.

    With equal gaps g = (canvas - cells * d) / (cells + 1) before, between and after the
    digits: offset_j = floor(g + j * (d + g) + 0.5). E.g. canvas 64, d 8: [10, 28, 46].
    """
    canvas = tf.cast(canvas, tf.float64)
    d = tf.constant(digit_size, tf.float64)
    gap = (canvas - cells * d) / (cells + 1)
    j = tf.range(cells, dtype=tf.float64)
    return tf.cast(tf.floor(gap + j * (d + gap) + 0.5), tf.int32)


def pool_indices(indices: np.ndarray | tf.Tensor, pool_size: int, seed: int) -> tf.Tensor:
    """Pool digit of each image: index_hash(index, seed) mod K, int32 (fixed per image)."""
    if pool_size < 1:
        raise ValueError(f"pool_size (K) must be >= 1, got {pool_size}")
    return tf.cast(index_hash(indices, seed, _SALT_DIGIT) % pool_size, tf.int32)


def _hashed_offset(index: tf.Tensor, seed: int, salt: int, span: tf.Tensor) -> tf.Tensor:
    """index_hash(index, seed, salt) mod span, as int32 (a position fixed per image)."""
    return tf.cast(index_hash(index, seed, salt) % tf.cast(span, tf.int64), tf.int32)


def digit_on_images_map(
    pool_images: np.ndarray,
    pool_labels: np.ndarray,
    seed: int,
    *,
    positions: str = "grid",
    merge: str = "max",
    digit_size: int | None = None,
    object_key: str | None = None,
) -> Callable[[dict], dict]:
    """A `Dataset.map` function pasting a pool digit on each shared-format record.

    record {"image" [H, W, C] in [0, 1], "labels", "index"} ->
    {"image" [H, W, C], "labels": {"object": labels[object_key], "digit": digit class},
    "index"}. The pool image k = `pool_indices(index, K, seed)`, resized to `digit_size`
    (default: its own size), is placed at the 3x3 `grid_offsets` (positions="grid") or at one
    position drawn by hashing (index, seed) (positions="random"), then merged as
    max(background, digit) ("max") or clip(background + digit, 0, 1) ("add"); a grey digit
    is broadcast over colour channels. `object_key` defaults to the records' only label.
    Raises ValueError for an empty pool, unknown options, or a digit that does not fit.
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
    pool_images = np.asarray(pool_images, np.float32)
    pool_labels = np.asarray(pool_labels, np.int32)
    if pool_images.ndim != 4 or len(pool_images) < 1 or pool_labels.shape != pool_images.shape[:1]:
        raise ValueError(
            "need a non-empty pool: images [K, d, d, C] and labels [K], got "
            f"{pool_images.shape} and {pool_labels.shape}"
        )
    if digit_size is not None:
        pool_images = resize_digits(pool_images, digit_size)
    d = pool_images.shape[1]
    if pool_images.shape[2] != d:
        raise ValueError(f"pool digits must be square, got {pool_images.shape[1:3]}")
    k = len(pool_images)
    min_side = GRID_CELLS * d if positions == "grid" else d
    pool = tf.constant(pool_images)
    classes = tf.constant(pool_labels)

    def paste(record: dict) -> dict:
        image = tf.convert_to_tensor(record["image"], tf.float32)
        labels = record["labels"]
        key = object_key
        if key is None:
            if len(labels) != 1:
                raise ValueError(f"records have labels {sorted(labels)}: pass object_key")
            (key,) = labels
        static_hw = image.shape[:2]
        if static_hw.is_fully_defined() and min(static_hw) < min_side:
            raise ValueError(
                f"digits of {d} px at positions={positions!r} need images of at least "
                f"{min_side} px, got {tuple(static_hw)}"
            )
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        fits = tf.debugging.assert_greater_equal(
            tf.minimum(height, width), min_side, message="digit does not fit the image"
        )
        with tf.control_dependencies([fits]):
            height, width = tf.identity(height), tf.identity(width)
        index = record["index"]
        slot = pool_indices(index, k, seed)
        digit = pool[slot]
        if positions == "grid":
            tops, lefts = grid_offsets(height, d), grid_offsets(width, d)
            corners = [(tops[i], lefts[j]) for i in range(GRID_CELLS) for j in range(GRID_CELLS)]
        else:
            corners = [
                (
                    _hashed_offset(index, seed, _SALT_TOP, height - d + 1),
                    _hashed_offset(index, seed, _SALT_LEFT, width - d + 1),
                )
            ]
        # Grid cells never overlap, so the max over placed copies is a plain paste.
        layer = tf.reduce_max(
            tf.stack(
                [
                    tf.pad(digit, [[top, height - d - top], [left, width - d - left], [0, 0]])
                    for top, left in corners
                ]
            ),
            axis=0,
        )
        if merge == "max":
            merged = tf.maximum(image, layer)
        else:
            merged = tf.clip_by_value(image + layer, 0.0, 1.0)
        return {
            "image": merged,
            "labels": {"object": tf.cast(labels[key], tf.int32), "digit": classes[slot]},
            "index": index,
        }

    return paste


def make_digit_on_images(
    backgrounds: np.ndarray,
    bg_labels: np.ndarray,
    digits: np.ndarray,
    digit_labels: np.ndarray,
    *,
    pool_size: int,
    seed: int,
    positions: str = "grid",
    merge: str = "max",
    digit_size: int | None = None,
) -> DigitOnImagesArrays:
    """DigitOnImages over numpy backgrounds [N, H, W, C] in [0, 1] with labels [N].

    The pool is `digit_pool(digits, digit_labels, pool_size, seed=seed)` (K unique images);
    background i (index i) then gets exactly what `digit_on_images_map` gives a record with
    index i. Deterministic given `seed`. Raises ValueError for K < 1 or K larger than the
    number of distinct digit images, and for digits that do not fit.
    """
    backgrounds = np.asarray(backgrounds, np.float32)
    bg_labels = np.asarray(bg_labels, np.int32)
    if backgrounds.ndim != 4 or bg_labels.shape != backgrounds.shape[:1]:
        raise ValueError(
            f"need backgrounds [N, H, W, C] and labels [N], got {backgrounds.shape} "
            f"and {bg_labels.shape}"
        )
    if pool_size < 1:
        raise ValueError(f"pool_size (K) must be >= 1, got {pool_size}")
    pool = digit_pool(digits, digit_labels, pool_size, seed=seed)
    paste = digit_on_images_map(
        pool.images, pool.labels, seed, positions=positions, merge=merge, digit_size=digit_size
    )
    images, objects, digit_classes = [], [], []
    for batch in source_from_arrays(backgrounds, {"object": bg_labels}).map(paste).batch(1024):
        images.append(batch["image"].numpy())
        objects.append(batch["labels"]["object"].numpy())
        digit_classes.append(batch["labels"]["digit"].numpy())
    return DigitOnImagesArrays(
        np.concatenate(images),
        {"object": np.concatenate(objects), "digit": np.concatenate(digit_classes)},
        pool_indices(np.arange(len(backgrounds)), pool_size, seed).numpy(),
    )
