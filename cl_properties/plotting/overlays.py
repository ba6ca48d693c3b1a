"""Cluster maps drawn as coloured overlays on their images (the paper's k-means figures)."""

from __future__ import annotations

import io
import os
from collections.abc import Hashable, Mapping

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cl_properties.results import atomic_write_bytes


def _palette(num_colors: int) -> np.ndarray:
    """RGB colours [num_colors, 3]: qualitative tab10/tab20, evenly spaced hues beyond 20."""
    if num_colors <= 10:
        colors = matplotlib.colormaps["tab10"].colors
    elif num_colors <= 20:
        colors = matplotlib.colormaps["tab20"].colors
    else:
        colors = matplotlib.colormaps["hsv"](np.linspace(0.0, 1.0, num_colors, endpoint=False))
    return np.asarray(colors, np.float64)[:num_colors, :3]


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """[H, W, C] in [0, 1] -> RGB: 1-2 channels show channel 0 as grey, >= 3 show channels 0-2
    (extra channels such as RandBit planes are not drawn)."""
    if image.ndim != 3 or image.shape[-1] < 1:
        raise ValueError(f"image must have shape [H, W, C], got {image.shape}")
    rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    return np.clip(rgb.astype(np.float64), 0.0, 1.0)


def overlay_clusters(
    image, cluster_map, *, alpha: float = 0.5, num_colors: int | None = None
) -> np.ndarray:
    """Blends a colour per cluster id into an image: (1 - alpha) * image + alpha * colour[id].

    Args:
      image: float [H, W, C] in [0, 1].
      cluster_map: int [H, W] cluster ids >= 0.
      num_colors: size of the palette (default max id + 1); pass the same value for maps
        that should share colours.

    Returns:
      float RGB [H, W, 3] in [0, 1].
    """
    rgb = _as_rgb(np.asarray(image))
    ids = np.asarray(cluster_map)
    if ids.shape != rgb.shape[:2]:
        raise ValueError(
            f"cluster map shape {ids.shape} does not match the image size {rgb.shape[:2]}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if ids.min() < 0 or (num_colors is not None and ids.max() >= num_colors):
        raise ValueError(
            f"cluster ids must be in [0, {num_colors}), got [{ids.min()}, {ids.max()}]"
        )
    colors = _palette(int(ids.max()) + 1 if num_colors is None else num_colors)
    return (1.0 - alpha) * rgb + alpha * colors[ids]


def save_cluster_overlay_grid(
    images,
    maps: Mapping[tuple[Hashable, int], np.ndarray],
    path: str | os.PathLike,
    *,
    alpha: float = 0.5,
    cell_pixels: int = 128,
    header_pixels: int = 24,
    dpi: int = 100,
) -> None:
    """Writes a PNG grid: one row per image; the image, then one overlay per (tap, k).

    Columns after the plain image are grouped by tap name (block group, in the order the
    taps first appear in `maps`) and sorted by k within a tap, each titled "tap k=K" in a
    header strip, like the paper's k-means figure. Every panel is a `cell_pixels` square;
    the PNG is exactly (B * cell_pixels + header_pixels) pixels tall and
    ((1 + len(maps)) * cell_pixels) wide. Written with the Agg canvas to a temporary file
    in the destination folder, then moved into place (os.replace), so readers never see a
    partial file.

    Args:
      images: float [B, H, W, C] in [0, 1].
      maps: (tap_name, k) -> int [B, H, W] cluster maps (e.g. from `cluster_maps`).
      path: destination .png file; its folder is created if needed.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must have shape [B, H, W, C] with B >= 1, got {images.shape}")
    if not maps:
        raise ValueError("maps is empty: nothing to overlay")
    if cell_pixels < 1 or header_pixels < 0 or dpi < 1:
        raise ValueError(
            "need cell_pixels >= 1, header_pixels >= 0, dpi >= 1; "
            f"got {cell_pixels}, {header_pixels}, {dpi}"
        )
    taps: list[Hashable] = []
    for key in maps:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"maps keys must be (tap_name, k) pairs, got {key!r}")
        if key[0] not in taps:
            taps.append(key[0])
    columns = [
        key
        for tap in taps
        for key in sorted((key for key in maps if key[0] == tap), key=lambda key: key[1])
    ]
    arrays = {key: np.asarray(maps[key]) for key in columns}
    for key, ids in arrays.items():
        if ids.shape != images.shape[:3]:
            raise ValueError(f"map {key} has shape {ids.shape}, expected {images.shape[:3]}")
    num_colors = max(int(ids.max()) for ids in arrays.values()) + 1

    num_rows, num_columns = images.shape[0], 1 + len(columns)
    width, height = num_columns * cell_pixels, num_rows * cell_pixels + header_pixels
    # Half a pixel of slack: Agg truncates figsize * dpi to int, which must be width/height.
    figure = Figure(figsize=((width + 0.5) / dpi, (height + 0.5) / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    titles = ["image"] + [f"{tap} k={k}" for tap, k in columns]
    for column, title in enumerate(titles):
        figure.text(
            (column + 0.5) * cell_pixels / width,
            1.0 - 0.5 * header_pixels / height,
            title,
            ha="center",
            va="center",
            fontsize=max(4.0, 0.4 * header_pixels * 72.0 / dpi),
        )
    for row in range(num_rows):
        panels = [_as_rgb(images[row])] + [
            overlay_clusters(images[row], arrays[key][row], alpha=alpha, num_colors=num_colors)
            for key in columns
        ]
        for column, panel in enumerate(panels):
            axes = figure.add_axes(
                (
                    column * cell_pixels / width,
                    (height - header_pixels - (row + 1) * cell_pixels) / height,
                    cell_pixels / width,
                    cell_pixels / height,
                )
            )
            axes.imshow(panel, interpolation="nearest")
            axes.set_axis_off()

    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=dpi)
    atomic_write_bytes(path, png.getvalue())
