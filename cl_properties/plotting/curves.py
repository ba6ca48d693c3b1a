"""Line plots of measured curves (accuracy vs a knob, one line per series), as PNG files.

Generic on purpose: RandBit's accuracy vs bits (one line per temperature and model), the
DigitOnImages probes vs K, head-depth or batch-size curves. `series_from_rows` turns the
rows of a `results.json` into series; `save_curve_panels` draws one or more panels
(`CurvePanel`) side by side. Rendering uses matplotlib's Agg canvas directly (no pyplot, no display,
no global backend change), so it is safe in tests, benchmarks and on headless machines.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cl_properties.results import atomic_write_bytes

X_SCALES = ("linear", "log", "symlog")
_DPI = 100
_PANEL_SIZE = (5.0, 3.6)  # inches per panel


@dataclass(frozen=True)
class Series:
    """One line: points (x[i], y[i]) joined in increasing x, with optional error bars.

    `linestyle` is a matplotlib style ("-", "--", ":", "-."); `color` None takes the next
    colour of the cycle. Raises ValueError for empty or mismatched coordinates, or
    negative/mismatched `y_err`.
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    y_err: Sequence[float] | None = None
    linestyle: str = "-"
    color: str | None = None

    def __post_init__(self):
        x, y = np.asarray(self.x, np.float64), np.asarray(self.y, np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError(
                f"series {self.label!r}: x and y must be non-empty 1-D of equal length, "
                f"got shapes {x.shape} and {y.shape}"
            )
        if self.y_err is not None:
            err = np.asarray(self.y_err, np.float64)
            if err.shape != y.shape or np.any(err < 0):
                raise ValueError(
                    f"series {self.label!r}: y_err must be >= 0 with the shape of y {y.shape}, "
                    f"got {err.shape}"
                )


@dataclass(frozen=True)
class CurvePanel:
    """One axes: its series, axis labels and scales, and horizontal reference lines.

    `reference_lines` maps a label to a y value drawn as a thin dotted line (e.g.
    {"chance": 0.1}); `y_limits` None fits the data; `x_scale` is linear, log or symlog
    (symlog keeps 0 on a log-like axis, e.g. 0 bits or K = 0). Raises ValueError for no
    series, an unknown scale, or a log x axis with x <= 0.
    """

    series: Sequence[Series]
    x_label: str
    y_label: str
    title: str = ""
    x_scale: str = "linear"
    y_limits: tuple[float, float] | None = None
    reference_lines: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not self.series:
            raise ValueError(f"panel {self.title!r} has no series to draw")
        if self.x_scale not in X_SCALES:
            raise ValueError(f"x_scale must be one of {X_SCALES}, got {self.x_scale!r}")
        if self.x_scale == "log" and any(min(s.x) <= 0 for s in self.series):
            raise ValueError("x_scale='log' needs x > 0 in every series (use 'symlog' for 0)")
        if self.y_limits is not None and not self.y_limits[0] < self.y_limits[1]:
            raise ValueError(f"y_limits must be (low, high) with low < high, got {self.y_limits}")


def series_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    by: Sequence[str] = (),
    label: str | None = None,
    y_err: str | None = None,
) -> list[Series]:
    """Groups `rows` (e.g. `results.json` rows) into one Series per distinct value of `by`.

    Each series holds the rows' (row[x], row[y]) sorted by x; rows lacking x or y, or whose
    y is None or NaN, are skipped. The label is `label.format(**first_row_of_group)` when
    given, else "k1=v1 k2=v2" over `by` (or `y` when `by` is empty). `y_err` names an
    optional column of error-bar half-widths. Groups keep the order of first appearance.
    Raises ValueError when no row has both columns.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        value = row.get(y)
        if x not in row or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        groups.setdefault(tuple(row.get(key) for key in by), []).append(row)
    if not groups:
        raise ValueError(f"no row has both {x!r} and {y!r}")
    series = []
    for key, members in groups.items():
        members = sorted(members, key=lambda r: float(r[x]))
        if label is not None:
            name = label.format(**members[0])
        elif by:
            name = " ".join(f"{k}={v}" for k, v in zip(by, key))
        else:
            name = y
        series.append(
            Series(
                name,
                [float(r[x]) for r in members],
                [float(r[y]) for r in members],
                None if y_err is None else [float(r.get(y_err) or 0.0) for r in members],
            )
        )
    return series


def _draw(ax, panel: CurvePanel) -> None:
    for s in panel.series:
        order = np.argsort(np.asarray(s.x, np.float64), kind="stable")
        xs = np.asarray(s.x, np.float64)[order]
        ys = np.asarray(s.y, np.float64)[order]
        err = None if s.y_err is None else np.asarray(s.y_err, np.float64)[order]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            label=s.label,
            linestyle=s.linestyle,
            color=s.color,
            marker="o",
            markersize=4,
            capsize=3 if err is not None else 0,
        )
    for name, value in panel.reference_lines.items():
        ax.axhline(value, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            name,
            (0.01, value),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            color="grey",
            va="bottom",
        )
    if panel.x_scale == "symlog":
        ax.set_xscale("symlog", linthresh=1.0)
    else:
        ax.set_xscale(panel.x_scale)
    ticks = sorted({float(v) for s in panel.series for v in s.x})
    if len(ticks) <= 12:  # few measured points: label exactly those
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if panel.y_limits is not None:
        ax.set_ylim(*panel.y_limits)
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    if panel.title:
        ax.set_title(panel.title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def save_curve_panels(
    path: str | os.PathLike,
    panels: Sequence[CurvePanel],
    *,
    title: str = "",
    columns: int | None = None,
) -> None:
    """Writes `panels` side by side (`columns` per row, default all in one row) as a PNG at
    `path`, atomically (folders created). Raises ValueError for no panels or columns < 1."""
    save_panels(path, panels, _draw, title=title, columns=columns)


def save_panels(
    path: str | os.PathLike,
    panels: Sequence[Any],
    draw: Callable[[Any, Any], None],
    *,
    title: str = "",
    columns: int | None = None,
) -> None:
    """`save_curve_panels` for panels of any kind: `draw(axes, panel)` draws each one."""
    if not panels:
        raise ValueError("no panels to draw")
    columns = len(panels) if columns is None else columns
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = -(-len(panels) // columns)
    figure = Figure(
        figsize=(_PANEL_SIZE[0] * columns, _PANEL_SIZE[1] * rows + (0.3 if title else 0.0)),
        dpi=_DPI,
        layout="constrained",
    )
    canvas = FigureCanvasAgg(figure)
    for i, panel in enumerate(panels):
        draw(figure.add_subplot(rows, columns, i + 1), panel)
    if title:
        figure.suptitle(title, fontsize=10)
    png = io.BytesIO()
    canvas.print_png(png)
    atomic_write_bytes(path, png.getvalue())
