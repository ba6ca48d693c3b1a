import matplotlib.image
import numpy as np
import pytest

from cl_properties.plotting.heatmap import best_per_row, save_heatmap


def _grid():
    return np.array([[0.1, 0.9, 0.5], [0.7, 0.2, np.nan]])


def test_best_per_row_takes_the_row_maximum_and_skips_nan():
    np.testing.assert_array_equal(best_per_row(_grid()), [1, 0])
    np.testing.assert_array_equal(best_per_row(np.array([[0.3, 0.3]])), [0])  # first of ties


def test_best_per_row_rejects_bad_grids():
    with pytest.raises(ValueError, match="2-D"):
        best_per_row(np.zeros(3))
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        best_per_row(np.array([[1.0], [np.nan]]))


def test_save_heatmap_writes_a_png(tmp_path):
    path = tmp_path / "sub" / "grid.png"
    save_heatmap(
        path,
        _grid(),
        row_labels=["0.1", "1"],
        column_labels=["a", "b", "c"],
        row_title="tau",
        column_title="lambda",
        title="accuracy",
        value_label="accuracy",
        mark_best_per_row=True,
    )
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary left behind


def test_save_heatmap_validates_labels_and_values(tmp_path):
    kwargs = dict(row_labels=["x"], column_labels=["a", "b"], row_title="r", column_title="c")
    with pytest.raises(ValueError, match="labels"):
        save_heatmap(tmp_path / "a.png", np.zeros((2, 2)), **kwargs)
    with pytest.raises(ValueError, match="finite"):
        save_heatmap(tmp_path / "b.png", np.full((1, 2), np.nan), **kwargs)
    with pytest.raises(ValueError, match="2-D"):
        save_heatmap(tmp_path / "c.png", np.zeros(2), **kwargs)
    assert not list(tmp_path.iterdir())
