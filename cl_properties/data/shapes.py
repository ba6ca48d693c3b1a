"""Shapes: a procedural, offline object dataset (the background of DigitOnImages).

One filled shape per image, of random size and position, foreground and background grey
levels (or colours) random but contrasting, or a light shape on a dark background. The class
is the shape's kind. Generated with numpy from a seed, so it needs no download and is
identical on every machine.
"""

from __future__ import annotations

import types
from typing import Callable, NamedTuple, Sequence

import numpy as np

# The shape's extent is set by a "radius" r (half of the bounding box for most shapes).
_MASKS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "disk": lambda dy, dx, r: dx**2 + dy**2 <= r**2,
    "square": lambda dy, dx, r: np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * r,
    # Apex up at dy = -r, base at dy = +r, base half-width r.
    "triangle": lambda dy, dx, r: (np.abs(dy) <= r) & (2.0 * np.abs(dx) <= dy + r),
    "cross": lambda dy, dx, r: (
        ((np.abs(dx) <= r / 3) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r / 3) & (np.abs(dx) <= r))
    ),
    "ring": lambda dy, dx, r: (dx**2 + dy**2 <= r**2) & (dx**2 + dy**2 >= (0.55 * r) ** 2),
    "diamond": lambda dy, dx, r: np.abs(dx) + np.abs(dy) <= r,
}
SHAPE_NAMES = tuple(_MASKS)
DEFAULT_CLASSES = ("disk", "square", "triangle", "cross")
# `make_shapes` options of the grey shapes (the registry's "grey_shapes"), the studies' testbed
# where scikit-learn's digits are too easy (an untrained ConvN probes them at ~0.95): the
# backgrounds of DigitOnImages before 2026-12-06 without the digits, every kind, a light shape
# on a dark background, radius 0.2-0.35 of the side, centred within +-0.2 of it.
GREY_SHAPES = types.MappingProxyType(
    {
        "classes": tuple(_MASKS),
        "radius_range": (0.2, 0.35),
        "max_offset": 0.2,
        "light_on_dark": True,
    }
)

_SUPERSAMPLE = 2  # sub-pixels per side, for anti-aliased edges
_MIN_CONTRAST, _MAX_CONTRAST = 0.3, 0.7
# light_on_dark levels: the shape always brighter than its background, by 0.3 to 0.9.
_DARK_RANGE, _LIGHT_RANGE = (0.0, 0.3), (0.6, 0.9)
RADIUS_RANGE = (0.15, 0.35)  # fraction of the image size
_CHUNK = 256  # images rendered at once (bounds memory)


class ShapesArrays(NamedTuple):
    """Images float32 [N, S, S, C] in [0, 1] (C = 1 grey, 3 coloured), labels int32 [N]."""

    images: np.ndarray
    labels: np.ndarray


def make_shapes(
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    colored: bool = False,
    classes: Sequence[str] = DEFAULT_CLASSES,
    radius_range: tuple[float, float] = RADIUS_RANGE,
    max_offset: float | None = None,
    light_on_dark: bool = False,
) -> ShapesArrays:
    """`n` images of one filled shape each; label = index of the shape's kind in `classes`.

    Classes are balanced (counts differ by at most 1, order shuffled). Per image: radius
    r ~ U(radius_range) * size; centre uniform such that the shape lies inside the image
    (`max_offset` None), or the image centre plus U(-max_offset, max_offset) * size per
    axis, clipped so that the shape lies inside. Grey levels, per channel when `colored`
    (3 channels) and once when grey (1 channel): background b ~ U(0, 1) and foreground
    f = (b + u) mod 1 with u ~ U(0.3, 0.7), so |f - b| >= 0.3 in every channel; with
    `light_on_dark`, b ~ U(0, 0.3) and f ~ U(0.6, 0.9). Edges are anti-aliased by 2x2
    supersampling. Deterministic given `seed`.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in _MASKS]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names among {SHAPE_NAMES}, got {classes}")
    low, high = radius_range
    if not 0 < low <= high <= 0.5:
        raise ValueError(f"radius_range must satisfy 0 < low <= high <= 0.5, got {radius_range}")
    if max_offset is not None and not 0 <= max_offset <= 0.5:
        raise ValueError(f"max_offset must be in [0, 0.5], got {max_offset}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(classes)).astype(np.int32)
    radius = rng.uniform(low, high, size=n) * size
    if max_offset is None:
        cy = rng.uniform(radius, size - radius)
        cx = rng.uniform(radius, size - radius)
    else:
        offsets = rng.uniform(-max_offset, max_offset, (2, n)) * size
        cy, cx = np.clip(size / 2 + offsets, radius, size - radius)
    channels = 3 if colored else 1
    if light_on_dark:
        background = rng.uniform(*_DARK_RANGE, size=(n, channels))
        foreground = rng.uniform(*_LIGHT_RANGE, size=(n, channels))
    else:
        background = rng.uniform(0.0, 1.0, size=(n, channels))
        foreground = (background + rng.uniform(_MIN_CONTRAST, _MAX_CONTRAST, (n, channels))) % 1.0

    # Pixel (i, j) covers [i, i+1) x [j, j+1); sample it at sub-pixel centres.
    sub = (np.arange(size * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    images = np.empty((n, size, size, channels), np.float32)
    for start in range(0, n, _CHUNK):
        part = slice(start, min(start + _CHUNK, n))
        coverage = np.zeros((part.stop - start, size * _SUPERSAMPLE, size * _SUPERSAMPLE))
        for k, name in enumerate(classes):
            sel = np.flatnonzero(labels[part] == k)
            if sel.size:
                dy = sub[None, :, None] - cy[part][sel, None, None]
                dx = sub[None, None, :] - cx[part][sel, None, None]
                coverage[sel] = _MASKS[name](dy, dx, radius[part][sel, None, None])
        coverage = coverage.reshape(-1, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(2, 4))[
            ..., None
        ]
        images[part] = (
            coverage * foreground[part, None, None, :]
            + (1.0 - coverage) * background[part, None, None, :]
        )
    return ShapesArrays(images, labels)
