"""The contrastive model with an auxiliary objective: feature-suppression remedies whose
objective needs the images themselves, not only the projections (z1, z2) (paper-notes
section 5). Most add a term to the contrastive loss,

    L = contrastive loss + weight * auxiliary term

- "reconstruction" (`ReconstructionContrastiveModel`): a decoder reconstructs each augmented
  view, downsampled, from its representation h (in the spirit of Li et al., WACV 2023);
- "rotation" (`RotationContrastiveModel`): a classifier tells the rotation of a rotated view
  from its h (E-SSL, Dangovski et al., ICLR 2022);
- "reconstruction_rotation" (`ReconstructionRotationContrastiveModel`): both terms together,
  each with its own weight;

each an `AuxiliaryContrastiveModel` subclass whose auxiliary head is a sub-model built from
the encoder's shapes; the term (unweighted) is logged as a metric of its own. The oracle
control adds negatives to NT-Xent instead:

- "bit_matched" (`BitMatchedContrastiveModel`): extra negatives carrying the anchor's own
  appended channels (RandBit's bits) on other images' pixels (conditional contrastive
  learning, Tsai et al. 2021), which only the image tells apart.

`AUXILIARIES` names them with their calibrated presets; `build_auxiliary_model` builds one by
name.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from cl_properties.distribute import num_replicas_in_sync
from cl_properties.losses import ContrastiveLoss, LossTerms, nt_xent_extra_negatives_terms
from cl_properties.losses.auxiliary import (
    ROTATIONS,
    bit_matched_images,
    normalized_reconstruction_loss,
    reconstruction_channel_weights,
    rotate_quarters,
    rotation_cross_entropy,
)
from cl_properties.losses.primitives import check_nonnegative
from cl_properties.models.contrastive import ContrastiveModel

# The reconstruction target is the view average-pooled to at most this many pixels a side.
MAX_TARGET_SIZE = 16
DECODER_FILTERS = 32


def target_pooling(height: int, width: int) -> int:
    """The reconstruction target's pooling factor f = ceil(max(H, W) / MAX_TARGET_SIZE): the
    target is at most 16 px a side (28 px digits: 14 px, the calibration's; 14 px: itself),
    so the decoder stays small whatever the input size."""
    return math.ceil(max(height, width) / MAX_TARGET_SIZE)


def view_decoder(
    representation_dim: int, target_shape: Sequence[int], name: str = "view_decoder"
) -> keras.Model:
    """h (representation_dim,) -> reconstruction (h, w, C) of the pooled view:

        Dense(h0 * w0 * 32) -> ReLU -> reshape (h0, w0, 32) -> ConvT(32, 3x3, stride 2) -> ReLU
        -> Conv(C, 3x3) -> central crop to (h, w)

    with h0 = ceil(h / 2), w0 = ceil(w / 2) (the calibration's at 28 px: 7 x 7 -> 14 x 14).
    No BatchNorm: the decoder's statistics would mix the two views' batches."""
    height, width, channels = target_shape
    h0, w0 = math.ceil(height / 2), math.ceil(width / 2)
    features = keras.Input(shape=(representation_dim,), name="features")
    x = keras.layers.Dense(h0 * w0 * DECODER_FILTERS, activation="relu", name="dense")(features)
    x = keras.layers.Reshape((h0, w0, DECODER_FILTERS))(x)
    x = keras.layers.Conv2DTranspose(
        DECODER_FILTERS, 3, strides=2, padding="same", activation="relu", name="up"
    )(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", name="reconstruction")(x)
    top, left = (2 * h0 - height) // 2, (2 * w0 - width) // 2
    cropping = ((top, 2 * h0 - height - top), (left, 2 * w0 - width - left))
    return keras.Model(features, keras.layers.Cropping2D(cropping, name="crop")(x), name=name)


def rotation_classifier(representation_dim: int, name: str = "rotation_classifier") -> keras.Model:
    """h (representation_dim,) -> 4 rotation logits: Dense(D) -> ReLU -> Dense(4), E-SSL's
    MLP predictor in small (its own has two hidden layers of 2048 with BatchNorm)."""
    features = keras.Input(shape=(representation_dim,), name="features")
    x = keras.layers.Dense(representation_dim, activation="relu", name="hidden")(features)
    logits = keras.layers.Dense(ROTATIONS, dtype="float32", name="logits")(x)
    return keras.Model(features, logits, name=name)


class AuxiliaryContrastiveModel(ContrastiveModel):
    """A `ContrastiveModel` trained on `loss + weight * term`, the term defined by a subclass
    (`auxiliary_loss`) and logged, unweighted, as the metric `TERM`; "loss" stays the
    contrastive loss. The term is computed for two-view batches, in training and evaluation.

    Distribution: the term is a mean over the replica's batch, which the model's division of
    the per-replica objective by the replica count turns into the global mean (as the probes').

    Args: those of `ContrastiveModel`, and `weight` >= 0 (lambda of the term).
    """

    TERM = ""  # the metric's name

    def __init__(self, encoder, head, loss: ContrastiveLoss, *, weight: float, **kwargs):
        super().__init__(encoder, head, loss, **kwargs)
        self.weight = check_nonnegative(weight, "weight")
        self._trackers[self.TERM] = keras.metrics.Mean(name=self.TERM)

    def auxiliary_loss(self, view1, view2, features, training: bool = False) -> tf.Tensor:
        """The term (a float32 scalar), given the views [B, H, W, C] and their representations
        `features` [2B, D] (view 1 first)."""
        raise NotImplementedError

    def _auxiliary_objective(self, view1, view2, features, training: bool):
        term = self.auxiliary_loss(view1, view2, features, training=training)
        self._trackers[self.TERM].update_state(term)
        return self.weight * term

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="cl_properties")
class ReconstructionContrastiveModel(AuxiliaryContrastiveModel):
    """Contrastive loss + weight * L_rec, the reconstruction of each augmented view from its h.

    A decoder (`view_decoder`) maps h of each view to that view average-pooled by
    `target_pooling` (the target is the view itself, not the clean image: the un-augmented
    image is not in the training batches); L_rec is `normalized_reconstruction_loss` with the
    channel weights of `weighting` ("groups": image channels and appended channels as two
    groups, which needs `image_channels`; "uniform": every channel alike). Metric "recon_loss".

    Args: those of `AuxiliaryContrastiveModel` (weight default 10, the calibration's),
    `weighting` (`RECON_WEIGHTINGS`) and `image_channels`: the input's first channels that are
    the image's, the rest appended by a view transform (None: all).
    """

    TERM = "recon_loss"
    USES_CHANNEL_LAYOUT = True

    def __init__(
        self,
        encoder,
        head,
        loss: ContrastiveLoss,
        *,
        weight: float = 10.0,
        weighting: str = "groups",
        image_channels: int | None = None,
        **kwargs,
    ):
        super().__init__(encoder, head, loss, weight=weight, **kwargs)
        height, width, channels = encoder.input_shape[1:]
        self.weighting = weighting
        self.image_channels = channels if image_channels is None else int(image_channels)
        self.channel_weights = reconstruction_channel_weights(
            channels, self.image_channels, weighting
        )
        self.pooling = target_pooling(height, width)
        target = (math.ceil(height / self.pooling), math.ceil(width / self.pooling), channels)
        self.decoder = view_decoder(encoder.output_shape[-1], target)

    def reconstruction_target(self, views) -> tf.Tensor:
        """The views average-pooled by `pooling` (each output pixel the mean of its window)."""
        if self.pooling == 1:
            return views
        return ops.average_pool(views, self.pooling, strides=self.pooling, padding="same")

    def auxiliary_loss(self, view1, view2, features, training: bool = False) -> tf.Tensor:
        target = self.reconstruction_target(tf.concat([view1, view2], axis=0))
        prediction = self.decoder(features, training=training)
        return normalized_reconstruction_loss(prediction, target, self.channel_weights)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "weighting": self.weighting,
            "image_channels": self.image_channels,
        }


def check_square(encoder: keras.Model) -> None:
    """ValueError unless the encoder's inputs are square: a quarter turn must keep the shape."""
    height, width = encoder.input_shape[1:3]
    if height != width:
        raise ValueError(
            f"rotation prediction needs square images (a quarter turn must keep the shape), "
            f"got {height}x{width}"
        )


def rotation_term(
    encoder: keras.Model, classifier: keras.Model, view1, training: bool = False
) -> tf.Tensor:
    """The rotation cross-entropy of E-SSL in small: view 1's batch quarters rotated by
    0/90/180/270 degrees (`rotate_quarters`), encoded in a pass of their own, and `classifier`
    predicting each one's rotation from its h."""
    rotated, labels = rotate_quarters(view1)
    return rotation_cross_entropy(classifier(encoder(rotated, training=training)), labels)


@keras.saving.register_keras_serializable(package="cl_properties")
class RotationContrastiveModel(AuxiliaryContrastiveModel):
    """Contrastive loss + weight * CE, the cross-entropy of predicting a view's rotation.

    View 1's batch quarters are rotated by 0/90/180/270 degrees (`rotate_quarters`) and
    encoded in an extra forward pass (BatchNorm sees them as a batch of their own); a
    classifier (`rotation_classifier`) predicts the rotation from their h. The contrastive
    pair stays unrotated: a rotated view inside the pair would teach rotation invariance, the
    opposite of E-SSL's equivariance. One rotation per image keeps the extra pass at B images
    (E-SSL encodes all four rotations of a third view). Metric "rotation_loss".

    Args: those of `AuxiliaryContrastiveModel` (weight default 10, the calibration's).
    Raises ValueError for non-square inputs, which a quarter turn does not map onto their shape.
    """

    TERM = "rotation_loss"

    def __init__(self, encoder, head, loss: ContrastiveLoss, *, weight: float = 10.0, **kwargs):
        check_square(encoder)
        super().__init__(encoder, head, loss, weight=weight, **kwargs)
        self.rotation_classifier = rotation_classifier(encoder.output_shape[-1])

    def auxiliary_loss(self, view1, view2, features, training: bool = False) -> tf.Tensor:
        del view2, features  # a view of its own, rotated
        return rotation_term(self.encoder, self.rotation_classifier, view1, training)


@keras.saving.register_keras_serializable(package="cl_properties")
class ReconstructionRotationContrastiveModel(ReconstructionContrastiveModel):
    """Contrastive loss + weight * L_rec + rotation_weight * CE: the reconstruction of each
    augmented view (`ReconstructionContrastiveModel`, its `auxiliary_loss` and metric
    "recon_loss") and the rotation prediction of `RotationContrastiveModel` (metric
    "rotation_loss") together, a try at one nuisance-agnostic remedy (remedies issue, item 5):
    by default the reconstruction weighs every channel alike, so neither term knows the
    nuisance.

    Args: those of `ReconstructionContrastiveModel` (weighting default "uniform") and
    `rotation_weight` >= 0 (lambda of the rotation term, default 10). Raises ValueError for
    non-square inputs.
    """

    ROTATION_TERM = "rotation_loss"

    def __init__(
        self,
        encoder,
        head,
        loss: ContrastiveLoss,
        *,
        rotation_weight: float = 10.0,
        weighting: str = "uniform",
        **kwargs,
    ):
        check_square(encoder)
        super().__init__(encoder, head, loss, weighting=weighting, **kwargs)
        self.rotation_weight = check_nonnegative(rotation_weight, "rotation_weight")
        self.rotation_classifier = rotation_classifier(encoder.output_shape[-1])
        self._trackers[self.ROTATION_TERM] = keras.metrics.Mean(name=self.ROTATION_TERM)

    def _auxiliary_objective(self, view1, view2, features, training: bool):
        reconstruction = super()._auxiliary_objective(view1, view2, features, training)
        rotation = rotation_term(self.encoder, self.rotation_classifier, view1, training)
        self._trackers[self.ROTATION_TERM].update_state(rotation)
        return reconstruction + self.rotation_weight * rotation

    def get_config(self) -> dict:
        return {**super().get_config(), "rotation_weight": self.rotation_weight}


@keras.saving.register_keras_serializable(package="cl_properties")
class BitMatchedContrastiveModel(ContrastiveModel):
    """NT-Xent with bit-matched negatives: an oracle control that knows the nuisance's
    channels (conditional contrastive learning, Tsai et al. 2021; paper-notes section 5).

    X' = `bit_matched_images(view 1)` holds, at row k, view 1's pixels of image k with the
    appended channels of image k + 1 (mod B); encoded and projected in an extra forward pass
    (B images; BatchNorm sees them as a batch of their own), its B projections are extra
    negatives of every one of the 2B anchors (`nt_xent_extra_negatives_terms`), except that
    anchor i (either view of image i) does not see row i, its own pixels. Row i - 1 carries
    anchor i's bits on another image's pixels: the bits no longer tell the positive from it,
    only the image does; the other rows are further negatives (other images, other bits).
    Temperature, normalization, candidates and scale are the loss's.

    Without appended channels (image_channels == C, e.g. 0 RandBit bits) X' is view 1 itself:
    row i is still masked, and every other row (view 1 of another image, already a negative)
    is simply a regular negative counted twice.

    Args: those of `ContrastiveModel` with an NT-Xent `loss` (method "nt_xent"), and
    `image_channels`: the input's first channels that are the image's, the rest appended by
    a view transform (None: all).
    """

    USES_CHANNEL_LAYOUT = True
    LOSS_METHODS = ("nt_xent",)

    def __init__(
        self, encoder, head, loss: ContrastiveLoss, *, image_channels: int | None = None, **kwargs
    ):
        super().__init__(encoder, head, loss, **kwargs)
        channels = encoder.input_shape[-1]
        self.image_channels = channels if image_channels is None else int(image_channels)
        if not 1 <= self.image_channels <= channels:
            raise ValueError(f"image_channels must be in [1, {channels}], got {image_channels}")

    def _loss_terms(self, view1, view2, z1, z2, training: bool) -> LossTerms:
        del view2  # view 1's pixels suffice: one extra pass of B images
        extra = self.project(bit_matched_images(view1, self.image_channels), training=training)
        # The mask is over the global batch: the loss gathers every replica's rows in order.
        index = ops.arange(ops.shape(z1)[0] * num_replicas_in_sync())
        own_pixels = ops.expand_dims(index, 1) == ops.expand_dims(index, 0)
        loss = self.contrastive_loss
        terms = nt_xent_extra_negatives_terms(
            z1,
            z2,
            tf.cast(extra, tf.float32),
            own_pixels,
            temperature=loss.temperature,
            normalize=loss.normalize,
            candidates=loss.candidates,
        )
        return terms.scaled(loss.scale)

    def get_config(self) -> dict:
        return {**super().get_config(), "image_channels": self.image_channels}


@dataclasses.dataclass(frozen=True)
class RegisteredAuxiliary:
    """A model class with an auxiliary objective and its preset (calibrated) arguments."""

    model_class: type[ContrastiveModel]
    preset: Mapping[str, Any]
    summary: str


# Calibration (paper-notes section 5: ConvN, 28 px digits, 20 shared bits, 300 steps): the
# class probe is 0.929 (reconstruction, groups) and 0.874 (rotation) at weight 10.
AUXILIARIES: Mapping[str, RegisteredAuxiliary] = types.MappingProxyType(
    {
        "reconstruction": RegisteredAuxiliary(
            ReconstructionContrastiveModel,
            types.MappingProxyType({"weight": 10.0, "weighting": "groups"}),
            "reconstruct each augmented view from its representation",
        ),
        "rotation": RegisteredAuxiliary(
            RotationContrastiveModel,
            types.MappingProxyType({"weight": 10.0}),
            "predict the rotation of a rotated view from its representation",
        ),
        # Not calibrated: the remedies' presets, the reconstruction weighing channels alike.
        "reconstruction_rotation": RegisteredAuxiliary(
            ReconstructionRotationContrastiveModel,
            types.MappingProxyType(
                {"weight": 10.0, "weighting": "uniform", "rotation_weight": 10.0}
            ),
            "reconstruct each augmented view and predict the rotation of a rotated view",
        ),
        # An oracle: no preset to calibrate.
        "bit_matched": RegisteredAuxiliary(
            BitMatchedContrastiveModel,
            types.MappingProxyType({}),
            "extra negatives with the anchor's own bits on other images' pixels (an oracle)",
        ),
    }
)


def auxiliary_arguments(name: str, **arguments: Any) -> dict[str, Any]:
    """The arguments of auxiliary objective `name`: its preset, replaced by `arguments`.
    ValueError for an unknown name or an argument it does not take."""
    if name not in AUXILIARIES:
        raise ValueError(f"unknown auxiliary objective {name!r}; known: {', '.join(AUXILIARIES)}")
    preset = AUXILIARIES[name].preset
    unknown = sorted(set(arguments) - set(preset))
    if unknown:
        raise ValueError(f"auxiliary objective {name!r} takes no {', '.join(unknown)}")
    return {**preset, **arguments}


def build_auxiliary_model(
    name: str,
    encoder: keras.Model,
    head: keras.layers.Layer,
    loss: ContrastiveLoss,
    *,
    image_channels: int | None = None,
    arguments: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ContrastiveModel:
    """The contrastive model with auxiliary objective `name` and its arguments (preset,
    replaced by `arguments`); `image_channels` reaches the objectives that use the channel
    layout; `kwargs` are `ContrastiveModel`'s (probes, bn_views, probe_views)."""
    resolved = auxiliary_arguments(name, **(arguments or {}))
    model_class = AUXILIARIES[name].model_class
    if model_class.USES_CHANNEL_LAYOUT:
        resolved["image_channels"] = image_channels
    return model_class(encoder, head, loss, **resolved, **kwargs)
