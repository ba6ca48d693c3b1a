"""Grouped bar charts (one group per row label, one bar per measure), as PNG files.

For comparison tables such as the remedies' (models x testbeds, two probes each): one panel
per testbed, one group of bars per model. Drawn like the line plots (`curves.save_panels`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cl_properties.plotting.curves import save_panels


@dataclass(frozen=True)
class BarPanel:
    """One axes: `bars` maps a legend label to one value per group (None: not measured, no
    bar), drawn side by side within each group of `groups` (tick labels). Raises ValueError
    for no groups, no bars, or a bar list of another length than `groups`."""

    groups: Sequence[str]
    bars: Mapping[str, Sequence[float | None]]
    y_label: str
    title: str = ""
    y_limits: tuple[float, float] | None = (0.0, 1.02)

    def __post_init__(self):
        if not self.groups or not self.bars:
            raise ValueError(f"panel {self.title!r} needs groups and bars to draw")
        for label, values in self.bars.items():
            if len(values) != len(self.groups):
                raise ValueError(
                    f"bars {label!r} of panel {self.title!r} have {len(values)} values for "
                    f"{len(self.groups)} groups"
                )


def _draw(ax, panel: BarPanel) -> None:
    width = 0.8 / len(panel.bars)
    positions = np.arange(len(panel.groups))
    for i, (label, values) in enumerate(panel.bars.items()):
        heights = [np.nan if v is None else float(v) for v in values]  # NaN: no bar
        ax.bar(positions + (i - (len(panel.bars) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(positions, list(panel.groups), rotation=30, ha="right", fontsize=8)
    if panel.y_limits is not None:
        ax.set_ylim(*panel.y_limits)
    ax.set_ylabel(panel.y_label)
    if panel.title:
        ax.set_title(panel.title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)


def save_bar_panels(
    path: str | os.PathLike,
    panels: Sequence[BarPanel],
    *,
    title: str = "",
    columns: int | None = None,
) -> None:
    """Writes `panels` side by side as a PNG at `path` (as `curves.save_curve_panels`)."""
    save_panels(path, panels, _draw, title=title, columns=columns)
