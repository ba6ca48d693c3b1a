"""ConvVAE: decoder shapes, the objective's terms against closed forms, training, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.models import build_encoder
from cl_properties.models.vae import ConvVAE, build_conv_vae, conv_decoder

SHAPE = (16, 16, 3)


def _images(n=8, shape=SHAPE, seed=0):
    return np.random.RandomState(seed).rand(n, *shape).astype("float32")


def _vae(channel_weights=None, kl_weight=1.0, seed=0, latent_dim=4):
    keras.utils.set_random_seed(0)  # identical weights for every model built by this helper
    return build_conv_vae(
        SHAPE,
        latent_dim=latent_dim,
        kl_weight=kl_weight,
        channel_weights=channel_weights,
        seed=seed,
    )


def _fix_posterior(vae, mean, log_var):
    """Makes mu and log sigma^2 the given constants for every input."""
    for layer, value in ((vae.mean_layer, mean), (vae.log_var_layer, log_var)):
        layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
        layer.bias.assign(np.asarray(value, "float32"))


@pytest.mark.parametrize("shape", [(28, 28, 21), (32, 32, 3), (15, 17, 1)])
def test_decoder_outputs_the_image_shape(shape):
    decoder = conv_decoder(8, shape)
    assert decoder.output_shape == (None, *shape)
    assert decoder(np.zeros((2, 8), "float32")).shape == (2, *shape)


def test_kl_matches_the_closed_form():
    vae = _vae()
    mean, log_var = np.array([0.5, -1.0, 0.0, 2.0]), np.array([0.0, -0.5, 0.3, 1.0])
    _fix_posterior(vae, mean, log_var)
    _, kl = vae.loss_terms(_images())
    expected = 0.5 * np.sum(mean**2 + np.exp(log_var) - 1.0 - log_var)
    np.testing.assert_allclose(float(kl), expected, rtol=1e-5)


def test_reconstruction_is_the_weighted_summed_bce_at_the_mean():
    weights = [1.0, 0.5, 0.0]
    vae = _vae(channel_weights=weights)
    mean = np.array([0.3, -0.2, 0.1, 0.0])
    _fix_posterior(vae, mean, [-80.0] * 4)  # sigma = e^-40: z is the mean
    x = _images()
    reconstruction, _ = vae.loss_terms(x)
    logits = vae.decoder(np.tile(mean, (len(x), 1)).astype("float32")).numpy().astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-logits))
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    expected = np.mean(np.sum(bce * np.asarray(weights), axis=(1, 2, 3)))
    np.testing.assert_allclose(float(reconstruction), expected, rtol=1e-4)


def test_channel_weights_split_the_reconstruction_exactly():
    # Same weights and noise seed: the summed BCE is the sum of its per-channel-group parts.
    x = _images()
    terms = [_vae(channel_weights=w).loss_terms(x)[0] for w in ([1, 1, 1], [1, 0, 0], [0, 1, 1])]
    np.testing.assert_allclose(float(terms[0]), float(terms[1]) + float(terms[2]), rtol=1e-5)


def test_call_is_the_posterior_mean_and_reconstruct_is_in_unit_range():
    vae = _vae()
    x = _images(4)
    mean, log_var = vae.encode(x)
    np.testing.assert_array_equal(vae(x).numpy(), mean.numpy())
    assert log_var.shape == (4, 4)
    recon = vae.reconstruct(x).numpy()
    assert recon.shape == (4, *SHAPE) and recon.min() >= 0 and recon.max() <= 1


def test_training_lowers_the_loss():
    vae = _vae(kl_weight=0.1)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = _images(32)
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(32, "int32"))).batch(16).repeat()
    history = vae.fit(dataset, epochs=4, steps_per_epoch=10, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] and set(history.history) == {"loss", "reconstruction", "kl"}
    evaluated = vae.evaluate(x, batch_size=16, return_dict=True, verbose=0)
    assert np.isfinite(evaluated["loss"])


def test_config_round_trip_and_saving(tmp_path):
    vae = _vae(channel_weights=[1.0, 2.0, 0.5], kl_weight=0.3, seed=7)
    config = vae.get_config()
    assert (
        config["channel_weights"] == [1.0, 2.0, 0.5]
        and config["kl_weight"] == 0.3
        and config["seed"] == 7
    )
    clone = ConvVAE.from_config(config)
    assert clone.latent_dim == 4 and clone.channel_weights == [1.0, 2.0, 0.5]
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    x = _images(3)
    np.testing.assert_allclose(loaded(x).numpy(), vae(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(loaded.reconstruct(x).numpy(), vae.reconstruct(x).numpy(), rtol=1e-6)


def test_a_built_encoder_is_used_as_given_and_a_name_builds_the_same_first():
    keras.utils.set_random_seed(0)
    encoder = build_encoder("convn", input_shape=SHAPE)
    vae = build_conv_vae(SHAPE, latent_dim=4, encoder=encoder)
    assert vae.encoder is encoder
    by_name = _vae()
    assert [w.path for w in vae.weights] == [w.path for w in by_name.weights]
    for given, named in zip(vae.weights, by_name.weights, strict=True):
        np.testing.assert_array_equal(given.numpy(), named.numpy())
    with pytest.raises(ValueError, match="encoder input"):
        build_conv_vae((8, 8, 3), latent_dim=4, encoder=encoder)


def test_bad_arguments_raise():
    encoder = build_encoder("convn", input_shape=SHAPE)
    with pytest.raises(ValueError, match="latent_dim"):
        ConvVAE(encoder, conv_decoder(4, SHAPE), 0)
    with pytest.raises(ValueError, match="decoder input"):
        ConvVAE(encoder, conv_decoder(4, SHAPE), 5)
    with pytest.raises(ValueError, match="decoder output"):
        ConvVAE(encoder, conv_decoder(4, (16, 16, 1)), 4)
    with pytest.raises(ValueError, match="kl_weight"):
        ConvVAE(encoder, conv_decoder(4, SHAPE), 4, kl_weight=-1.0)
    with pytest.raises(ValueError, match="channel_weights"):
        ConvVAE(encoder, conv_decoder(4, SHAPE), 4, channel_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="channel_weights"):
        ConvVAE(encoder, conv_decoder(4, SHAPE), 4, channel_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="latent_dim"):
        conv_decoder(0, SHAPE)
    with pytest.raises(ValueError, match="output_shape"):
        conv_decoder(4, (16, 16))
