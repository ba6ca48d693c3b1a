"""Example grids of dataset images, written as PNG files.

Rendering uses matplotlib's Agg canvas directly (no pyplot, no display, no global backend
change), so it is safe in tests and on headless machines.

Inputs with more channels than an image (RandBit) are shown as the image with the bit
pattern below it as a strip of cells (white = 1, black = 0, on a grey frame).
"""

from __future__ import annotations

import io
import math
import os
from typing import Mapping, Sequence

import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cl_properties.results import atomic_write_bytes

PAD_PX = 4  # around and between tiles
LABEL_PX = 14  # label band above each tile, when labels are given
TITLE_PX = 24  # title band at the top, when a title is given
STRIP_PX = 8  # height of the bit strip; a PAD_PX gap separates it from the image
MIN_TILE_PX = 96  # images are upscaled by the smallest integer factor reaching this size
_DPI = 100
_STRIP_GREY = 0.5


def _is_bit_plane(channels: np.ndarray) -> bool:
    """Whether every [H, W] plane of `channels` [N, H, W, c] is constant and 0 or 1."""
    first = channels[:, :1, :1, :]
    return bool(np.all(channels == first) and np.all((first == 0) | (first == 1)))


def split_channels(
    images: np.ndarray, image_channels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split [N, H, W, C] into images [N, H, W, c] (c = 1 or 3) and bits [N, C - c] (0/1).

    With `image_channels=None`: C = 1 or 3 is an image without bits; otherwise c is 1 if
    every channel after the first is a constant 0/1 plane in every image (grey + bits), else
    3 if those after the third are (colour + bits). A grey image with 2 bits (C = 3) needs
    image_channels=1. Raises ValueError if no such split exists.
    """
    channels = images.shape[-1]
    if image_channels is None and channels in (1, 3):
        image_channels = channels
    if image_channels is None:
        candidates = [c for c in (1, 3) if c < channels and _is_bit_plane(images[..., c:])]
        if not candidates:
            raise ValueError(
                f"cannot tell image from bit channels among {channels}: pass image_channels"
            )
        image_channels = candidates[0]
    if image_channels not in (1, 3) or image_channels > channels:
        raise ValueError(f"image_channels must be 1 or 3 and <= {channels}, got {image_channels}")
    extra = images[..., image_channels:]
    if extra.shape[-1] and not _is_bit_plane(extra):
        raise ValueError("channels after the image channels must be constant 0/1 bit planes")
    return images[..., :image_channels], extra[:, 0, 0, :].astype(np.int32)


def _label_texts(labels: Sequence | Mapping[str, Sequence] | None, n: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        columns = {name: np.asarray(values) for name, values in labels.items()}
        if any(len(v) != n for v in columns.values()):
            raise ValueError(f"every label array must have {n} entries")
        return [" ".join(f"{name}={v[i]}" for name, v in columns.items()) for i in range(n)]
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} images")
    return [str(label) for label in labels]


def save_example_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: Sequence | Mapping[str, Sequence] | None = None,
    ncols: int = 8,
    title: str | None = None,
    image_channels: int | None = None,
) -> tuple[int, int]:
    """Write `images` [N, H, W] or [N, H, W, C] (values clipped to [0, 1]) as a PNG grid.

    Layout in pixels, with s = ceil(96 / max(H, W)) the integer upscaling factor,
    cols = min(ncols, N), rows = ceil(N / cols), bits = C - image channels
    (see `split_channels`):
        width  = PAD + cols * (W*s + PAD)
        height = [TITLE if title] + PAD + rows * ([LABEL if labels] + H*s
                 + [PAD + STRIP if bits] + PAD)
    with PAD = 4, LABEL = 14, TITLE = 24, STRIP = 8. `labels` is one entry per image or a
    mapping name -> per-image values (shown as "name=value ..."). The file is written to a
    temporary file in the same folder, then renamed (atomic). Returns (height, width).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty [N, H, W(, C)] array, got {images.shape}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    pictures, bits = split_channels(images, image_channels)
    pictures = np.clip(pictures, 0.0, 1.0)
    if pictures.shape[-1] == 1:
        pictures = np.repeat(pictures, 3, axis=-1)
    texts = _label_texts(labels, len(images))

    n, h, w, _ = pictures.shape
    scale = max(1, math.ceil(MIN_TILE_PX / max(h, w)))
    tile_h, tile_w = h * scale, w * scale
    label_h = LABEL_PX if texts is not None else 0
    strip_h = PAD_PX + STRIP_PX if bits.shape[1] else 0
    title_h = TITLE_PX if title else 0
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    cell_h = label_h + tile_h + strip_h + PAD_PX
    width = PAD_PX + cols * (tile_w + PAD_PX)
    height = title_h + PAD_PX + rows * cell_h

    mosaic = np.ones((height, width, 3), np.float32)
    edges = np.linspace(0, tile_w, bits.shape[1] + 1).round().astype(int)
    for i in range(n):
        top = title_h + PAD_PX + (i // cols) * cell_h + label_h
        left = PAD_PX + (i % cols) * (tile_w + PAD_PX)
        tile = np.repeat(np.repeat(pictures[i], scale, axis=0), scale, axis=1)
        mosaic[top : top + tile_h, left : left + tile_w] = tile
        strip_top = top + tile_h + PAD_PX
        if bits.shape[1]:
            # Grey frame and 1 px grey separators, so white (1) cells stand out from the page.
            mosaic[strip_top : strip_top + STRIP_PX, left : left + tile_w] = _STRIP_GREY
        for b, bit in enumerate(bits[i]):
            cells = slice(left + edges[b] + 1, left + edges[b + 1])
            mosaic[strip_top + 1 : strip_top + STRIP_PX - 1, cells] = bit

    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, interpolation="nearest", extent=(0, width, height, 0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    if title:
        ax.text(width / 2, title_h / 2, title, ha="center", va="center", fontsize=11)
    for i, text in enumerate(texts or []):
        top = title_h + PAD_PX + (i // cols) * cell_h
        left = PAD_PX + (i % cols) * (tile_w + PAD_PX)
        ax.text(left + tile_w / 2, top + label_h / 2, text, ha="center", va="center", fontsize=7)
    canvas.draw()
    rendered = np.asarray(canvas.buffer_rgba())[:height, :width]
    # The Agg canvas may round the figure size down by a pixel: pad with white if so.
    pixels = np.full((height, width, 4), 255, np.uint8)
    pixels[: rendered.shape[0], : rendered.shape[1]] = rendered

    png = io.BytesIO()
    matplotlib.image.imsave(png, pixels, format="png")
    atomic_write_bytes(path, png.getvalue())
    return height, width
