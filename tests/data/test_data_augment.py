"""SimCLR augmentations: shapes, ranges, stateless determinism, switches, graph mode."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data import (
    AugmentConfig,
    EvalPreprocess,
    augment_image,
    center_crop,
    cifar_augment,
    crop_augment,
    example_seed,
    gaussian_blur,
    imagenet_augment,
    imagenet_eval_preprocess,
)

# Every built-in op off: the view must be the image itself.
OFF = AugmentConfig(crop=False, flip=False, color_jitter=False, blur=False)


def _image(shape, seed=0):
    return tf.random.stateless_uniform(shape, seed=[seed, 7])


def _view(image, config, index=0, epoch=0, view=1, seed=0):
    return augment_image(image, config, example_seed(seed, index, epoch, view)).numpy()


@pytest.mark.parametrize(
    "config, in_shape, out_shape",
    [
        (cifar_augment(), (32, 32, 3), (32, 32, 3)),
        (cifar_augment(blur=True, blur_prob=1.0), (32, 32, 3), (32, 32, 3)),
        (imagenet_augment(output_size=24), (40, 30, 3), (24, 24, 3)),
        (imagenet_augment(output_size=(16, 20)), (40, 30, 3), (16, 20, 3)),
        (crop_augment(), (28, 28, 1), (28, 28, 1)),
        (cifar_augment(blur=True, blur_prob=1.0, jitter_prob=1.0), (28, 28, 1), (28, 28, 1)),
    ],
)
def test_views_have_shape_dtype_and_range(config, in_shape, out_shape):
    view = augment_image(_image(in_shape), config, example_seed(3, 1, 0, 1))
    assert view.dtype == tf.float32
    assert tuple(view.shape) == out_shape
    assert float(tf.reduce_min(view)) >= 0.0 and float(tf.reduce_max(view)) <= 1.0


@pytest.mark.parametrize("config", [cifar_augment(), crop_augment()])
def test_seed_determines_the_view(config):
    channels = 1 if config == crop_augment() else 3
    image = _image((16, 16, channels))
    np.testing.assert_array_equal(_view(image, config, seed=5), _view(image, config, seed=5))
    assert not np.array_equal(_view(image, config, seed=5), _view(image, config, seed=6))
    # The two views of one image, and one view in two epochs, differ.
    assert not np.array_equal(_view(image, config, view=1), _view(image, config, view=2))
    assert not np.array_equal(_view(image, config, epoch=0), _view(image, config, epoch=1))
    assert not np.array_equal(_view(image, config, index=0), _view(image, config, index=1))


def test_example_seed_depends_on_every_component():
    seeds = {
        tuple(example_seed(s, i, e, v).numpy())
        for s in (0, 1)
        for i in (0, 1)
        for e in (0, 1)
        for v in (1, 2)
    }
    assert len(seeds) == 16


@pytest.mark.parametrize("channels", [1, 3])
def test_all_ops_off_is_the_identity(channels):
    image = _image((12, 10, channels))
    np.testing.assert_array_equal(_view(image, OFF), image.numpy())
    # Probabilities 0 are the identity too.
    zero_p = AugmentConfig(
        crop=False, flip=False, jitter_prob=0.0, grayscale_prob=0.0, blur=True, blur_prob=0.0
    )
    np.testing.assert_array_equal(_view(image, zero_p), image.numpy())


@pytest.mark.parametrize(
    "switch_on",
    [
        {"crop": True},
        {"flip": True},
        {"color_jitter": True, "jitter_prob": 1.0, "grayscale_prob": 0.0},
        {"color_jitter": True, "jitter_prob": 0.0, "grayscale_prob": 1.0},
        {"channel_permutation_prob": 1.0},
        {"blur": True, "blur_prob": 1.0},
    ],
)
def test_each_op_changes_the_image_when_switched_on(switch_on):
    image = _image((20, 20, 3))
    config = dataclasses.replace(OFF, **switch_on)
    changed = [not np.array_equal(_view(image, config, index=i), image.numpy()) for i in range(6)]
    assert any(changed)


def test_full_crop_of_a_square_image_is_the_identity():
    image = _image((16, 16, 3))
    config = dataclasses.replace(OFF, crop=True, crop_area=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    np.testing.assert_allclose(_view(image, config), image.numpy(), atol=1e-6)


def test_flip_is_exact_and_independent_of_the_other_draws():
    image = _image((16, 16, 3))
    crop = dataclasses.replace(OFF, crop=True)
    crop_flip = dataclasses.replace(crop, flip=True)
    flipped = 0
    for index in range(8):
        base = _view(image, crop, index=index)
        view = _view(image, crop_flip, index=index)
        # Each op has its own sub-seed: adding the flip leaves the crop unchanged.
        assert np.array_equal(view, base) or np.array_equal(view, base[:, ::-1])
        flipped += not np.array_equal(view, base)
    assert 0 < flipped < 8


def test_grayscale_gives_equal_channels():
    image = _image((8, 8, 3))
    config = dataclasses.replace(OFF, color_jitter=True, jitter_prob=0.0, grayscale_prob=1.0)
    view = _view(image, config)
    expected = tf.image.rgb_to_grayscale(image).numpy()
    np.testing.assert_allclose(view, np.repeat(expected, 3, axis=-1), atol=1e-6)


def test_channel_permutation_reorders_the_channels_and_leaves_the_other_draws():
    image = _image((8, 8, 3))
    crop = dataclasses.replace(OFF, crop=True)
    permuted = dataclasses.replace(crop, channel_permutation_prob=1.0)
    orders = set()
    for index in range(12):
        base, view = _view(image, crop, index=index), _view(image, permuted, index=index)
        # Each channel of the view is one of the crop's, each used once.
        order = [
            next(c for c in range(3) if np.array_equal(view[..., k], base[..., c]))
            for k in range(3)
        ]
        assert sorted(order) == [0, 1, 2]
        orders.add(tuple(order))
    assert len(orders) > 2


def test_jitter_on_one_channel_images():
    image = _image((10, 10, 1))
    config = dataclasses.replace(OFF, color_jitter=True, jitter_prob=1.0, jitter_strength=1.0)
    views = [_view(image, config, index=i) for i in range(4)]
    assert all(v.shape == (10, 10, 1) and v.min() >= 0 and v.max() <= 1 for v in views)
    assert any(not np.array_equal(v, image.numpy()) for v in views)


def test_gaussian_blur_keeps_constants_inside_and_smooths_noise():
    constant = tf.fill([9, 9, 2], 0.5)
    blurred = gaussian_blur(constant, sigma=1.0, radius=2).numpy()
    # Zero padding only touches the `radius`-wide border.
    np.testing.assert_allclose(blurred[2:-2, 2:-2], 0.5, atol=1e-6)
    noise = _image((16, 16, 3))
    smooth = gaussian_blur(noise, sigma=1.5, radius=3).numpy()
    assert smooth[3:-3, 3:-3].std() < noise.numpy()[3:-3, 3:-3].std()
    np.testing.assert_allclose(gaussian_blur(noise, sigma=1.0, radius=0), noise, atol=1e-7)


def test_same_views_in_tf_function_and_tf_data():
    images = _image((4, 16, 16, 3))
    config = cifar_augment(blur=True)
    eager = np.stack([_view(images[i], config, index=i) for i in range(4)])

    @tf.function
    def traced(image, index):
        return augment_image(image, config, example_seed(0, index, 0, 1))

    in_function = np.stack([traced(images[i], tf.constant(i, tf.int64)).numpy() for i in range(4)])
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .enumerate()
        .map(lambda i, x: augment_image(x, config, example_seed(0, i, 0, 1)))
    )
    in_data = np.stack(list(dataset.as_numpy_iterator()))
    np.testing.assert_allclose(in_function, eager, atol=1e-6)
    np.testing.assert_allclose(in_data, eager, atol=1e-6)


def test_extra_layers_run_after_the_built_in_ops():
    image = _image((16, 16, 3))
    base = _view(image, cifar_augment())
    config = cifar_augment(extra_layers=(keras.layers.Rescaling(0.5), lambda x: 1.0 - x))
    np.testing.assert_allclose(_view(image, config), 1.0 - 0.5 * base, atol=1e-6)


def test_center_crop_takes_the_central_region():
    image = tf.reshape(tf.range(8 * 8, dtype=tf.float32) / 64.0, [8, 8, 1])
    np.testing.assert_allclose(center_crop(image, 4, 0.5), image[2:6, 2:6], atol=1e-6)
    np.testing.assert_allclose(center_crop(image), image, atol=1e-6)
    # Non-square image to a square output: the largest central square, then resized.
    wide = tf.reshape(tf.range(4 * 8, dtype=tf.float32) / 32.0, [4, 8, 1])
    np.testing.assert_allclose(center_crop(wide, 4), wide[:, 2:6], atol=1e-6)


def test_eval_preprocess():
    image = _image((30, 20, 3))
    np.testing.assert_array_equal(EvalPreprocess()(image), image)
    out = imagenet_eval_preprocess(output_size=16)(image)
    assert out.shape == (16, 16, 3) and float(tf.reduce_min(out)) >= 0.0
    assert imagenet_eval_preprocess().output_size == 224
    assert imagenet_eval_preprocess().crop_proportion == 0.875


def test_presets():
    assert cifar_augment() == AugmentConfig()
    assert cifar_augment().jitter_strength == 0.5 and not cifar_augment().blur
    imagenet = imagenet_augment()
    assert (imagenet.jitter_strength, imagenet.blur, imagenet.output_size) == (1.0, True, 224)
    assert imagenet.crop_area == (0.08, 1.0)
    randbit = crop_augment()
    assert randbit.crop_area == (0.5, 1.0) and randbit.crop_ratio == (3 / 4, 4 / 3)
    assert not randbit.flip and not randbit.color_jitter


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_area": (0.0, 1.0)}, "crop_area"),
        ({"crop_area": (0.5, 1.5)}, "crop_area"),
        ({"crop_area": (0.9, 0.5)}, "crop_area"),
        ({"crop_area": 0.5}, "crop_area"),
        ({"crop_ratio": (-1.0, 1.0)}, "crop_ratio"),
        ({"jitter_strength": -0.1}, "jitter_strength"),
        ({"jitter_prob": 1.5}, "jitter_prob"),
        ({"grayscale_prob": -0.2}, "grayscale_prob"),
        ({"channel_permutation_prob": 1.1}, "channel_permutation_prob"),
        ({"blur_prob": 2}, "blur_prob"),
        ({"output_size": 0}, "output_size"),
        ({"output_size": (32, 32, 3)}, "output_size"),
        ({"resize_method": "cubic"}, "resize_method"),
        ({"extra_layers": [abs]}, "extra_layers"),
        ({"extra_layers": (3,)}, "extra_layers"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**kwargs)


def test_bad_calls_raise():
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        augment_image(tf.zeros([2, 8, 8, 3]), cifar_augment(), example_seed(0, 0, 0, 1))
    with pytest.raises(ValueError, match="AugmentConfig"):
        augment_image(tf.zeros([8, 8, 3]), {"crop": True}, example_seed(0, 0, 0, 1))
    with pytest.raises(ValueError, match="crop_proportion"):
        center_crop(tf.zeros([8, 8, 3]), 4, 0.0)
    with pytest.raises(ValueError, match="crop_proportion"):
        EvalPreprocess(crop_proportion=1.2)
