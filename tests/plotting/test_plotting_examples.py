import math
import os

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data.randbit import RandBit
from cl_properties.plotting.examples import save_example_grid, split_channels


def _expected(n, h, w, *, ncols, labels=False, title=False, bits=False):
    """The documented layout: PAD 4, LABEL 14, TITLE 24, STRIP 8, s = ceil(96 / max(H, W))."""
    s = math.ceil(96 / max(h, w))
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    cell = (14 if labels else 0) + h * s + (4 + 8 if bits else 0) + 4
    return (24 if title else 0) + 4 + rows * cell, 4 + cols * (w * s + 4)


def _images(n, h, w, c):
    return np.random.default_rng(0).random((n, h, w, c)).astype(np.float32)


def test_grey_grid_has_the_documented_size_and_no_leftover_files(tmp_path):
    path = tmp_path / "sub" / "grey.png"
    size = save_example_grid(
        _images(10, 28, 28, 1), path, labels=list(range(10)), ncols=4, title="t"
    )
    assert (
        size == _expected(10, 28, 28, ncols=4, labels=True, title=True) == (24 + 4 + 3 * 130, 468)
    )
    assert matplotlib.image.imread(path).shape[:2] == size
    assert os.listdir(path.parent) == ["grey.png"]


def test_colour_grid_shows_the_pixels(tmp_path):
    images = np.zeros((3, 64, 64, 3), np.float32)
    images[..., 0] = 1.0  # pure red
    path = tmp_path / "rgb.png"
    size = save_example_grid(images, path, labels={"object": [0, 1, 2], "digit": [3, 4, 5]})
    assert size == _expected(3, 64, 64, ncols=8, labels=True)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == size
    # Centre of the first tile (scale 2: 128 px tiles below a 14 px label band).
    np.testing.assert_allclose(pixels[4 + 14 + 64, 4 + 64, :3], [1.0, 0.0, 0.0])


def test_randbit_images_show_a_bit_strip(tmp_path):
    rb = RandBit(6, seed=0)
    images = _images(5, 28, 28, 1)
    with_bits = np.stack(
        [
            rb.single({"image": x, "index": tf.constant(i, tf.int64)}, x).numpy()
            for i, x in enumerate(images)
        ]
    )
    pictures, bits = split_channels(with_bits)
    assert pictures.shape == (5, 28, 28, 1) and bits.shape == (5, 6)
    path = tmp_path / "bits.png"
    size = save_example_grid(with_bits, path, ncols=5)
    assert size == _expected(5, 28, 28, ncols=5, bits=True)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == size
    # Strip cells are white for 1, black for 0 (tiles of 112 px, cells of 112/6 px).
    strip_row = 4 + 112 + 4 + 4
    for i in range(5):
        for b in range(6):
            x = 4 + i * 116 + int((b + 0.5) * 112 / 6)
            np.testing.assert_allclose(pixels[strip_row, x, :3], [bits[i, b]] * 3)


def test_channel_split_and_bad_inputs(tmp_path):
    colour_bits = np.concatenate([_images(2, 8, 8, 3), np.ones((2, 8, 8, 2), np.float32)], axis=-1)
    assert split_channels(colour_bits)[0].shape[-1] == 3
    grey_two_bits = colour_bits[..., 2:]  # 3 channels read as colour unless told otherwise
    assert split_channels(grey_two_bits)[1].shape == (2, 0)
    assert split_channels(grey_two_bits, image_channels=1)[1].tolist() == [[1, 1], [1, 1]]
    with pytest.raises(ValueError, match="image_channels"):
        save_example_grid(_images(2, 8, 8, 4), tmp_path / "x.png")
    with pytest.raises(ValueError, match="image_channels"):
        save_example_grid(_images(2, 8, 8, 1), tmp_path / "x.png", image_channels=3)
    with pytest.raises(ValueError, match="labels"):
        save_example_grid(_images(2, 8, 8, 1), tmp_path / "x.png", labels=[1])
    with pytest.raises(ValueError, match="non-empty"):
        save_example_grid(np.zeros((0, 8, 8, 1)), tmp_path / "x.png")
    assert os.listdir(tmp_path) == []


def test_png_gets_the_usual_file_mode(tmp_path):
    path = tmp_path / "mode.png"
    save_example_grid(_images(1, 8, 8, 1), path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
