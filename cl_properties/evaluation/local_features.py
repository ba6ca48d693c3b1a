"""Local features from global objectives (paper section 3): per-block-group scores.

Given encoders (e.g. a contrastively trained one and the same architecture at random
initialization) and images with per-pixel semantic masks (MultiDigits), every block group
(feature tap) of every encoder, and raw pixel patches on the same grids, is scored by

- a dense linear probe (`dense.dense_probe`): the digit class from the feature vector at each
  foreground location of held-out images, all taps evaluated on one common probe grid;
- k-means agreement (`dense.kmeans_ari`): adjusted Rand index between per-image k-means
  cluster maps of the tap and the semantic mask, on all pixels and on digit pixels.

Masks follow `cl_properties.evaluation.dense`: int [N, H, W], 0 = background, class + 1 on
the pixels of a digit of that class.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from cl_properties.evaluation.dense import dense_probe, downsample_masks, kmeans_ari
from cl_properties.evaluation.kmeans import cluster_maps
from cl_properties.models.taps import feature_taps, tap_names

RAW_PATCHES = "raw_patches"  # the model name of the raw-pixel baseline in score rows


@dataclasses.dataclass(frozen=True)
class LocalFeatureConfig:
    """How local features are scored.

    probe_grid: side of the square grid on which every tap is probed (its feature map is
      upsampled by nearest neighbour, or subsampled, to it); None: the finest tap's grid.
      One grid for all taps gives every tap the same probe locations, and coarse taps keep
      their foreground locations (a 4 x 4 map of a 56 px canvas has almost no cell that is
      mostly digit, so the majority-label rule would leave nothing to probe).
    raw_window: side in pixels of the raw patch around each cell centre; None: the cell
      itself (ceil(H / h) pixels, non-overlapping when h divides H).
    ari_k: clusters per image for the ARI scores.
    """

    ari_k: int = 4
    kmeans_iterations: int = 20
    probe_grid: int | None = None
    probe_epochs: int = 30
    probe_learning_rate: float = 0.1
    raw_window: int | None = None
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        for name in ("ari_k", "probe_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kmeans_iterations < 0:
            raise ValueError(f"kmeans_iterations must be >= 0, got {self.kmeans_iterations}")
        for name in ("probe_grid", "raw_window"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be None or >= 1, got {getattr(self, name)}")
        if self.probe_learning_rate <= 0:
            raise ValueError(f"probe_learning_rate must be > 0, got {self.probe_learning_rate}")


def _check_images(images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must have shape [N, H, W, C] with N >= 1, got {images.shape}")
    return images


def match_channels(images, channels: int) -> np.ndarray:
    """Images [N, H, W, c] as the encoder's `channels`: grey (c = 1) is repeated to fill
    them (an RGB encoder sees R = G = B); otherwise c must equal `channels`."""
    images = _check_images(images)
    if images.shape[-1] == channels:
        return images
    if images.shape[-1] == 1:
        return np.repeat(images, channels, axis=-1)
    raise ValueError(f"images have {images.shape[-1]} channels, the encoder expects {channels}")


def tap_feature_maps(
    encoder: keras.Model,
    images,
    *,
    names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """The encoder's block-group feature maps {tap name: float [N, h, w, C]}, in tap order.

    Runs `feature_taps(encoder, names)` with `training=False` (BatchNorm moving statistics)
    over `images` [N, H, W, c] in batches; grey images are repeated to the encoder's
    channels (`match_channels`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    taps = feature_taps(encoder, names)
    images = match_channels(images, encoder.input_shape[-1])
    chunks = [
        {
            name: np.asarray(value)
            for name, value in taps(images[i : i + batch_size], training=False).items()
        }
        for i in range(0, len(images), batch_size)
    ]
    order = tap_names(encoder) if names is None else list(names)
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in order}


def raw_patch_maps(images, grid: tuple[int, int], *, window: int | None = None) -> np.ndarray:
    """Raw-pixel feature maps on an h x w grid: the window x window pixels around each cell.

    Cell (i, j) of an H x W image has centre ((i + 1/2) H / h, (j + 1/2) W / w); its
    feature is the window whose top-left pixel is (floor(centre - window / 2)) in each
    axis, zero-padded outside the image, flattened in (row, column, channel) order.
    `window=None` takes the cell size ceil(H / h) (one value, from the larger of the two
    axes' cell sizes): when h and w divide H and W this is exactly space-to-depth
    (`tf.nn.space_to_depth`, the same channel order).

    Returns:
      float32 [N, h, w, window * window * C].
    """
    images = _check_images(images)
    n, height, width, channels = images.shape
    h, w = grid
    if not (1 <= h <= height and 1 <= w <= width):
        raise ValueError(f"grid {grid} must be between 1 and the image size {(height, width)}")
    if window is None:
        window = max(math.ceil(height / h), math.ceil(width / w))
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    padded = np.pad(images, ((0, 0), (window, window), (window, window), (0, 0)))

    def starts(cells: int, size: int) -> np.ndarray:
        # Exact rational arithmetic: (2i + 1) size / (2 cells) - window / 2, floored.
        numerators = (2 * np.arange(cells) + 1) * size - window * cells
        return np.floor_divide(numerators, 2 * cells) + window  # + window: the padding

    rows = starts(h, height)[:, None] + np.arange(window)  # [h, window]
    cols = starts(w, width)[:, None] + np.arange(window)  # [w, window]
    patches = padded[:, rows[:, None, :, None], cols[None, :, None, :], :]  # [N, h, w, p, p, C]
    return patches.reshape(n, h, w, window * window * channels)


def resize_nearest(feature_maps, size: tuple[int, int]) -> np.ndarray:
    """Feature maps [N, h, w, C] resampled to [N, H', W', C] by nearest neighbour.

    Cell (i, j) of the output takes input cell (floor((i + 1/2) h / H'), floor((j + 1/2) w
    / W')), the cell containing its centre: the rule `kmeans.cluster_maps` uses to draw
    cluster maps on the image, so a probe location sees the feature a pixel there is drawn with.
    """
    maps = np.asarray(feature_maps)
    if maps.ndim != 4:
        raise ValueError(f"feature maps must have shape [N, h, w, C], got {maps.shape}")
    out_h, out_w = size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be positive, got {size}")
    rows = ((2 * np.arange(out_h) + 1) * maps.shape[1]) // (2 * out_h)
    cols = ((2 * np.arange(out_w) + 1) * maps.shape[2]) // (2 * out_w)
    return maps[:, rows][:, :, cols]


def score_feature_maps(
    train_maps,
    train_masks,
    test_maps,
    test_masks,
    *,
    num_classes: int,
    probe_grid: tuple[int, int],
    config: LocalFeatureConfig = LocalFeatureConfig(),
) -> dict[str, float]:
    """The scores of one kind of feature map (one tap of one encoder, or raw patches).

    - `dense_probe`, `dense_probe_train`: test/train accuracy of `dense.dense_probe` on the
      maps resampled to `probe_grid` (`resize_nearest`), i.e. over the probe-grid cells
      whose majority mask label is a digit; `probe_locations` counts the test ones.
    - `ari_all`, `ari_foreground`: `dense.kmeans_ari` of the test maps at their own
      resolution with k = `config.ari_k` (cluster maps upsampled to the masks).
    """
    train_probe = resize_nearest(train_maps, probe_grid)
    test_probe = resize_nearest(test_maps, probe_grid)
    probe = dense_probe(
        train_probe,
        train_masks,
        test_probe,
        test_masks,
        num_classes=num_classes,
        epochs=config.probe_epochs,
        batch_size=config.batch_size,
        learning_rate=config.probe_learning_rate,
        seed=config.seed,
    )
    ari = kmeans_ari(
        test_maps,
        test_masks,
        config.ari_k,
        config.seed,
        iterations=config.kmeans_iterations,
        batch_size=config.batch_size,
    )
    cell_labels = downsample_masks(test_masks, probe_grid, num_labels=num_classes + 1)
    return {
        "dense_probe": float(probe.test_accuracy),
        "dense_probe_train": float(probe.train_accuracy),
        "ari_all": ari["all"],
        "ari_foreground": ari["foreground"],
        "probe_locations": int((cell_labels > 0).sum()),
    }


def local_feature_scores(
    encoders: Mapping[str, keras.Model],
    train_images,
    train_masks,
    test_images,
    test_masks,
    *,
    num_classes: int,
    config: LocalFeatureConfig = LocalFeatureConfig(),
    raw_patches: bool = True,
) -> list[dict]:
    """Scores every tap of every encoder, and raw pixel patches on each tap's grid.

    The dense probe trains on the train images' foreground locations and is tested on the
    test images'; the ARI is measured on the test images. Raw patches (`raw_patch_maps`,
    `config.raw_window`) are taken on the grid of each tap of the first encoder, so each
    depth has a pixel baseline of the same resolution.

    Returns:
      One row per (model, tap), encoders in the given order then "raw_patches": {"model",
      "tap", "depth" (1 = first tap), "grid" ("hxw"), "channels"} plus the
      `score_feature_maps` scores.
    """
    if not encoders:
        raise ValueError("encoders is empty: nothing to score")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    train_images, test_images = _check_images(train_images), _check_images(test_images)
    maps = {
        name: (
            tap_feature_maps(encoder, train_images, batch_size=config.batch_size),
            tap_feature_maps(encoder, test_images, batch_size=config.batch_size),
        )
        for name, encoder in encoders.items()
    }
    first_train, _ = next(iter(maps.values()))
    if raw_patches:
        maps[RAW_PATCHES] = tuple(
            {
                tap: raw_patch_maps(images, value.shape[1:3], window=config.raw_window)
                for tap, value in first_train.items()
            }
            for images in (train_images, test_images)
        )
    if config.probe_grid is None:
        side = max(max(value.shape[1:3]) for train, _ in maps.values() for value in train.values())
    else:
        side = config.probe_grid
    rows = []
    for model, (train, test) in maps.items():
        for depth, tap in enumerate(train, start=1):
            scores = score_feature_maps(
                train[tap],
                train_masks,
                test[tap],
                test_masks,
                num_classes=num_classes,
                probe_grid=(side, side),
                config=config,
            )
            h, w, channels = train[tap].shape[1:]
            rows.append(
                {
                    "model": model,
                    "tap": tap,
                    "depth": depth,
                    "grid": f"{h}x{w}",
                    "channels": channels,
                    **scores,
                }
            )
    return rows


def overlay_maps(
    encoder: keras.Model, images, ks: Sequence[int], *, seed: int = 0, iterations: int = 20
) -> dict[tuple[str, int], np.ndarray]:
    """{(tap, k): int [N, H, W]} per-image k-means cluster maps of every tap, upsampled to
    the image (`kmeans.cluster_maps`), for `plotting.overlays.save_cluster_overlay_grid`."""
    images = _check_images(images)
    taps = tap_feature_maps(encoder, images)
    return {
        (tap, k): np.asarray(
            cluster_maps(value, k, image_size=images.shape[1:3], seed=seed, iterations=iterations)
        )
        for tap, value in taps.items()
        for k in ks
    }
