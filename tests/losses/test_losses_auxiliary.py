"""The auxiliary objectives' terms against direct numpy transcriptions of their formulas: the
variance-normalized reconstruction loss and its channel weightings, the rotated batch
quarters and the rotation cross-entropy; the bit-matched oracle's images."""

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    bit_matched_images,
    normalized_reconstruction_loss,
    reconstruction_channel_weights,
    rotate_quarters,
    rotation_cross_entropy,
)
from cl_properties.losses.auxiliary import MIN_VARIANCE


def reference_reconstruction(prediction, target, weights):
    """sum_c w_c mean_bhw (p - x)^2 / max(var_bhw x_c, v0), channel by channel, in float64."""
    total = 0.0
    for c, w in enumerate(weights):
        x, p = target[..., c].astype(np.float64), prediction[..., c].astype(np.float64)
        total += w * np.mean((p - x) ** 2) / max(x.var(), MIN_VARIANCE)
    return total


def _images(*shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_reconstruction_loss_matches_the_reference():
    target, prediction = _images(6, 4, 4, 3), _images(6, 4, 4, 3, seed=1)
    weights = [0.2, 0.3, 0.5]
    got = normalized_reconstruction_loss(prediction, target, weights)
    np.testing.assert_allclose(got, reference_reconstruction(prediction, target, weights), 1e-5)


def test_predicting_each_channel_mean_costs_one_and_a_constant_channel_is_floored():
    target = _images(5, 3, 3, 2)
    target[..., 1] = 1.0  # constant over the batch: its variance is floored
    mean = np.broadcast_to(target.mean(axis=(0, 1, 2)), target.shape)
    weights = reconstruction_channel_weights(2, 1, "groups")
    np.testing.assert_allclose(normalized_reconstruction_loss(mean, target, weights), 0.5, 1e-5)
    off = mean + np.array([0.0, 0.1], np.float32)
    expected = 0.5 + 0.5 * 0.01 / MIN_VARIANCE
    np.testing.assert_allclose(normalized_reconstruction_loss(off, target, weights), expected, 1e-4)


def test_reconstruction_gradient_reaches_the_prediction_only():
    prediction, target = tf.constant(_images(4, 2, 2, 1)), tf.constant(_images(4, 2, 2, 1, seed=2))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([prediction, target])
        loss = normalized_reconstruction_loss(prediction, target, [1.0])
    variance = max(float(np.var(target)), MIN_VARIANCE)
    expected = 2 * (prediction - target) / (prediction.shape.num_elements() * variance)
    np.testing.assert_allclose(tape.gradient(loss, prediction), expected, rtol=1e-5)
    assert tape.gradient(loss, target) is None  # the target is data, stop-gradient


def test_group_weights_balance_image_and_extra_channels_uniform_does_not():
    # A grey image and 20 bit planes (RandBit's calibration): the planes take half, or 20/21.
    groups = reconstruction_channel_weights(21, 1, "groups")
    uniform = reconstruction_channel_weights(21, 1, "uniform")
    assert groups[0] == 0.5 and groups[1:] == [0.025] * 20
    assert uniform == [1 / 21] * 21
    assert reconstruction_channel_weights(5, 3, "groups") == [1 / 6] * 3 + [0.25] * 2
    # Without extra channels the two weightings are the same.
    assert reconstruction_channel_weights(3, 3, "groups") == [1 / 3] * 3
    assert reconstruction_channel_weights(3, 3, "uniform") == [1 / 3] * 3


def test_weighting_changes_which_channels_dominate_the_loss():
    # The image channel is badly reconstructed, the 4 bit planes perfectly.
    target = _images(8, 4, 4, 5)
    prediction = target.copy()
    prediction[..., 0] += 0.5
    image_error = reference_reconstruction(prediction, target, [1, 0, 0, 0, 0])
    groups = normalized_reconstruction_loss(
        prediction, target, reconstruction_channel_weights(5, 1, "groups")
    )
    uniform = normalized_reconstruction_loss(
        prediction, target, reconstruction_channel_weights(5, 1, "uniform")
    )
    np.testing.assert_allclose([groups, uniform], [image_error / 2, image_error / 5], rtol=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [((3, 1, "pixel"), "weighting must be one of"), ((3, 0, "groups"), "image_channels must be")],
)
def test_bad_weightings_are_rejected(args, message):
    with pytest.raises(ValueError, match=message):
        reconstruction_channel_weights(*args)


def test_rotate_quarters_rotates_each_quarter_by_its_label():
    images = _images(8, 5, 5, 2)
    rotated, labels = rotate_quarters(images)
    assert labels.numpy().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for i, k in enumerate(labels.numpy()):
        np.testing.assert_array_equal(rotated[i], np.rot90(images[i], k, axes=(0, 1)))


def test_rotate_quarters_with_an_unknown_batch_size_in_a_graph():
    rotate = tf.function(
        lambda x: rotate_quarters(x)[1], input_signature=[tf.TensorSpec([None, 3, 3, 1])]
    )
    assert rotate(_images(6, 3, 3, 1)).numpy().tolist() == [0, 0, 1, 2, 2, 3]


def test_rotation_cross_entropy_matches_the_reference():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(6, 4)), np.array([0, 1, 2, 3, 1, 0])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -np.mean(log_softmax[np.arange(6), labels])
    np.testing.assert_allclose(rotation_cross_entropy(logits, labels), expected, rtol=1e-5)
    np.testing.assert_allclose(rotation_cross_entropy(np.zeros((4, 4)), labels[:4]), np.log(4))


def test_bit_matched_images_put_the_next_images_planes_on_each_image():
    images = _images(4, 2, 2, 3)
    matched = bit_matched_images(images, image_channels=1).numpy()
    np.testing.assert_array_equal(matched[..., :1], images[..., :1])
    np.testing.assert_array_equal(matched[..., 1:], np.roll(images[..., 1:], -1, axis=0))
    # Without appended channels: the images themselves.
    np.testing.assert_array_equal(bit_matched_images(images, image_channels=3), images)
    with pytest.raises(ValueError, match=r"image_channels must be in \[1, 3\], got 0"):
        bit_matched_images(images, image_channels=0)
