"""The reference models the contrastive model is measured against (paper section 4).

- VAE (`train_vae`): `cl_properties.models.ConvVAE` with the contrastive model's encoder
  architecture, trained on the same augmented single views, probed on its posterior mean (the
  paper's reconstruction model, which suffers less from feature suppression).
- Supervised (`train_supervised`): the encoder + a linear classifier trained with
  cross-entropy on the first probe label: what the architecture can extract at all (the
  upper reference of a curve).
- Random initialization (`probe_random_init`): the same encoder untrained: what the probe
  reads from the architecture alone (the floor of a curve; on easy images it is high).

The trained ones train with the contrastive run's seed, optimizer, batch size and
augmentation; all are probed like it (`probe_frozen_features`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cl_properties.models import build_conv_vae
from cl_properties.optimization import build_optimizer
from cl_properties.training.config import PretrainConfig
from cl_properties.training.evaluate import (
    DataSpec,
    EvalConfig,
    probe_frozen_features,
    training_views,
)
from cl_properties.training.pretrain import build_config_encoder

BIT_WEIGHTINGS = ("group", "bit", "pixel")


@dataclasses.dataclass(frozen=True)
class VaeConfig:
    """The VAE baseline (`cl_properties.models.vae`).

    `bit_weighting` sets the reconstruction weight w of each pixel of the b channels a view
    transform appends (RandBit's constant bit planes); the image's C channels weigh 1:
    - "group": w = C / b, the bit planes together weigh as much as the image (the default);
    - "bit": w = 1 / (H W), each bit counts once, as the single binary value it is;
    - "pixel": w = 1, the plain summed BCE over all channels, where the b planes of H x W
      copies of one bit outweigh a grey image b times and dominate the loss.
    `train_steps` None trains twice the contrastive run's steps: one view per step, so as
    many images as the contrastive model's two views.
    """

    latent_dim: int = 64
    kl_weight: float = 1.0
    bit_weighting: str = "group"
    train_steps: int | None = None

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ValueError(f"vae latent_dim must be >= 1, got {self.latent_dim}")
        if self.kl_weight < 0:
            raise ValueError(f"vae kl_weight must be >= 0, got {self.kl_weight}")
        if self.bit_weighting not in BIT_WEIGHTINGS:
            raise ValueError(
                f"vae bit_weighting must be one of {BIT_WEIGHTINGS}, got {self.bit_weighting!r}"
            )
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"vae train_steps must be >= 1, got {self.train_steps}")

    def steps(self, contrastive_steps: int) -> int:
        """Training steps beside a contrastive run of `contrastive_steps`."""
        return self.train_steps or 2 * contrastive_steps

    def channel_weights(self, input_shape: Sequence[int], image_channels: int) -> list[float]:
        """Per-channel reconstruction weights for `input_shape` (H, W, C): the first
        `image_channels` are the image's, the rest appended planes."""
        height, width, channels = input_shape
        image, added = image_channels, channels - image_channels
        w = {"group": image / max(added, 1), "bit": 1.0 / (height * width), "pixel": 1.0}[
            self.bit_weighting
        ]
        return [1.0] * image + [w] * added


def single_view_dataset(
    config: PretrainConfig, data: DataSpec, label: str | None = None
) -> tf.data.Dataset:
    """View 1 of the contrastive pipeline (same augmentation, view transform and order, so a
    baseline sees exactly the images the contrastive model does): batches of images, or of
    (images, labels[label])."""
    views = training_views(config, data, first_view_only=True)
    if label is None:
        return views.map(lambda images, labels: images)
    return views.map(lambda images, labels: (images, labels[label]))


def _fit(
    model: keras.Model,
    dataset: tf.data.Dataset,
    steps: int,
    callbacks: Sequence[keras.callbacks.Callback],
) -> dict[str, float]:
    loop = math.gcd(steps, 100)  # Keras "epochs" of `loop` steps; any step count works
    history = model.fit(
        dataset.take(steps),  # an endless stream is slow to tear down (see `pretrain`)
        epochs=steps // loop,
        steps_per_epoch=loop,
        callbacks=list(callbacks),
        verbose=0,
        shuffle=False,
    )
    return {f"train_{k}": float(v[-1]) for k, v in history.history.items()}


def train_vae(
    config: PretrainConfig,
    data: DataSpec,
    *,
    vae: VaeConfig = VaeConfig(),
    evaluation: EvalConfig = EvalConfig(),
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, float]:
    """Trains the VAE baseline on `data` (`vae.steps(config.train_steps)` steps) and
    probes its posterior mean; returns the final training terms (`train_<name>`) and the
    probes (`linear_<key>`, `knn_<key>`)."""
    steps = vae.steps(config.train_steps)
    keras.utils.set_random_seed(config.seed)
    model = build_conv_vae(
        data.input_shape,
        latent_dim=vae.latent_dim,
        encoder=build_config_encoder(config, data.input_shape),  # built first: same seeded weights
        width_multiplier=config.encoder.width_multiplier,
        kl_weight=vae.kl_weight,
        channel_weights=vae.channel_weights(data.input_shape, data.image_channels),
        seed=config.seed,
    )
    model.compile(
        optimizer=build_optimizer(
            config.optimizer, batch_size=config.batch_size, total_steps=steps, model=model
        )
    )
    metrics = _fit(model, single_view_dataset(config, data), steps, callbacks)
    metrics.update(probe_frozen_features(model, data, evaluation, seed=config.seed))
    return metrics


def train_supervised(
    config: PretrainConfig,
    data: DataSpec,
    *,
    evaluation: EvalConfig = EvalConfig(),
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, float]:
    """Trains encoder + linear classifier on the first probe label with cross-entropy (the
    contrastive run's augmentation, optimizer and steps), then probes the encoder; returns
    the final training metrics (`train_<name>`) and the probes."""
    key, classes = next(iter(data.probes.items()))
    keras.utils.set_random_seed(config.seed)
    encoder = build_config_encoder(config, data.input_shape)
    model = keras.Sequential([encoder, keras.layers.Dense(classes, name=f"classifier_{key}")])
    model.build((None, *data.input_shape))
    model.compile(
        optimizer=build_optimizer(
            config.optimizer,
            batch_size=config.batch_size,
            total_steps=config.train_steps,
            model=model,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    metrics = _fit(model, single_view_dataset(config, data, key), config.train_steps, callbacks)
    metrics.update(probe_frozen_features(encoder, data, evaluation, seed=config.seed))
    return metrics


# Seeds of an averaged floor's initializations: config.seed, config.seed + stride, ...
FLOOR_INIT_STRIDE = 1_000_003


def probe_random_init(
    config: PretrainConfig,
    data: DataSpec,
    *,
    evaluation: EvalConfig = EvalConfig(),
    inits: int = 1,
) -> dict[str, float]:
    """Probes the run's encoder at its random initialization (seed `config.seed`, no
    training): the floor a trained model's probe is measured against.

    One init (the default) is the trained models' own starting point, a paired control. With
    `inits` > 1, every metric is the mean over that many initializations (seeds config.seed +
    k * FLOOR_INIT_STRIDE, k < inits; the first is the single floor's), each probed with the
    linear probe's seed `config.seed`: a typical untrained encoder, since one init's probe
    varies (16 px colour shapes, data fixed: 0.512-0.615 over six inits).
    Raises ValueError for inits < 1.
    """
    if isinstance(inits, bool) or not isinstance(inits, int) or inits < 1:
        raise ValueError(f"inits must be an int >= 1, got {inits!r}")
    probes = []
    for k in range(inits):
        keras.utils.set_random_seed(config.seed + k * FLOOR_INIT_STRIDE)
        encoder = build_config_encoder(config, data.input_shape)
        probes.append(probe_frozen_features(encoder, data, evaluation, seed=config.seed))
    return {key: float(np.mean([p[key] for p in probes])) for key in probes[0]}
