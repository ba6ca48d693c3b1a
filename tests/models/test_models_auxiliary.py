"""The contrastive model with an auxiliary objective: the reconstruction term targets each
augmented view, its channel weighting, the rotation term, gradients into the encoder from
both terms, training, serialization, bad inputs (two replicas: test_training_mirrored.py);
the bit-matched oracle's extra negatives, their gradients, training on RandBit views and
serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data.randbit import RandBit
from cl_properties.losses import (
    ContrastiveLoss,
    bit_matched_images,
    normalized_reconstruction_loss,
    nt_xent_extra_negatives_terms,
    nt_xent_terms,
    rotate_quarters,
    rotation_cross_entropy,
)
from cl_properties.models import (
    BitMatchedContrastiveModel,
    ContrastiveModel,
    ProjectionHead,
    ReconstructionContrastiveModel,
    ReconstructionRotationContrastiveModel,
    RotationContrastiveModel,
    build_auxiliary_model,
    build_encoder,
)
from cl_properties.models.auxiliary import target_pooling, view_decoder
from cl_properties.training import AuxiliaryConfig, LossConfig, PretrainConfig

SHAPE = (16, 16, 3)  # a grey image and two appended bit planes


def _model(name, shape=SHAPE, loss="nt_xent", image_channels=1, **arguments):
    keras.utils.set_random_seed(0)
    model = build_auxiliary_model(
        name,
        build_encoder("convn", input_shape=shape),
        ProjectionHead(2, 32, 16),
        ContrastiveLoss(method=loss, temperature=0.5),
        image_channels=image_channels,
        arguments=arguments,
        probes={"label": 2},
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _views(n=8, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    v1, v2 = (rng.random((n, *shape), dtype=np.float32) for _ in range(2))
    return (v1, v2), {"label": rng.integers(0, 2, n).astype(np.int32)}


def _features(model, v1, v2):
    return model.encoder(tf.concat([v1, v2], axis=0), training=False)


def test_reconstruction_targets_each_view_from_its_own_representation():
    model = _model("reconstruction")
    (v1, v2), _ = batch = _views()
    # Trained a little, the decoder's output depends on h: pairing h with a view matters.
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1, steps_per_epoch=30, verbose=0)
    features = _features(model, v1, v2)
    term = model.auxiliary_loss(v1, v2, features)
    prediction = model.decoder(features)
    weights = [0.5, 0.25, 0.25]  # groups: the image, then the two planes together
    assert model.channel_weights == weights
    expected = normalized_reconstruction_loss(prediction, tf.concat([v1, v2], 0), weights)
    np.testing.assert_allclose(term, expected, rtol=1e-6)
    # The views swapped, each h must reconstruct the other view: another loss.
    swapped = normalized_reconstruction_loss(prediction, tf.concat([v2, v1], 0), weights)
    assert float(swapped) > float(term) + 0.1
    np.testing.assert_allclose(model.auxiliary_loss(v2, v1, features), swapped, rtol=1e-6)


def test_uniform_weighting_ignores_the_channel_layout():
    uniform = _model("reconstruction", weighting="uniform")
    assert uniform.channel_weights == [1 / 3] * 3 and uniform.image_channels == 1
    (v1, v2), _ = _views()
    groups = _model("reconstruction")
    features = _features(groups, v1, v2)
    assert not np.isclose(
        groups.auxiliary_loss(v1, v2, features), uniform.auxiliary_loss(v1, v2, features)
    )


@pytest.mark.parametrize("size, target", [(14, 14), (16, 16), (28, 14), (32, 16), (96, 16)])
def test_the_target_is_the_view_pooled_to_at_most_16_pixels(size, target):
    pooling = target_pooling(size, size)
    assert -(-size // pooling) == target
    assert view_decoder(8, (target, target, 2)).output_shape == (None, target, target, 2)
    assert view_decoder(8, (7, 5, 1)).output_shape == (None, 7, 5, 1)  # odd sides: cropped


def test_the_28_pixel_target_averages_2x2_windows():
    model = _model("reconstruction", shape=(28, 28, 1))
    views = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    expected = views.reshape(2, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(model.reconstruction_target(views), expected, rtol=1e-6)
    assert model.decoder.output_shape == (None, 14, 14, 1)


def test_rotation_classifies_the_rotated_first_view():
    model = _model("rotation")
    (v1, v2), _ = _views()
    rotated, labels = rotate_quarters(v1)
    expected = rotation_cross_entropy(model.rotation_classifier(model.encoder(rotated)), labels)
    np.testing.assert_allclose(
        model.auxiliary_loss(v1, v2, _features(model, v1, v2)), expected, rtol=1e-6
    )


def test_both_terms_are_added_with_their_own_weights_and_logged():
    model = _model("reconstruction_rotation", weight=2.0, rotation_weight=3.0)
    assert (model.weighting, model.rotation_weight) == ("uniform", 3.0)
    (v1, v2), _ = _views()
    features = _features(model, v1, v2)
    reconstruction = normalized_reconstruction_loss(
        model.decoder(features), tf.concat([v1, v2], 0), model.channel_weights
    )
    rotated, labels = rotate_quarters(v1)
    rotation = rotation_cross_entropy(model.rotation_classifier(model.encoder(rotated)), labels)
    with tf.GradientTape() as tape:
        objective = model._auxiliary_objective(v1, v2, features, training=False)
    np.testing.assert_allclose(objective, 2.0 * reconstruction + 3.0 * rotation, rtol=1e-6)
    heads = [*model.decoder.trainable_variables, *model.rotation_classifier.trainable_variables]
    assert all(g is not None for g in tape.gradient(objective, heads))
    logged = {m.name: float(m.result()) for m in model.metrics}
    np.testing.assert_allclose(
        [logged["recon_loss"], logged["rotation_loss"]], [reconstruction, rotation], rtol=1e-6
    )


@pytest.mark.parametrize("name", ["reconstruction", "rotation"])
def test_gradients_reach_the_encoder_through_both_terms(name):
    model = _model(name)
    (v1, v2), _ = _views()
    encoder = model.encoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        features = model.encoder(tf.concat([v1, v2], 0), training=True)
        z = model.head(features, training=True)
        contrastive = model.contrastive_loss(z[:8], z[8:]).loss
        auxiliary = model.auxiliary_loss(v1, v2, features, training=True)
    for term in (contrastive, auxiliary):
        gradients = tape.gradient(term, encoder)
        assert all(g is not None for g in gradients)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients) > 0


@pytest.mark.parametrize(
    "name, head",
    [
        ("reconstruction", "decoder"),
        ("rotation", "rotation_classifier"),
        ("reconstruction_rotation", "decoder"),
        ("reconstruction_rotation", "rotation_classifier"),
    ],
)
def test_training_adds_the_weighted_term_and_trains_its_head(name, head):
    model = _model(name, weight=3.0)
    before = [np.array(w) for w in getattr(model, head).weights]
    data = tf.data.Dataset.from_tensors(_views()).repeat()
    history = model.fit(data, epochs=2, steps_per_epoch=1, verbose=0).history
    assert np.all(np.isfinite(history[model.TERM])) and np.all(np.isfinite(history["loss"]))
    after = getattr(model, head).weights
    assert all(not np.array_equal(b, np.array(a)) for b, a in zip(before, after))
    # Two-view evaluation measures the term too; single images only the probes.
    assert model.TERM in model.evaluate(data.take(1), return_dict=True, verbose=0)


@pytest.mark.parametrize("name", ["reconstruction", "rotation", "reconstruction_rotation"])
def test_get_config_and_keras_file_round_trip(name, tmp_path):
    model = _model(name, weight=2.5)
    (v1, v2), _ = batch = _views()
    config = model.get_config()
    assert config["weight"] == 2.5
    clone = type(model).from_config(config)
    assert clone.weight == 2.5 and clone.contrastive_loss.get_config() == config["loss"]["config"]
    assert getattr(clone, "rotation_weight", None) == getattr(model, "rotation_weight", None)
    clone.set_weights(model.get_weights())
    features = _features(model, v1, v2)
    term = model.auxiliary_loss(v1, v2, features)
    np.testing.assert_allclose(clone.auxiliary_loss(v1, v2, features), term, rtol=1e-6)

    model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1, steps_per_epoch=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and isinstance(loaded, ContrastiveModel)
    # The optimizer's slots come back too (Keras skips them, with a warning, for an unbuilt model).
    for want, got in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(got, want)
    features = _features(model, v1, v2)
    np.testing.assert_allclose(
        loaded.auxiliary_loss(v1, v2, features),
        model.auxiliary_loss(v1, v2, features),
        rtol=1e-6,
    )


def test_reconstruction_config_keeps_the_channel_layout():
    config = _model("reconstruction", weighting="uniform").get_config()
    assert (config["weighting"], config["image_channels"]) == ("uniform", 1)
    assert isinstance(ReconstructionContrastiveModel.from_config(config), ContrastiveModel)


def test_rotation_needs_square_images():
    for name in ("rotation", "reconstruction_rotation"):
        with pytest.raises(ValueError, match="rotation prediction needs square images.*16x20"):
            _model(name, shape=(16, 20, 1))
    assert isinstance(_model("reconstruction", shape=(16, 20, 1)), ReconstructionContrastiveModel)
    assert issubclass(RotationContrastiveModel, ContrastiveModel)


@pytest.mark.parametrize(
    "name, arguments, message",
    [
        ("inpainting", {}, "unknown auxiliary objective 'inpainting'"),
        ("rotation", {"weighting": "groups"}, "'rotation' takes no weighting"),
        ("reconstruction", {"weight": -1.0}, "weight must be finite and >= 0"),
        ("reconstruction", {"weighting": "bits"}, "weighting must be one of"),
    ],
)
def test_bad_auxiliary_arguments_are_rejected(name, arguments, message):
    with pytest.raises(ValueError, match=message):
        _model(name, **arguments)


def test_auxiliary_config_resolves_the_preset_and_checks_names():
    assert AuxiliaryConfig("reconstruction").resolved() == {"weight": 10.0, "weighting": "groups"}
    assert AuxiliaryConfig("bit_matched").resolved() == {}
    with pytest.raises(ValueError, match="needs a loss of method nt_xent, got 'swd'"):
        PretrainConfig(loss=LossConfig("swd_hypersphere"), auxiliary=AuxiliaryConfig("bit_matched"))
    assert AuxiliaryConfig("rotation", {"weight": 3.0}).resolved() == {"weight": 3.0}
    assert AuxiliaryConfig("reconstruction_rotation", {"rotation_weight": 1.0}).resolved() == {
        "weight": 10.0,
        "weighting": "uniform",
        "rotation_weight": 1.0,
    }
    assert issubclass(ReconstructionRotationContrastiveModel, ReconstructionContrastiveModel)
    with pytest.raises(ValueError, match="takes no epsilon"):
        AuxiliaryConfig("rotation", {"epsilon": 0.1})


def _bit_matched_terms(model, v1, v2, stop_views_gradient=False):
    z = model.project(tf.concat([v1, v2], 0), training=True)
    if stop_views_gradient:
        z = tf.stop_gradient(z)
    return model._loss_terms(v1, v2, z[: len(v1)], z[len(v1) :], training=True)


@pytest.mark.parametrize("image_channels", [1, 3])
def test_bit_matched_negatives_are_the_anchors_bits_on_other_pixels(image_channels):
    model = _model("bit_matched", image_channels=image_channels)
    assert isinstance(model, BitMatchedContrastiveModel) and model.image_channels == image_channels
    (v1, v2), _ = _views()
    z = model.project(tf.concat([v1, v2], 0), training=True)
    extra = model.project(bit_matched_images(v1, image_channels), training=True)
    # Anchor i (view 1 or 2 of image i) does not see row i of X', its own pixels.
    want = nt_xent_extra_negatives_terms(z[:8], z[8:], extra, np.eye(8, dtype=bool), 0.5)
    got = model._loss_terms(v1, v2, z[:8], z[8:], training=True)
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-6)
    assert float(got.loss) > float(nt_xent_terms(z[:8], z[8:], 0.5).loss)


def test_bit_matched_gradients_reach_the_encoder_through_the_extra_negatives():
    model = _model("bit_matched")
    (v1, v2), _ = _views()
    encoder = model.encoder.trainable_variables
    for stop in (False, True):  # True: through the extra pass alone
        with tf.GradientTape() as tape:
            loss = _bit_matched_terms(model, v1, v2, stop_views_gradient=stop).loss
        gradients = tape.gradient(loss, encoder)
        assert all(g is not None for g in gradients)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients) > 0


def test_bit_matched_trains_on_randbit_views():
    randbit = RandBit(bits=2)
    rng = np.random.default_rng(0)
    images = rng.random((8, 16, 16, 1), dtype=np.float32)
    views = [randbit.views({"image": x}, x, x + 0.01 * rng.random(x.shape)) for x in images]
    v1, v2 = (np.stack([np.asarray(v[k]) for v in views]) for k in (0, 1))
    assert v1.shape == (8, 16, 16, 3) and np.array_equal(v1[..., 1:], v2[..., 1:])
    model = _model("bit_matched")
    data = tf.data.Dataset.from_tensors(((v1, v2), {"label": np.arange(8) % 2})).repeat()
    history = model.fit(data, epochs=2, steps_per_epoch=1, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][1] != history["loss"][0]
    assert np.isfinite(model.evaluate(data.take(1), return_dict=True, verbose=0)["loss"])


def test_bit_matched_get_config_and_keras_file_round_trip(tmp_path):
    model = _model("bit_matched", image_channels=2)
    (v1, v2), _ = batch = _views()
    config = model.get_config()
    assert config["image_channels"] == 2
    clone = BitMatchedContrastiveModel.from_config(config)
    assert clone.image_channels == 2 and clone.contrastive_loss.temperature == 0.5
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1, steps_per_epoch=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is BitMatchedContrastiveModel and loaded.image_channels == 2
    for want, got in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(
        _bit_matched_terms(loaded, v1, v2).loss, _bit_matched_terms(model, v1, v2).loss, rtol=1e-6
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"loss": "ifm"}, "BitMatchedContrastiveModel needs a loss of method nt_xent, got 'ifm'"),
        ({"image_channels": 4}, r"image_channels must be in \[1, 3\], got 4"),
        ({"weight": 1.0}, "'bit_matched' takes no weight"),
    ],
)
def test_bad_bit_matched_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        _model("bit_matched", **arguments)
