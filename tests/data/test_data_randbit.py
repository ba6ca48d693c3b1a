import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data.randbit import RandBit, image_code


def _images(n=40, size=28, channels=1, seed=0):
    # Images from 8-bit data, as every source produces them.
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, channels)) / 255.0).astype(np.float32)


def _record(image, index=0):
    return {
        "image": tf.constant(image),
        "labels": {"label": tf.constant(0)},
        "index": tf.constant(index, tf.int64),
    }


def _bits(x, channels=1):
    """The code carried by the planes of a view [H, W, C + bits], checking planes are constant."""
    planes = x.numpy()[..., channels:]
    np.testing.assert_array_equal(planes, np.broadcast_to(planes[:1, :1], planes.shape))
    assert set(np.unique(planes)) <= {0.0, 1.0}
    return planes[0, 0].astype(int)


def test_shared_bits_are_identical_across_views_epochs_and_evaluation():
    rb = RandBit(20, seed=1)
    image = _images(1)[0]
    rec = _record(image, index=3)
    crop1, crop2 = tf.image.flip_left_right(image), tf.image.flip_up_down(image)
    v1, v2 = rb.views(rec, crop1, crop2)
    assert v1.shape == (28, 28, 21) and v1.dtype == tf.float32
    # The image channels are untouched, the planes appended after them.
    np.testing.assert_array_equal(v1.numpy()[..., :1], crop1.numpy())
    np.testing.assert_array_equal(v2.numpy()[..., :1], crop2.numpy())
    w1, _ = rb.views(rec, image, image)  # another epoch, other augmentations
    e = rb.single(rec, image)
    codes = [_bits(x) for x in (v1, v2, w1, e)]
    for code in codes[1:]:
        np.testing.assert_array_equal(code, codes[0])
    np.testing.assert_array_equal(codes[0], image_code(image, 20, seed=1).numpy())


def test_code_ignores_float_noise_and_index_but_depends_on_seed():
    image = _images(1)[0]
    noisy = image + np.float32(1e-4)
    np.testing.assert_array_equal(image_code(image, 30).numpy(), image_code(noisy, 30).numpy())
    rb = RandBit(30)
    np.testing.assert_array_equal(
        _bits(rb.single(_record(image, 0), image)), _bits(rb.single(_record(image, 9), image))
    )
    codes = np.stack([image_code(x, 30, seed=s).numpy() for x in _images(20) for s in (0, 1)])
    assert (codes[0::2] != codes[1::2]).any(axis=1).all()


def test_codes_differ_between_images_and_look_like_fair_coins():
    codes = np.stack([image_code(x, 30).numpy() for x in _images(200)])
    assert len(np.unique(codes, axis=0)) == 200
    assert 0.45 < codes.mean() < 0.55
    # Each bit separately is balanced too (4.5 standard deviations).
    assert np.all(np.abs(codes.mean(axis=0) - 0.5) < 4.5 * 0.5 / np.sqrt(200))


def test_per_view_bits_differ_between_views_and_change_with_the_view():
    rb = RandBit(20, mode="per_view", seed=0)
    images = _images(30)
    different = 0
    for i, image in enumerate(images):
        rec = _record(image, i)
        v1, v2 = rb.views(rec, image, image)  # identical views: the salts still separate them
        different += not np.array_equal(_bits(v1), _bits(v2))
        # Deterministic given the view (no hidden state).
        np.testing.assert_array_equal(_bits(rb.views(rec, image, image)[0]), _bits(v1))
    assert different == 30
    image = images[0]
    rec = _record(image, 0)
    flipped = tf.image.flip_left_right(image)  # a new epoch's augmentation
    assert not np.array_equal(
        _bits(rb.views(rec, image, image)[0]), _bits(rb.views(rec, flipped, image)[0])
    )
    assert not np.array_equal(_bits(rb.single(rec, image)), _bits(rb.views(rec, image, image)[0]))


def test_colour_views_and_channels_added():
    rb = RandBit(5)
    image = _images(1, size=8, channels=3)[0]
    v1, v2 = rb.views(_record(image), image, image)
    assert v1.shape == (8, 8, 8) and rb.channels_added() == 5
    np.testing.assert_array_equal(_bits(v1, channels=3), _bits(v2, channels=3))


def test_zero_bits_is_the_identity():
    rb = RandBit(0)
    image = tf.constant(_images(1)[0])
    v1, v2 = rb.views(_record(image.numpy()), image, image)
    assert v1 is image and v2 is image and rb.single(_record(image.numpy()), image) is image
    assert rb.channels_added() == 0


@pytest.mark.parametrize("bits", [31, -1, 2.0, True])
def test_bad_bits_raise(bits):
    with pytest.raises(ValueError, match="bits"):
        RandBit(bits)


def test_bad_mode_and_seed_raise_and_config_is_frozen():
    with pytest.raises(ValueError, match="mode"):
        RandBit(3, mode="fresh")
    with pytest.raises(ValueError, match="seed"):
        RandBit(3, seed=1.5)
    rb = RandBit(3, mode="per_view", seed=2)
    assert dataclasses.asdict(rb) == {"bits": 3, "mode": "per_view", "seed": 2}
    with pytest.raises(dataclasses.FrozenInstanceError):
        rb.bits = 4


@pytest.mark.parametrize("mode", ["shared", "per_view"])
def test_works_inside_dataset_map_in_graph_mode(mode):
    images = _images(6)
    rb = RandBit(12, mode=mode, seed=5)
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "image": images,
            "labels": {"label": np.zeros(6, np.int32)},
            "index": np.arange(6, dtype=np.int64),
        }
    )
    two = ds.map(
        lambda r: rb.views(r, r["image"], tf.image.flip_left_right(r["image"])),
        num_parallel_calls=2,
    )
    assert two.element_spec[0].shape == (28, 28, 13)
    for i, (v1, v2) in enumerate(two):
        eager1, eager2 = rb.views(
            _record(images[i], i), images[i], tf.image.flip_left_right(images[i])
        )
        np.testing.assert_array_equal(v1.numpy(), eager1.numpy())
        np.testing.assert_array_equal(v2.numpy(), eager2.numpy())
    # Unknown spatial size (e.g. TFDS images before resizing).
    single = tf.function(
        lambda image, index: rb.single({"image": image, "index": index}, image),
        input_signature=[tf.TensorSpec([None, None, 1]), tf.TensorSpec([], tf.int64)],
    )
    out = single(tf.constant(images[0, :10, :7]), tf.constant(0, tf.int64))
    assert out.shape == (10, 7, 13)


@pytest.mark.parametrize("mode", ["shared", "per_view"])
def test_inside_the_two_view_pipeline(mode):
    from cl_properties.data.augment import crop_augment
    from cl_properties.data.pipeline import eval_dataset, two_view_dataset
    from cl_properties.data.sources import source_from_arrays

    images = _images(8, size=12)
    source = source_from_arrays(images, {"label": np.arange(8)})
    rb = RandBit(16, mode=mode, seed=3)
    batches = two_view_dataset(
        source, crop_augment(), batch_size=8, seed=0, view_transform=rb, repeat=True
    ).take(2)  # two epochs of one batch each
    ((eval_images, eval_labels),) = eval_dataset(source, batch_size=8, view_transform=rb)
    assert eval_images.shape == (8, 12, 12, 17)
    per_epoch = []
    for (v1, v2), labels in batches:
        assert v1.shape == (8, 12, 12, 17)
        b1, b2 = v1.numpy()[:, 0, 0, 1:], v2.numpy()[:, 0, 0, 1:]
        expected = np.stack([image_code(images[i], 16, seed=3).numpy() for i in labels["label"]])
        if mode == "shared":
            np.testing.assert_array_equal(b1, expected)
            np.testing.assert_array_equal(b2, expected)
        else:
            assert (b1 != b2).any(axis=1).all()
        per_epoch.append(b1[np.argsort(labels["label"])])
    # Shared codes are the same in every epoch; per_view codes are re-drawn each epoch.
    same_as_before = (per_epoch[0] == per_epoch[1]).all(axis=1)
    assert same_as_before.all() if mode == "shared" else not same_as_before.any()
    if mode == "shared":
        np.testing.assert_array_equal(
            eval_images.numpy()[:, 0, 0, 1:], [image_code(x, 16, seed=3).numpy() for x in images]
        )
