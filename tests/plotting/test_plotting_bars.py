"""Grouped bar charts: PNG output, missing bars, bad inputs."""

import matplotlib.image
import pytest

from cl_properties.plotting.bars import BarPanel, save_bar_panels


def test_grouped_bars_with_a_missing_value_are_drawn(tmp_path):
    panels = [
        BarPanel(["contrastive", "ifm"], {"class": [0.1, 0.2], "bits": [1.0, None]}, "accuracy"),
        BarPanel(["contrastive"], {"shape": [0.5]}, "accuracy", title="one bar"),
    ]
    path = tmp_path / "sub" / "bars.png"
    save_bar_panels(path, panels, title="two panels")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > height > 100


@pytest.mark.parametrize(
    "groups, bars, message",
    [
        ([], {"a": []}, "needs groups and bars"),
        (["x"], {}, "needs groups and bars"),
        (["x", "y"], {"a": [0.1]}, "have 1 values for 2 groups"),
    ],
)
def test_bad_panels_are_rejected(groups, bars, message):
    with pytest.raises(ValueError, match=message):
        BarPanel(groups, bars, "accuracy")
