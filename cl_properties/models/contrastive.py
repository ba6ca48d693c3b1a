"""The two-view contrastive `keras.Model`: encoder + projection head + any loss of the family.

One model serves every experiment: SimCLR pretraining (paper Figure 1), RandBit and the
other feature-suppression studies (several online probes, one per label key) and the
local-feature study (the encoder's block groups are tapped separately).
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from cl_properties.distribute import num_replicas_in_sync
from cl_properties.losses import ContrastiveLoss, LossTerms, contrastive_accuracy

# How the two views meet BatchNorm: "joint", one concatenated batch of 2B (SimCLR), or
# "separate", one encoder call per view (the official RandBit colab's, statistics per view).
BN_VIEWS = ("joint", "separate")
# Which views train the online probes: "both" (2B examples) or "first" (the colab's).
PROBE_VIEWS = ("both", "first")


@keras.saving.register_keras_serializable(package="cl_properties")
class ContrastiveModel(keras.Model):
    """Encoder + projection head trained with a contrastive loss, plus online linear probes.

    Training data are batches `((view1, view2), labels)` with `labels` a dict
    `name -> int [B]`; evaluation data are `(image, labels)` (probe accuracies only) or
    two-view batches (also the contrastive loss). With `bn_views="joint"` both views go
    through the encoder in one concatenated batch, as in SimCLR, so BatchNorm sees 2B
    images; "separate" encodes each view alone (BatchNorm statistics per view, as the
    official RandBit colab). The probes train on both views or, with `probe_views="first"`,
    on the first (the colab's).

    Each probe is a linear classifier on the stop-gradient encoder representation (SimCLR's
    online linear evaluation): it measures what the representation encodes without shaping it.
    As SimCLR's `head_supervised`, the probes are exempt from LARS's trust ratio (see
    `layer_adaptation_exempt_variables`); their kernels keep weight decay, their biases not.

    Distribution: the loss family returns the global-batch value on every replica and the
    optimizer sums replica gradients, so the per-replica objective is divided by the replica
    count (probe losses are per-replica means, for which the same division gives the global
    mean). With synchronized BatchNorm this reproduces single-device training.

    Args:
      encoder: maps images to a representation `[B, D]`.
      head: projection head mapping `[B, D]` to `[B, d]` (identity for depth 0).
      loss: the contrastive objective.
      probes: label key -> number of classes; one online linear probe per key.
      bn_views: "joint" or "separate" (above).
      probe_views: "both" or "first" (above).
    """

    # Whether the objective knows which input channels are the image's (`image_channels`, an
    # argument of the subclasses that set it): it then uses knowledge of the nuisance.
    USES_CHANNEL_LAYOUT = False
    # The loss methods (`ContrastiveLoss.method`) the objective is defined for (None: any).
    LOSS_METHODS: tuple[str, ...] | None = None

    def __init__(
        self,
        encoder: keras.Model,
        head: keras.layers.Layer,
        loss: ContrastiveLoss,
        probes: Mapping[str, int] | None = None,
        bn_views: str = "joint",
        probe_views: str = "both",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.check_loss(loss)
        if bn_views not in BN_VIEWS:
            raise ValueError(f"bn_views must be one of {BN_VIEWS}, got {bn_views!r}")
        if probe_views not in PROBE_VIEWS:
            raise ValueError(f"probe_views must be one of {PROBE_VIEWS}, got {probe_views!r}")
        self.bn_views, self.probe_views = bn_views, probe_views
        probes = dict(probes or {})
        for key, num_classes in probes.items():
            if int(num_classes) < 2:
                raise ValueError(f"probe {key!r} needs at least 2 classes, got {num_classes}")
        self.encoder = encoder
        self.head = head
        self.contrastive_loss = loss
        self.probe_classes = probes
        representation_dim = encoder.output_shape[-1]
        self.head.build((None, representation_dim))
        # Probes compute in float32 under mixed precision: their logits feed a softmax.
        self.probes = {
            key: keras.layers.Dense(n, name=f"probe_{key}", dtype="float32")
            for key, n in probes.items()
        }
        for probe in self.probes.values():
            probe.build((None, representation_dim))
        # A loss that adds named terms to its objective (`LossTerms.extras`) lists them in
        # `extra_terms`: each is tracked as a metric of its own.
        self._extra_terms = tuple(getattr(loss, "extra_terms", ()))
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                "alignment",
                "distribution",
                *self._extra_terms,
                "contrastive_accuracy",
            )
        }
        self._trackers.update(
            {f"probe_{key}_loss": keras.metrics.Mean(name=f"probe_{key}_loss") for key in probes}
        )
        self._probe_accuracy = {
            key: keras.metrics.SparseCategoricalAccuracy(name=f"probe_{key}_accuracy")
            for key in probes
        }
        # Every sublayer is built here (a subclass builds its own in its __init__): marked
        # built, the model gets its optimizer's slots rebuilt and restored when a `.keras` file
        # is loaded, which Keras otherwise skips with a warning (training resumed with Adam reset).
        self.built = True

    @classmethod
    def check_loss(cls, loss: ContrastiveLoss) -> None:
        """ValueError unless the objective is defined for `loss`'s method (`LOSS_METHODS`)."""
        if cls.LOSS_METHODS is not None and loss.method not in cls.LOSS_METHODS:
            raise ValueError(
                f"{cls.__name__} needs a loss of method {' or '.join(cls.LOSS_METHODS)}, got "
                f"{loss.method!r}"
            )

    def layer_adaptation_exempt_variables(self) -> list[keras.Variable]:
        """The probes' kernels and biases, which LARS must not adapt (read by
        `cl_properties.optimization.adaptation_exempt_variables`): with eta 0.001 the trust
        ratio would shrink their steps far below SimCLR's, understating the online accuracies."""
        return [v for probe in self.probes.values() for v in probe.trainable_variables]

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [*self._trackers.values(), *self._probe_accuracy.values()]

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The representation (encoder output), as used by linear evaluation."""
        return self.encoder(images, training=training)

    def project(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The projection-head output, the space in which the loss is computed."""
        return self.head(self.encoder(images, training=training), training=training)

    def _probe_losses(self, features, labels: Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
        features = tf.stop_gradient(tf.cast(features, tf.float32))
        losses = []
        for key, probe in self.probes.items():
            if key not in labels:
                raise ValueError(
                    f"batch has no label {key!r} for its probe; it has {sorted(labels)}"
                )
            target = labels[key]
            logits = probe(features)
            losses.append(
                tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
                )
            )
            self._trackers[f"probe_{key}_loss"].update_state(losses[-1])
            self._probe_accuracy[key].update_state(target, logits)
        return losses

    def _encode_views(self, view1, view2, training: bool):
        """(features, projections) of both views stacked [2B, ...], view 1 first."""
        if self.bn_views == "joint":
            features = self.encoder(tf.concat([view1, view2], axis=0), training=training)
            return features, self.head(features, training=training)
        features = [self.encoder(view, training=training) for view in (view1, view2)]
        projections = [self.head(f, training=training) for f in features]
        return tf.concat(features, axis=0), tf.concat(projections, axis=0)

    def _contrastive_terms(self, view1, view2, labels, training: bool):
        batch = tf.shape(view1)[0]
        features, z = self._encode_views(view1, view2, training)
        z = tf.cast(z, tf.float32)
        z1, z2 = z[:batch], z[batch:]
        terms = self._loss_terms(view1, view2, z1, z2, training)
        if self.probe_views == "first":
            probe_losses = self._probe_losses(features[:batch], labels)
        else:
            both_views_labels = {
                key: tf.concat([value, value], axis=0) for key, value in labels.items()
            }
            probe_losses = self._probe_losses(features, both_views_labels)
        for name in ("loss", "alignment", "distribution"):
            self._trackers[name].update_state(getattr(terms, name))
        for name in self._extra_terms:
            self._trackers[name].update_state(terms.extras[name])
        self._trackers["contrastive_accuracy"].update_state(contrastive_accuracy(z1, z2))
        objective = terms.loss + self._auxiliary_objective(view1, view2, features, training)
        return objective + tf.add_n(probe_losses) if probe_losses else objective

    def _loss_terms(self, view1, view2, z1, z2, training: bool) -> LossTerms:
        """The contrastive loss's terms for the views' projections z1, z2 (float32): the
        loss's own here; a subclass may add candidates made from the views
        (`cl_properties.models.BitMatchedContrastiveModel`)."""
        del view1, view2
        return self.contrastive_loss(z1, z2, step=self.optimizer.iterations if training else None)

    def _auxiliary_objective(self, view1, view2, features, training: bool):
        """A term a subclass adds to the contrastive loss, given the views and their
        representations `features` [2B, D] (view 1 first): none here (see
        `cl_properties.models.auxiliary`)."""
        del view1, view2, features, training
        return 0.0

    def train_step(self, data):
        (view1, view2), labels = data
        with tf.GradientTape() as tape:
            objective = self._contrastive_terms(view1, view2, labels, training=True)
            # Regularization losses (e.g. kernel_regularizer) are per-replica copies too.
            if self.losses:
                objective += tf.add_n(self.losses)
            # scale_loss: the loss scale of a LossScaleOptimizer (mixed_float16), else identity.
            scaled = self.optimizer.scale_loss(objective / num_replicas_in_sync())
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, labels = data
        if isinstance(inputs, (tuple, list)):
            self._contrastive_terms(inputs[0], inputs[1], labels, training=False)
            return {m.name: m.result() for m in self.metrics}
        # Single images: only the probes are measured; the contrastive terms need two views.
        self._probe_losses(self.encoder(inputs, training=False), labels)
        probe_metrics = [self._trackers[f"probe_{key}_loss"] for key in self.probes]
        probe_metrics += list(self._probe_accuracy.values())
        return {m.name: m.result() for m in probe_metrics}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "head": keras.saving.serialize_keras_object(self.head),
            "loss": keras.saving.serialize_keras_object(self.contrastive_loss),
            "probes": dict(self.probe_classes),
            "bn_views": self.bn_views,
            "probe_views": self.probe_views,
        }

    @classmethod
    def from_config(cls, config: dict) -> ContrastiveModel:
        config = dict(config)
        for key in ("encoder", "head", "loss"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
