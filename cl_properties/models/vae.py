"""A convolutional VAE: the reconstruction baseline of the feature-suppression study.

The paper (section 4) contrasts contrastive learning with a generative model trained on the
same RandBit inputs, which "suffers much less" from the extra bits. `ConvVAE` reuses any
encoder (in the experiments the contrastive model's own, from `build_config_encoder`), adds
linear heads for the posterior mean and log-variance, and decodes with `conv_decoder`, ConvN
mirrored. Its representation for linear probes is the posterior mean.

Objective (per image, averaged over the batch; Kingma & Welling 2014, beta-VAE weighting):

    L = sum_{h,w,c} w_c BCE(x_hwc, sigmoid(logit_hwc)) + beta * KL(N(mu, diag sigma^2) || N(0, I))
    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)

with z = mu + sigma * eps (eps ~ N(0, I)) fed to the decoder. The channel weights w_c default to
1 (the plain summed BCE). They exist because RandBit's b constant bit planes then count H*W
terms each, b times the weight of a grey image: see the experiments' `--vae_bit_weighting`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from cl_properties.distribute import num_replicas_in_sync
from cl_properties.models.blocks import (
    SIMCLR_BN_EPSILON,
    SIMCLR_BN_MOMENTUM,
    check_width_multiplier,
    scaled_width,
)
from cl_properties.models.registry import build_encoder

DECODER_FILTERS = (64, 64, 32)  # ConvN's (32, 64, 64), reversed
DECODER_UNITS = 128


def conv_decoder(
    latent_dim: int,
    output_shape: Sequence[int],
    *,
    width_multiplier: float = 1.0,
    name: str = "decoder",
) -> keras.Model:
    """ConvN mirrored: z (latent_dim,) -> logits (H, W, C).

        Dense(128w) -> BN -> ReLU -> Dense(h*w*64w) -> BN -> ReLU -> reshape (h, w, 64w)
        -> ConvT(64w, 3x3, stride 2) -> BN -> ReLU -> ConvT(32w, 3x3, stride 2) -> BN -> ReLU
        -> ConvT(C, 3x3, stride 2) -> central crop to (H, W)

    with h = ceil(H / 8), w = ceil(W / 8) (three doublings reach at least H x W). Raises
    ValueError for latent_dim < 1, a bad output shape or width multiplier.
    """
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    check_width_multiplier(width_multiplier)
    shape = tuple(output_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(
            f"output_shape must be (height, width, channels) > 0, got {output_shape!r}"
        )
    height, width, channels = shape
    scale = 2 ** len(DECODER_FILTERS)
    h0, w0 = math.ceil(height / scale), math.ceil(width / scale)

    def bn(n: str):
        return keras.layers.BatchNormalization(
            momentum=SIMCLR_BN_MOMENTUM, epsilon=SIMCLR_BN_EPSILON, name=n
        )

    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.layers.Dense(
        scaled_width(DECODER_UNITS, width_multiplier), use_bias=False, name="dense1"
    )(z)
    x = keras.layers.ReLU()(bn("dense1_bn")(x))
    first = scaled_width(DECODER_FILTERS[0], width_multiplier)
    x = keras.layers.Dense(h0 * w0 * first, use_bias=False, name="dense2")(x)
    x = keras.layers.ReLU()(bn("dense2_bn")(x))
    x = keras.layers.Reshape((h0, w0, first))(x)
    for s, base in enumerate(DECODER_FILTERS[1:], start=1):
        x = keras.layers.Conv2DTranspose(
            scaled_width(base, width_multiplier),
            3,
            strides=2,
            padding="same",
            use_bias=False,
            name=f"up{s}",
        )(x)
        x = keras.layers.ReLU()(bn(f"up{s}_bn")(x))
    x = keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same", name="logits")(x)
    top, left = (h0 * scale - height) // 2, (w0 * scale - width) // 2
    cropping = ((top, h0 * scale - height - top), (left, w0 * scale - width - left))
    logits = keras.layers.Cropping2D(cropping, name="crop")(x)
    return keras.Model(z, logits, name=name)


@keras.saving.register_keras_serializable(package="cl_properties")
class ConvVAE(keras.Model):
    """Encoder -> (mu, log sigma^2) -> z -> decoder logits, trained on the objective above.

    Training/evaluation batches are images [B, H, W, C] in [0, 1], or `(images, labels)` whose
    labels are ignored. `call(images)` returns the posterior mean mu [B, latent_dim] (the
    representation probed linearly); `encode` returns (mu, log_var); `reconstruct` returns the
    decoded mean sigmoid(decoder(mu)). Metrics: loss, reconstruction, kl.

    Args:
      encoder: image (H, W, C) -> features [B, D] (e.g. `build_encoder("convn", ...)`).
      decoder: z [B, latent_dim] -> logits [B, H, W, C] (e.g. `conv_decoder`).
      latent_dim: size of z.
      kl_weight: beta >= 0 of the KL term (1: the ELBO).
      channel_weights: w_c >= 0, one per image channel (None: all 1).
      seed: seed of the reparameterization noise (a `keras.random.SeedGenerator`).

    Distribution: each replica's loss is its local batch mean, divided by the replica count
    before the gradient, since the optimizer sums replica gradients. Raises ValueError for
    mismatched shapes, a negative kl_weight or negative/ill-sized channel weights.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        latent_dim: int,
        *,
        kl_weight: float = 1.0,
        channel_weights: Sequence[float] | None = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if not kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        image_shape = tuple(encoder.input_shape[1:])
        if tuple(decoder.input_shape[1:]) != (latent_dim,):
            raise ValueError(
                f"decoder input {decoder.input_shape[1:]} is not (latent_dim,) = ({latent_dim},)"
            )
        if tuple(decoder.output_shape[1:]) != image_shape:
            raise ValueError(
                f"decoder output {decoder.output_shape[1:]} differs from the encoder input "
                f"{image_shape}"
            )
        channels = image_shape[-1]
        weights = (
            [1.0] * channels if channel_weights is None else [float(w) for w in channel_weights]
        )
        if len(weights) != channels or min(weights) < 0:
            raise ValueError(
                f"channel_weights must be {channels} values >= 0, got {channel_weights!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.kl_weight = float(kl_weight)
        self.channel_weights = weights
        self.seed = seed
        features = encoder.output_shape[-1]
        self.mean_layer = keras.layers.Dense(latent_dim, name="z_mean")
        self.log_var_layer = keras.layers.Dense(
            latent_dim,
            kernel_initializer="zeros",
            name="z_log_var",  # start at sigma = 1
        )
        self.mean_layer.build((None, features))
        self.log_var_layer.build((None, features))
        self._noise = keras.random.SeedGenerator(seed)
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "kl")
        }
        self.built = True  # every variable exists now: saving needs no call on data first

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self._trackers.values())

    def encode(self, images, training: bool = False):
        features = self.encoder(images, training=training)
        return self.mean_layer(features), self.log_var_layer(features)

    def call(self, images, training: bool = False):
        """The posterior mean mu (the representation)."""
        return self.encode(images, training=training)[0]

    def reconstruct(self, images, training: bool = False):
        """sigmoid(decoder(mu)): the reconstruction at the posterior mean, in [0, 1]."""
        return keras.ops.sigmoid(
            self.decoder(self.encode(images, training=training)[0], training=training)
        )

    def loss_terms(self, images, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """(reconstruction, kl): batch means of the weighted summed BCE and of the KL."""
        images = tf.cast(images, tf.float32)
        mean, log_var = self.encode(images, training=training)
        noise = keras.random.normal(keras.ops.shape(mean), seed=self._noise)
        z = mean + keras.ops.exp(0.5 * log_var) * noise
        logits = tf.cast(self.decoder(z, training=training), tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
        weights = tf.constant(self.channel_weights, tf.float32)
        reconstruction = tf.reduce_mean(tf.reduce_sum(bce * weights, axis=[1, 2, 3]))
        kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=1)
        return reconstruction, tf.reduce_mean(kl)

    def _update(self, reconstruction, kl):
        loss = reconstruction + self.kl_weight * kl
        for name, value in (("loss", loss), ("reconstruction", reconstruction), ("kl", kl)):
            self._trackers[name].update_state(value)
        return loss

    @staticmethod
    def _images(data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._update(*self.loss_terms(self._images(data), training=True))
            scaled = loss / num_replicas_in_sync()
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self._update(*self.loss_terms(self._images(data), training=False))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_dim": self.latent_dim,
            "kl_weight": self.kl_weight,
            "channel_weights": list(self.channel_weights),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> ConvVAE:
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_conv_vae(
    input_shape: Sequence[int],
    *,
    latent_dim: int = 64,
    encoder: str | keras.Model = "convn",
    width_multiplier: float = 1.0,
    kl_weight: float = 1.0,
    channel_weights: Sequence[float] | None = None,
    seed: int = 0,
) -> ConvVAE:
    """A `ConvVAE` of `encoder` and `conv_decoder(latent_dim, input_shape)` of width
    `width_multiplier`.

    `encoder` is a built encoder for images of `input_shape` (a run's
    `cl_properties.training.pretrain.build_config_encoder`, with all its options), or a name
    of `ENCODER_NAMES`, built here (first) as `build_encoder(encoder, input_shape=input_shape,
    width_multiplier=width_multiplier)`. Raises ValueError for a built encoder whose input
    shape is not `input_shape`.
    """
    shape = tuple(input_shape)
    if isinstance(encoder, str):
        encoder = build_encoder(encoder, input_shape=shape, width_multiplier=width_multiplier)
    elif tuple(encoder.input_shape[1:]) != shape:
        raise ValueError(f"encoder input {encoder.input_shape[1:]} is not input_shape {shape}")
    decoder = conv_decoder(latent_dim, shape, width_multiplier=width_multiplier)
    return ConvVAE(
        encoder,
        decoder,
        latent_dim,
        kl_weight=kl_weight,
        channel_weights=channel_weights,
        seed=seed,
    )
