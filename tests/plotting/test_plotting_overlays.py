import os

import matplotlib.image
import numpy as np
import pytest

from cl_properties.plotting.overlays import overlay_clusters, save_cluster_overlay_grid


def _inputs(batch: int = 3, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.random((batch, size, size, 1)).astype(np.float32)
    maps = {
        (tap, k): rng.integers(0, k, (batch, size, size))
        for tap in ["block2", "block3"]
        for k in (8, 2, 4, 6)
    }
    return images, maps


def test_grid_png_has_the_documented_size_and_no_leftover_files(tmp_path):
    images, maps = _inputs()
    path = tmp_path / "sub" / "overlay.png"
    save_cluster_overlay_grid(images, maps, path, cell_pixels=40, header_pixels=20, dpi=72)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (3 * 40 + 20, 9 * 40)
    assert os.listdir(path.parent) == ["overlay.png"]
    # The panels are not blank: the overlays carry colour.
    assert pixels[20:, 40:, :3].std() > 0.05


def test_overlay_blends_cluster_colours():
    image = np.zeros((4, 4, 3), np.float32)
    ids = np.array([[0, 1, 0, 1]] * 4)
    blended = overlay_clusters(image, ids, alpha=1.0)
    assert blended.shape == (4, 4, 3)
    np.testing.assert_array_equal(blended[:, 0], blended[:, 2])
    assert not np.allclose(blended[:, 0], blended[:, 1])
    np.testing.assert_allclose(overlay_clusters(image + 0.5, ids, alpha=0.0), 0.5)


def test_bad_inputs(tmp_path):
    images, maps = _inputs()
    with pytest.raises(ValueError, match="expected"):
        save_cluster_overlay_grid(images[:2], maps, tmp_path / "a.png")
    with pytest.raises(ValueError, match="empty"):
        save_cluster_overlay_grid(images, {}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="pairs"):
        save_cluster_overlay_grid(images, {"block2": maps[("block2", 2)]}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="alpha"):
        overlay_clusters(images[0], maps[("block2", 2)][0], alpha=2.0)
    assert not list(tmp_path.iterdir())
