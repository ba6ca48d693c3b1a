"""Heatmaps of a measured grid (e.g. probe accuracy over temperature x lambda), as PNG files.

Rendering uses matplotlib's Agg canvas directly (no pyplot, no display, no global backend
change), so it is safe in tests, benchmarks and on headless machines.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cl_properties.results import atomic_write_bytes

_DPI = 100


def best_per_row(values: np.ndarray) -> np.ndarray:
    """Column index of the largest finite value in each row of `values` [R, C] (ties: first).

    Raises ValueError if `values` is not 2-D or a row has no finite value.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D grid [rows, columns], got shape {values.shape}")
    finite = np.isfinite(values)
    empty = np.flatnonzero(~finite.any(axis=1))
    if empty.size:
        raise ValueError(f"rows {empty.tolist()} have no finite value")
    return np.argmax(np.where(finite, values, -np.inf), axis=1)


def save_heatmap(
    path: str | os.PathLike,
    values: np.ndarray,
    *,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    row_title: str,
    column_title: str,
    title: str = "",
    value_label: str = "",
    value_format: str = "{:.3f}",
    mark_best_per_row: bool = False,
) -> None:
    """Writes `values` [R, C] as a PNG heatmap at `path` (atomically, folders created).

    Row r is labelled `row_labels[r]` (top to bottom), column c `column_labels[c]`; each
    cell shows `value_format.format(value)` (NaN cells stay blank). `mark_best_per_row`
    outlines each row's best cell (`best_per_row`), e.g. the best lambda at each
    temperature. Raises ValueError for a non-2-D grid, label counts that differ from its
    shape, a grid without any finite value, or (with `mark_best_per_row`) a row without one.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(
            f"values must be a non-empty 2-D grid [rows, columns], got shape {values.shape}"
        )
    rows, columns = values.shape
    if len(row_labels) != rows or len(column_labels) != columns:
        raise ValueError(
            f"{len(row_labels)} row labels and {len(column_labels)} column labels for a "
            f"{rows} x {columns} grid"
        )
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("values has no finite entry to plot")
    best = best_per_row(values) if mark_best_per_row else ()

    size = (
        max(5.0, 2.0 + 0.9 * columns),
        max(3.0, 1.4 + 0.6 * rows),
    )  # inches; room for title and colorbar
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    low, high = values[finite].min(), values[finite].max()
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap="viridis", vmin=low, vmax=high, aspect="auto"
    )
    colorbar = figure.colorbar(image, ax=ax)
    if value_label:
        colorbar.set_label(value_label)
    ax.set_xticks(range(columns), [str(label) for label in column_labels])
    ax.set_yticks(range(rows), [str(label) for label in row_labels])
    ax.set_xlabel(column_title)
    ax.set_ylabel(row_title)
    if title:
        ax.set_title(title, fontsize=9)
    middle = (low + high) / 2
    for r in range(rows):
        for c in range(columns):
            if finite[r, c]:
                # Dark text on the bright end of viridis, light text on the dark end.
                color = "black" if values[r, c] > middle else "white"
                ax.text(
                    c,
                    r,
                    value_format.format(values[r, c]),
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=8,
                )
    for r, c in enumerate(best):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    png = io.BytesIO()
    canvas.print_png(png)
    atomic_write_bytes(path, png.getvalue())
