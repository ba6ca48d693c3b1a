import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data.digits import digit_pool, load_digits, resize_digits


def _rows(images):
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_split_sizes_shapes_and_ranges():
    train, test = load_digits("train"), load_digits("test")
    assert len(train.labels) == 1437 and len(test.labels) == 360
    for part in (train, test):
        assert part.images.shape[1:] == (28, 28, 1) and part.images.dtype == np.float32
        assert part.labels.dtype == np.int32 and set(np.unique(part.labels)) == set(range(10))
        assert part.images.min() >= 0.0 and part.images.max() <= 1.0
        assert part.images.max() > 0.9  # strokes reach full intensity after scaling by 1/16


def test_native_size_is_the_library_data_over_16_and_splits_partition_it():
    import sklearn.datasets

    raw = sklearn.datasets.load_digits()
    everything = load_digits("all", size=8)
    np.testing.assert_array_equal(everything.images[..., 0], (raw.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(everything.labels, raw.target)
    train, test = load_digits("train", size=8), load_digits("test", size=8)
    both = np.concatenate([train.images, test.images])
    np.testing.assert_array_equal(_rows(both), _rows(everything.images))


def test_split_is_stratified():
    train, test = load_digits("train", size=8), load_digits("test", size=8)
    total = np.bincount(load_digits("all", size=8).labels, minlength=10)
    np.testing.assert_allclose(np.bincount(test.labels, minlength=10), total * 0.2, atol=1.0)
    np.testing.assert_array_equal(
        np.bincount(train.labels, minlength=10) + np.bincount(test.labels, minlength=10), total
    )


def test_seeded_determinism():
    a, b = load_digits("test", seed=3, size=8), load_digits("test", seed=3, size=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = load_digits("test", seed=4, size=8)
    assert not np.array_equal(_rows(a.images), _rows(c.images))


def test_resize_is_bilinear_and_identity_at_same_size():
    images = load_digits("all", size=8).images[:5]
    assert resize_digits(images, 8) is images
    big = resize_digits(images, 28)
    expected = tf.image.resize(images, (28, 28), method="bilinear").numpy()
    np.testing.assert_allclose(big, np.clip(expected, 0, 1), atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits("train", test_fraction=1.0)
    with pytest.raises(ValueError, match="size"):
        resize_digits(np.zeros((1, 8, 8, 1)), 0)


def test_digit_pool_is_unique_seeded_and_validated():
    digits = load_digits("train", size=8)
    pool = digit_pool(digits.images, digits.labels, 50, seed=1)
    assert pool.images.shape == (50, 8, 8, 1)
    assert len(np.unique(pool.images.reshape(50, -1), axis=0)) == 50
    again = digit_pool(digits.images, digits.labels, 50, seed=1)
    np.testing.assert_array_equal(pool.images, again.images)
    other = digit_pool(digits.images, digits.labels, 50, seed=2)
    assert not np.array_equal(pool.images, other.images)
    # Each pool image keeps its own label.
    for image, label in zip(pool.images, pool.labels):
        match = np.all(digits.images == image, axis=(1, 2, 3))
        assert label in digits.labels[match]
    # Duplicates count once.
    dup = np.concatenate([digits.images[:3], digits.images[:3]])
    assert len(digit_pool(dup, np.zeros(6, np.int32), 3, seed=0).images) == 3
    with pytest.raises(ValueError, match="pool_size"):
        digit_pool(dup, np.zeros(6, np.int32), 4, seed=0)
    with pytest.raises(ValueError, match="pool_size"):
        digit_pool(digits.images, digits.labels, 0, seed=0)
