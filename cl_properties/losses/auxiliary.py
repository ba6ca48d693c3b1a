"""Auxiliary objectives added to a contrastive loss against feature suppression: reconstruction
of the augmented view and rotation prediction, as pure `keras.ops` functions; and the images
of the bit-matched oracle's extra negatives (its loss: `nt_xent_extra_negatives_terms`).

A contrastive loss alone is satisfied by any feature that tells the two views of an image
from the others (RandBit's shared bits suffice): an auxiliary term that needs the image itself
keeps its features in the representation h. The models that add these terms to the
contrastive objective are in `cl_properties.models.auxiliary`.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

# How the reconstruction weighs channels: "groups", the image's channels and the appended
# ones (RandBit's bit planes) as two groups of equal weight; "uniform", every channel alike.
RECON_WEIGHTINGS = ("groups", "uniform")
# Floor of a target channel's variance: a channel constant over the batch (a bit plane that
# happens to hold one value) would otherwise divide its error by ~0.
MIN_VARIANCE = 1e-3
ROTATIONS = 4  # 0, 90, 180 and 270 degrees


def reconstruction_channel_weights(
    channels: int, image_channels: int, weighting: str = "groups"
) -> list[float]:
    """Weights w_c (summing to 1) of the `channels` reconstructed channels, the first
    `image_channels` of which are the image's and the rest appended (RandBit's bit planes).

    "groups": each group weighs 1/2, shared equally by its channels (w = 1 / (2 C_image) and
    1 / (2 C_extra)), as the VAE's "group" bit weighting: b constant bit planes cannot outweigh
    the image however many there are. Without appended channels the image takes all. This
    uses knowledge of the nuisance: which channels it occupies.
    "uniform": w = 1 / C for every channel, no knowledge of the nuisance.
    Raises ValueError for an unknown weighting or image_channels outside [1, channels].
    """
    if weighting not in RECON_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {RECON_WEIGHTINGS}, got {weighting!r}")
    if not 1 <= image_channels <= channels:
        raise ValueError(f"image_channels must be in [1, {channels}], got {image_channels}")
    extra = channels - image_channels
    if weighting == "uniform" or not extra:
        return [1.0 / channels] * channels
    return [0.5 / image_channels] * image_channels + [0.5 / extra] * extra


def normalized_reconstruction_loss(prediction, target, channel_weights: Sequence[float]):
    """The channel-weighted, variance-normalized squared error of a reconstruction.

        L_rec = sum_c w_c * mean_{b,h,w} (x_hat_bhwc - x_bhwc)^2 / max(Var_{b,h,w}(x_c), v0)

    with x the target [B, H, W, C] (channels last), x_hat the prediction, w_c the
    `channel_weights` (see `reconstruction_channel_weights`; summing to 1, L_rec = 1 when each
    channel is predicted by its batch mean) and v0 = `MIN_VARIANCE`. Dividing by the variance
    puts channels of any spread on one scale; the variance is the target's, a constant of the
    gradient (stop-gradient). In the spirit of Li et al., "Addressing Feature Suppression in
    Unsupervised Visual Representations", WACV 2023, which reconstructs the input from the
    contrastive representation. Under distribution the means and variance are the replica's
    batch's. Computed in float32.
    """
    prediction = ops.cast(prediction, "float32")
    target = ops.stop_gradient(ops.cast(target, "float32"))
    axes = (0, 1, 2)
    variance = ops.maximum(ops.var(target, axis=axes), MIN_VARIANCE)
    error = ops.mean(ops.square(prediction - target), axis=axes) / variance
    return ops.sum(error * ops.convert_to_tensor(channel_weights, "float32"))


def rotate_quarters(images):
    """(rotated, labels): the batch's quarters rotated by 0, 90, 180 and 270 degrees.

    Image i of a batch of n [n, H, W, C] (H = W) gets label k = floor(4 i / n) and is rotated
    by k * 90 degrees counterclockwise, so one batch holds every rotation (Gidaris et al.,
    ICLR 2018; E-SSL, Dangovski et al., ICLR 2022, rotates every image four times instead).
    Labels int32 [n]. The batches are shuffled, so position decides nothing about the image.
    """
    images = ops.convert_to_tensor(images)
    n = ops.shape(images)[0]
    labels = ops.cast((ops.arange(n) * ROTATIONS) // n, "int32")
    rotated = images
    for k in range(1, ROTATIONS):
        selected = ops.reshape(labels == k, (-1, 1, 1, 1))
        rotated = ops.where(selected, ops.rot90(images, k=k, axes=(1, 2)), rotated)
    return rotated, labels


def bit_matched_images(images, image_channels: int):
    """Row k: image k's first `image_channels` channels (its pixels) with the appended
    channels of image k + 1 (mod n), for images [n, H, W, C]: image k's appended planes
    (RandBit's bits) on the pixels of image k - 1, at row k - 1. A fixed cyclic shift, so
    no image keeps its own planes (n >= 2) and each row's pixels are those of the same row.
    Without appended channels (image_channels == C) the images themselves.
    Raises ValueError unless 1 <= image_channels <= C.
    """
    images = ops.convert_to_tensor(images)
    channels = images.shape[-1]
    if not 1 <= image_channels <= channels:
        raise ValueError(f"image_channels must be in [1, {channels}], got {image_channels}")
    pixels, planes = images[..., :image_channels], images[..., image_channels:]
    return ops.concatenate([pixels, ops.roll(planes, shift=-1, axis=0)], axis=-1)


def rotation_cross_entropy(logits, labels):
    """The rotation-prediction loss: mean cross-entropy of the rotation classifier.

        CE = -(1/n) sum_i log softmax(logits_i)[r_i]

    with logits [n, 4] of the rotated images and r_i their rotations (`rotate_quarters`).
    E-SSL (Dangovski et al., "Equivariant Contrastive Learning", ICLR 2022) adds lambda * CE
    to the contrastive loss: the representation must then tell the image's orientation, which
    features that do not depend on the image (constant bit planes) cannot. Computed in
    float32; under distribution the mean is the replica's.
    """
    logits = ops.cast(logits, "float32")
    log_probabilities = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probabilities, ops.expand_dims(labels, -1), axis=-1)
    return -ops.mean(picked)
