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


def test_light_on_dark_levels():
    images, _ = make_shapes(40, size=48, seed=2, light_on_dark=True)
    background = images[:, 0, 0, 0]  # shapes never reach the corners
    foreground = images.max(axis=(1, 2, 3))  # the brightest pixel is inside the shape
    assert np.all(background <= 0.3) and np.all(foreground >= 0.6 - 1e-6)
    assert np.all(foreground <= 0.9 + 1e-6)


def _centroids(images: np.ndarray) -> np.ndarray:
    """Centre of each shape (pixels differing from the corner), [N, 2] in pixels."""
    mask = np.abs(images[..., 0] - images[:, :1, :1, 0]) > 0.15
    rows, cols = np.arange(images.shape[1]), np.arange(images.shape[2])
    total = mask.sum(axis=(1, 2))
    return np.stack(
        [(mask.sum(2) * rows).sum(1) / total, (mask.sum(1) * cols).sum(1) / total], axis=1
    )


def test_max_offset_keeps_shapes_near_the_centre_and_inside():
    size = 64
    centred = make_shapes(60, size=size, seed=4, max_offset=0.1, classes=("disk",))
    anywhere = make_shapes(60, size=size, seed=4, classes=("disk",))
    offsets = np.abs(_centroids(centred.images) - (size - 1) / 2)
    assert offsets.max() <= 0.1 * size + 1.0
    assert np.abs(_centroids(anywhere.images) - (size - 1) / 2).max() > 0.1 * size + 1.0
    # Clipped inside: large disks with a large offset still never touch the corners.
    inside = make_shapes(
        60, size=size, seed=5, max_offset=0.5, radius_range=(0.3, 0.45), classes=("disk",)
    )
    corners = inside.images[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
    np.testing.assert_allclose(corners, corners[:, :1].repeat(4, axis=1))


def test_radius_range_sets_the_size():
    small = make_shapes(30, size=64, seed=6, classes=("disk",), radius_range=(0.1, 0.1))
    large = make_shapes(30, size=64, seed=6, classes=("disk",), radius_range=(0.3, 0.3))
    area = {}
    for name, images in (("small", small.images), ("large", large.images)):
        area[name] = (np.abs(images - images[:, :1, :1, :]) > 0.15).mean()
    assert area["small"] == pytest.approx(np.pi * 0.1**2, rel=0.15)
    assert area["large"] == pytest.approx(np.pi * 0.3**2, rel=0.15)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="classes"):
        make_shapes(4, classes=("disk", "hexagon"))
    with pytest.raises(ValueError, match="classes"):
        make_shapes(4, classes=("disk", "disk"))
    with pytest.raises(ValueError, match="n must"):
        make_shapes(0)
    with pytest.raises(ValueError, match="size"):
        make_shapes(4, size=4)
    with pytest.raises(ValueError, match="radius_range"):
        make_shapes(4, radius_range=(0.3, 0.2))
    with pytest.raises(ValueError, match="radius_range"):
        make_shapes(4, radius_range=(0.2, 0.6))
    with pytest.raises(ValueError, match="max_offset"):
        make_shapes(4, max_offset=-0.1)
