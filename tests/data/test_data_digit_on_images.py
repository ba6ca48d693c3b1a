import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data.digit_on_images import (
    digit_on_images_map,
    grid_offsets,
    make_digit_on_images,
    pool_indices,
)
from cl_properties.data.digits import digit_pool, load_digits

SIZE, D = 64, 8


@pytest.fixture(scope="module")
def digits():
    return load_digits("train", size=D)


def _black(n, channels=1):
    return np.zeros((n, SIZE, SIZE, channels), np.float32), np.arange(n, dtype=np.int32) % 4


def _noise(n):
    rng = np.random.default_rng(0)
    return rng.random((n, SIZE, SIZE, 1)).astype(np.float32) * 0.5, np.arange(n, dtype=np.int32) % 3


def _grid_layer(digit, size=SIZE):
    layer = np.zeros((size, size, digit.shape[-1]), np.float32)
    offsets = grid_offsets(size, digit.shape[0]).numpy()
    for top in offsets:
        for left in offsets:
            layer[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return layer


def test_grid_offsets_have_equal_gaps():
    np.testing.assert_array_equal(grid_offsets(64, 8).numpy(), [10, 28, 46])
    np.testing.assert_array_equal(grid_offsets(224, 28).numpy(), [35, 98, 161])


def test_digit_at_the_nine_grid_positions_and_labels(digits):
    bg, bg_labels = _black(12)
    out = make_digit_on_images(bg, bg_labels, digits.images, digits.labels, pool_size=20, seed=3)
    pool = digit_pool(digits.images, digits.labels, 20, seed=3)
    np.testing.assert_array_equal(out.pool_index, pool_indices(np.arange(12), 20, 3).numpy())
    for i in range(12):
        np.testing.assert_array_equal(out.images[i], _grid_layer(pool.images[out.pool_index[i]]))
    np.testing.assert_array_equal(out.labels["object"], bg_labels)
    np.testing.assert_array_equal(out.labels["digit"], pool.labels[out.pool_index])


def test_same_digit_across_builds_and_epochs(digits):
    bg, labels = _noise(16)
    a = make_digit_on_images(bg, labels, digits.images, digits.labels, pool_size=50, seed=1)
    b = make_digit_on_images(bg, labels, digits.images, digits.labels, pool_size=50, seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.pool_index, b.pool_index)
    c = make_digit_on_images(bg, labels, digits.images, digits.labels, pool_size=50, seed=2)
    assert not np.array_equal(a.images, c.images)
    # tf.data version over shared records: identical to numpy, in every epoch (reshuffled).
    pool = digit_pool(digits.images, digits.labels, 50, seed=1)
    records = tf.data.Dataset.from_tensor_slices(
        {"image": bg, "labels": {"label": labels}, "index": np.arange(16, dtype=np.int64)}
    )
    ds = records.shuffle(16, seed=0, reshuffle_each_iteration=True).map(
        digit_on_images_map(pool.images, pool.labels, 1)
    )
    for _ in range(2):
        for r in ds:
            i = int(r["index"])
            np.testing.assert_array_equal(r["image"].numpy(), a.images[i])
            assert int(r["labels"]["digit"]) == a.labels["digit"][i]
            assert int(r["labels"]["object"]) == labels[i]


def test_pool_of_one_gives_one_digit_and_pool_of_ten_at_most_ten(digits):
    bg, labels = _black(40)
    one = make_digit_on_images(bg, labels, digits.images, digits.labels, pool_size=1, seed=0)
    assert len(np.unique(one.images.reshape(40, -1), axis=0)) == 1
    assert len(np.unique(one.labels["digit"])) == 1
    ten = make_digit_on_images(bg, labels, digits.images, digits.labels, pool_size=10, seed=0)
    patches = ten.images[:, 10:18, 10:18].reshape(40, -1)
    assert len(np.unique(patches, axis=0)) <= 10
    assert len(np.unique(ten.pool_index)) == 10  # 40 images use all 10 pool digits here


def test_merges(digits):
    bg = np.full((6, SIZE, SIZE, 3), 0.7, np.float32)
    labels = np.zeros(6, np.int32)
    pool = digit_pool(digits.images, digits.labels, 5, seed=0)
    added = make_digit_on_images(
        bg, labels, digits.images, digits.labels, pool_size=5, seed=0, merge="add"
    )
    maxed = make_digit_on_images(
        bg, labels, digits.images, digits.labels, pool_size=5, seed=0, merge="max"
    )
    assert added.images.shape == (6, SIZE, SIZE, 3)
    for i in range(6):
        layer = _grid_layer(pool.images[added.pool_index[i]])  # grey digit on every channel
        np.testing.assert_allclose(added.images[i], np.clip(bg[i] + layer, 0, 1), atol=1e-6)
        np.testing.assert_array_equal(maxed.images[i], np.maximum(bg[i], layer))
    assert added.images.max() == 1.0  # clipped, never above 1


def test_random_positions_fixed_per_image_and_inside(digits):
    bg, labels = _black(20)
    kwargs = dict(pool_size=30, seed=4, positions="random", digit_size=12)
    a = make_digit_on_images(bg, labels, digits.images, digits.labels, **kwargs)
    b = make_digit_on_images(bg, labels, digits.images, digits.labels, **kwargs)
    np.testing.assert_array_equal(a.images, b.images)
    pool = digit_pool(digits.images, digits.labels, 30, seed=4)
    big = tf.image.resize(pool.images, (12, 12), antialias=True).numpy().clip(0, 1)
    corners = set()
    for i in range(20):
        digit = big[a.pool_index[i]]
        ys, xs = np.nonzero(a.images[i, ..., 0])
        top, left = ys.min(), xs.min()
        # One copy only: the image is the digit pasted at one corner.
        dy, dx = np.nonzero(digit[..., 0])
        top, left = top - dy.min(), left - dx.min()
        expected = np.zeros((SIZE, SIZE, 1), np.float32)
        expected[top : top + 12, left : left + 12] = digit
        np.testing.assert_allclose(a.images[i], expected, atol=1e-6)
        corners.add((top, left))
    assert len(corners) > 10


def test_dynamic_image_sizes_in_graph_mode(digits):
    pool = digit_pool(digits.images, digits.labels, 3, seed=0)
    sizes = [(30, 40), (64, 50), (24, 24)]

    def gen():
        for i, (h, w) in enumerate(sizes):
            yield {
                "image": np.zeros((h, w, 3), np.float32),
                "labels": {"label": np.int32(i)},
                "index": np.int64(i),
            }

    spec = {
        "image": tf.TensorSpec([None, None, 3], tf.float32),
        "labels": {"label": tf.TensorSpec([], tf.int32)},
        "index": tf.TensorSpec([], tf.int64),
    }
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec).map(
        digit_on_images_map(pool.images, pool.labels, 0)
    )
    for (h, w), r in zip(sizes, ds):
        image = r["image"].numpy()
        assert image.shape == (h, w, 3)
        tops, lefts = grid_offsets(h, D).numpy(), grid_offsets(w, D).numpy()
        digit = pool.images[pool_indices(r["index"], 3, 0).numpy()]
        for top in tops:
            for left in lefts:
                np.testing.assert_array_equal(
                    image[top : top + D, left : left + D], np.repeat(digit, 3, -1)
                )
    sizes[:] = [(20, 30)]  # too small for a 3x3 grid of 8 px digits: caught at run time
    with pytest.raises(tf.errors.InvalidArgumentError, match="does not fit"):
        list(ds)


def test_bad_arguments_raise(digits):
    bg, labels = _black(4)
    args = (bg, labels, digits.images, digits.labels)
    with pytest.raises(ValueError, match="pool_size"):
        make_digit_on_images(*args, pool_size=0, seed=0)
    with pytest.raises(ValueError, match="pool_size"):
        make_digit_on_images(*args, pool_size=10**6, seed=0)
    with pytest.raises(ValueError, match="at least 66 px"):
        make_digit_on_images(*args, pool_size=3, seed=0, digit_size=22)
    with pytest.raises(ValueError, match="merge"):
        make_digit_on_images(*args, pool_size=3, seed=0, merge="mean")
    with pytest.raises(ValueError, match="positions"):
        make_digit_on_images(*args, pool_size=3, seed=0, positions="corner")
    pool = digit_pool(digits.images, digits.labels, 2, seed=0)
    fn = digit_on_images_map(pool.images, pool.labels, 0)
    record = {
        "image": tf.zeros([64, 64, 1]),
        "labels": {"a": 0, "b": 1},
        "index": tf.constant(0, tf.int64),
    }
    with pytest.raises(ValueError, match="object_key"):
        fn(record)
    named = digit_on_images_map(pool.images, pool.labels, 0, object_key="b")(record)
    assert int(named["labels"]["object"]) == 1
