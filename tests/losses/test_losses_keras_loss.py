"""`ContrastiveLoss`: dispatch, scale, serialization, traced use and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    ContrastiveLoss,
    generalized_contrastive_loss,
    nt_xent,
    nt_xent_terms,
)

CONFIGS = [
    {"method": "nt_xent", "temperature": 0.2},
    {"method": "nt_xent", "temperature": 0.2, "candidates": "cross_view"},
    {"method": "ifm", "temperature": 0.2, "epsilon": 0.1, "alpha": 1.0},
    {"method": "ifm", "temperature": 0.2, "epsilon": 0.3, "alpha": 0.5, "candidates": "cross_view"},
    {"method": "decoupled", "temperature": 1.0, "lambda_weight": 0.1},
    {"method": "swd", "prior": "hypersphere", "lambda_weight": 5.0, "seed": 1},
    {"method": "swd", "prior": "hypercube", "lambda_weight": 5.0, "seed": 2},
    {"method": "swd", "prior": "normal", "lambda_weight": 5.0, "seed": 3},
]


@pytest.fixture
def views():
    rng = np.random.default_rng(2)
    return tuple(tf.constant(rng.normal(size=(10, 8)), tf.float32) for _ in range(2))


def test_dispatches_to_the_functions(views):
    z1, z2 = views
    np.testing.assert_array_equal(
        ContrastiveLoss("nt_xent", temperature=0.2)(z1, z2).loss.numpy(),
        nt_xent(z1, z2, temperature=0.2).numpy(),
    )
    got = ContrastiveLoss("decoupled", temperature=0.5, lambda_weight=0.1)(z1, z2)
    want = generalized_contrastive_loss(z1, z2, temperature=0.5, lambda_weight=0.1)
    np.testing.assert_array_equal(np.array(got), np.array(want))
    swd = ContrastiveLoss("swd", prior="normal", seed=9)
    got = swd(z1, z2, step=4)
    want = generalized_contrastive_loss(z1, z2, distribution="swd", prior="normal", seed=(9, 4))
    np.testing.assert_array_equal(np.array(got), np.array(want))
    # No step is step 0.
    np.testing.assert_array_equal(np.array(swd(z1, z2)), np.array(swd(z1, z2, step=0)))


def test_cross_view_candidates_are_an_nt_xent_option(views):
    z1, z2 = views
    got = ContrastiveLoss("nt_xent", candidates="cross_view")(z1, z2).loss
    np.testing.assert_array_equal(got.numpy(), nt_xent(z1, z2, candidates="cross_view").numpy())
    for method in ("decoupled", "swd"):
        with pytest.raises(ValueError, match="is an NT-Xent option"):
            ContrastiveLoss(method, candidates="cross_view")


def test_defaults_resolve():
    assert ContrastiveLoss().get_config() == {
        "method": "nt_xent",
        "prior": "hypersphere",
        "temperature": 0.1,
        "lambda_weight": 1.0,
        "normalize": True,
        "seed": 0,
        "scale": 1.0,
        "candidates": "all",
        "epsilon": 0.1,
        "alpha": 1.0,
    }
    assert ContrastiveLoss("decoupled").temperature == 1.0
    assert ContrastiveLoss("ifm").temperature == 0.1 and ContrastiveLoss("ifm").normalize
    assert ContrastiveLoss("swd", prior="normal").normalize is False
    assert ContrastiveLoss("swd", prior="hypersphere").normalize is True


@pytest.mark.parametrize("config", CONFIGS)
def test_parts_add_up(views, config):
    terms = ContrastiveLoss(**config)(*views, step=1)
    lam = 1.0 if config["method"] in ("nt_xent", "ifm") else config["lambda_weight"]
    np.testing.assert_allclose(
        terms.loss.numpy(), (terms.alignment + lam * terms.distribution).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_scale_multiplies_every_term(views, config):
    terms = ContrastiveLoss(**config)(*views, step=1)
    scaled = ContrastiveLoss(**config, scale=2.0)(*views, step=1)
    for name in ("loss", "alignment", "distribution"):
        np.testing.assert_array_equal(
            getattr(scaled, name).numpy(), 2 * getattr(terms, name).numpy()
        )
    assert dict(scaled.extras) == dict(terms.extras) == {}


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_scale_raises(scale):
    with pytest.raises(ValueError, match="scale"):
        ContrastiveLoss(scale=scale)


def test_nt_xent_with_scale_2_is_simclr_add_contrastive_loss(views):
    """SimCLR tf2/objective.py `add_contrastive_loss` (one replica), transcribed in numpy:
    each view's anchors against [other view; own view without itself] (2n - 1 candidates),
    loss = mean(loss_a + loss_b), the sum of the two directions' mean cross-entropies."""
    tau = 0.2
    h1, h2 = (z.numpy().astype(np.float64) for z in views)
    h1, h2 = (h / np.linalg.norm(h, axis=1, keepdims=True) for h in (h1, h2))
    n = h1.shape[0]
    masks = np.eye(n) * 1e9  # SimCLR's LARGE_NUM

    def cross_entropy(anchor, other):
        logits = np.concatenate([anchor @ other.T / tau, anchor @ anchor.T / tau - masks], axis=1)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -log_softmax[np.arange(n), np.arange(n)]  # labels: one_hot(range(n), 2n)

    simclr = np.mean(cross_entropy(h1, h2) + cross_entropy(h2, h1))
    ours = ContrastiveLoss("nt_xent", temperature=tau, scale=2.0)(*views).loss.numpy()
    np.testing.assert_allclose(ours, simclr, rtol=1e-5)
    # And scale 1 is half of it: the paper's mean over the 2n anchors.
    np.testing.assert_allclose(nt_xent(*views, temperature=tau).numpy(), simclr / 2, rtol=1e-5)


@pytest.mark.parametrize("config", CONFIGS)
def test_config_round_trip(views, config):
    loss = ContrastiveLoss(**config, scale=3.0)
    restored = ContrastiveLoss.from_config(loss.get_config())
    assert restored.get_config() == loss.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, ContrastiveLoss) and revived.get_config() == loss.get_config()
    for other in (restored, revived):
        np.testing.assert_array_equal(
            np.array(other(*views, step=3)[:3]), np.array(loss(*views, step=3)[:3])
        )


@pytest.mark.parametrize("config", CONFIGS)
def test_traced_with_unknown_batch(views, config):
    loss = ContrastiveLoss(**config)
    spec = tf.TensorSpec([None, 8], tf.float32)

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([], tf.int64)])
    def traced(z1, z2, step):
        return loss(z1, z2, step=step)

    np.testing.assert_allclose(
        np.array(traced(*views, tf.constant(2, tf.int64))[:3]),
        np.array(loss(*views, step=2)[:3]),
        rtol=1e-6,
    )


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("config", CONFIGS)
def test_finite_float32_under_mixed_bfloat16(mixed_bfloat16, config):
    layer = keras.layers.Dense(16)
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    with tf.GradientTape() as tape:
        z1, z2 = layer(x), layer(x + 0.1)
        assert z1.dtype == tf.bfloat16
        terms = ContrastiveLoss(**config)(z1, z2, step=1)
    grads = tape.gradient(terms.loss, layer.trainable_variables)
    for value in (terms.loss, terms.alignment, terms.distribution):
        assert value.dtype == tf.float32 and np.isfinite(value.numpy())
    assert all(np.isfinite(g.numpy()).all() for g in grads)


@pytest.mark.parametrize("config", CONFIGS)
def test_finite_float32_for_extreme_inputs(config):
    if config["method"] != "swd":
        config = {**config, "temperature": 0.01}
    z = tf.constant(np.random.default_rng(0).normal(size=(16, 8)) * 1e3, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        terms = ContrastiveLoss(**config)(z, z[::-1], step=0)
    assert all(np.isfinite(v.numpy()) for v in (terms.loss, terms.alignment, terms.distribution))
    assert np.isfinite(tape.gradient(terms.loss, z).numpy()).all()


def test_nt_xent_terms_match_the_object(views):
    np.testing.assert_array_equal(
        np.array(ContrastiveLoss("nt_xent", temperature=0.3)(*views)[:3]),
        np.array(nt_xent_terms(*views, temperature=0.3)[:3]),
    )
