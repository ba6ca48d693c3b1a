import numpy as np
import pytest

from cl_properties.data.shapes import DEFAULT_CLASSES, SHAPE_NAMES, make_shapes


def test_shapes_dtype_range_and_balanced_classes():
    images, labels = make_shapes(50, size=32, seed=0)
    assert images.shape == (50, 32, 32, 1) and images.dtype == np.float32
    assert labels.dtype == np.int32
    assert images.min() >= 0.0 and images.max() <= 1.0
    counts = np.bincount(labels, minlength=len(DEFAULT_CLASSES))
    assert counts.max() - counts.min() <= 1 and counts.sum() == 50
    six = make_shapes(60, size=32, seed=0, classes=SHAPE_NAMES).labels
    np.testing.assert_array_equal(np.bincount(six), [10] * 6)


def test_deterministic_given_seed_and_seeds_differ():
    a, b = make_shapes(20, size=32, seed=7), make_shapes(20, size=32, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = make_shapes(20, size=32, seed=8)
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize("colored", [False, True])
def test_foreground_contrasts_with_background(colored):
    images, _ = make_shapes(40, size=48, seed=1, colored=colored)
    assert images.shape[-1] == (3 if colored else 1)
    background = images[:, :1, :1, :]  # shapes never reach the corners
    # Fully covered pixels differ from the background by at least 0.3 in every channel.
    contrast = np.abs(images - background).max(axis=(1, 2))
    assert np.all(contrast >= 0.3 - 1e-6)
    if colored:  # backgrounds really are coloured, not grey
        assert np.abs(background[..., 0] - background[..., 1]).max() > 0.1


def test_each_class_draws_its_shape():
    # Same seed, so the same sizes: areas relative to the disk (pi r^2) are fixed by geometry:
    # square (1.7 r)^2, cross 20/9 r^2, diamond 2 r^2.
    area = {}
    for name in ("disk", "square", "cross", "diamond"):
        images, labels = make_shapes(30, size=64, seed=3, classes=(name,))
        assert np.all(labels == 0)
        background = images[:, :1, :1, :]
        area[name] = (np.abs(images - background) > 0.15).mean()
    expected = {"square": 1.7**2 / np.pi, "cross": 20 / 9 / np.pi, "diamond": 2 / np.pi}
    for name, ratio in expected.items():
        assert area[name] / area["disk"] == pytest.approx(ratio, abs=0.03)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="classes"):
        make_shapes(4, classes=("disk", "hexagon"))
    with pytest.raises(ValueError, match="classes"):
        make_shapes(4, classes=("disk", "disk"))
    with pytest.raises(ValueError, match="n must"):
        make_shapes(0)
    with pytest.raises(ValueError, match="size"):
        make_shapes(4, size=4)
