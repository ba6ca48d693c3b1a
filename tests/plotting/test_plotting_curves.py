"""Line plots: series from result rows, PNG output, bad inputs."""

import math

import matplotlib.image
import numpy as np
import pytest

from cl_properties.plotting.curves import (
    CurvePanel,
    Series,
    save_curve_panels,
    series_from_rows,
)

ROWS = [
    {"model": "contrastive", "temperature": 0.1, "bits": 10, "acc": 0.3},
    {"model": "contrastive", "temperature": 0.1, "bits": 0, "acc": 0.9},
    {"model": "contrastive", "temperature": 0.2, "bits": 0, "acc": 0.8},
    {"model": "vae", "temperature": None, "bits": 0, "acc": 0.95},
    {"model": "vae", "temperature": None, "bits": 10, "acc": float("nan")},  # skipped
    {"model": "vae", "bits": 20},  # no y: skipped
]


def test_series_from_rows_groups_sorts_and_labels():
    series = series_from_rows(ROWS, x="bits", y="acc", by=("model", "temperature"))
    assert [s.label for s in series] == [
        "model=contrastive temperature=0.1",
        "model=contrastive temperature=0.2",
        "model=vae temperature=None",
    ]
    assert list(series[0].x) == [0.0, 10.0] and list(series[0].y) == [0.9, 0.3]
    assert list(series[2].x) == [0.0] and list(series[2].y) == [0.95]
    named = series_from_rows(ROWS, x="bits", y="acc", by=("model",), label="{model}!")
    assert [s.label for s in named] == ["contrastive!", "vae!"]
    assert [s.label for s in series_from_rows(ROWS, x="bits", y="acc")] == ["acc"]


def test_series_from_rows_without_columns_raises():
    with pytest.raises(ValueError, match="no row has both"):
        series_from_rows(ROWS, x="bits", y="missing")


def test_one_panel_writes_a_png(tmp_path):
    path = tmp_path / "sub" / "curve.png"
    series = [
        Series("a", [0, 5, 10], [0.9, 0.5, 0.2], y_err=[0.01, 0.02, 0.0]),
        Series("b", [10, 0], [0.8, 0.9], linestyle="--"),
    ]
    panel = CurvePanel(
        series, "bits", "accuracy", "t", y_limits=(0, 1), reference_lines={"chance": 0.1}
    )
    save_curve_panels(path, [panel])
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write left no temporary file


def test_save_curve_panels_grid_and_log_scale(tmp_path):
    panel = CurvePanel([Series("s", [1, 10, 1000], [0.9, 0.8, 0.7])], "K", "acc", x_scale="log")
    symlog = CurvePanel([Series("s", [0, 10], [0.9, 0.7])], "bits", "acc", x_scale="symlog")
    save_curve_panels(tmp_path / "p.png", [panel, symlog, panel], columns=2, title="grid")
    height, width = matplotlib.image.imread(tmp_path / "p.png").shape[:2]
    assert height > 600 and width > 900  # two rows of two 5 x 3.6 inch panels at 100 dpi


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Series("s", [1, 2], [1.0]), "equal length"),
        (lambda: Series("s", [], []), "non-empty"),
        (lambda: Series("s", [1], [1.0], y_err=[-1.0]), "y_err"),
        (lambda: CurvePanel([], "x", "y"), "no series"),
        (lambda: CurvePanel([Series("s", [0, 1], [1, 2])], "x", "y", x_scale="log"), "x > 0"),
        (lambda: CurvePanel([Series("s", [1], [1])], "x", "y", x_scale="exp"), "x_scale"),
        (lambda: CurvePanel([Series("s", [1], [1])], "x", "y", y_limits=(1, 0)), "y_limits"),
        (lambda: save_curve_panels("unused.png", []), "no panels"),
    ],
)
def test_bad_inputs_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_nan_free_series_values_are_kept_exactly():
    (series,) = series_from_rows([{"x": 2, "y": 0.25}, {"x": 1, "y": 0.5}], x="x", y="y")
    assert list(series.x) == [1.0, 2.0] and list(series.y) == [0.5, 0.25]
    assert not any(math.isnan(v) for v in np.asarray(series.y))
