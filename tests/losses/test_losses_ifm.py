"""IFM (implicit feature modification) against a direct numpy transcription of its formula,
its reduction to NT-Xent at eps = 0, its gradients, and its place in the registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    ContrastiveLoss,
    build_loss,
    ifm,
    ifm_terms,
    loss_arguments,
    nt_xent_terms,
)


def reference_ifm(z1, z2, tau, eps, alpha, candidates="all"):
    """(loss, alignment, distribution) in float64, straight from the definition: logits_adv
    = (s - eps on the positive + eps on the other candidates) / tau, loss = (CE(logits) +
    alpha CE(logits_adv)) / (1 + alpha); alignment = -mean s_ip / tau, distribution = loss -
    alignment written out as the mixture of the two log-partitions."""
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    h = np.concatenate([z1, z2])
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    m, n = len(h), len(z1)
    s = h @ h.T
    losses, alignments, distributions = [], [], []
    for i in range(m):
        p = (i + n) % m
        if candidates == "all":
            others = [k for k in range(m) if k != i]
        else:
            others = [k for k in range(m) if (k < n) != (i < n)]
        clean = s[i, others] / tau
        adversarial = np.array([s[i, k] - eps if k == p else s[i, k] + eps for k in others]) / tau
        positive = others.index(p)

        def cross_entropy(logits):
            return -logits[positive] + np.log(np.exp(logits).sum())

        losses.append((cross_entropy(clean) + alpha * cross_entropy(adversarial)) / (1 + alpha))
        alignments.append(-s[i, p] / tau)
        log_partition = np.log(np.exp(clean).sum())
        # CE(logits_adv) = -s_ip / tau + (eps / tau + its log-partition)
        adversarial_log_partition = eps / tau + np.log(np.exp(adversarial).sum())
        distributions.append((log_partition + alpha * adversarial_log_partition) / (1 + alpha))
    return np.mean(losses), np.mean(alignments), np.mean(distributions)


@pytest.fixture
def views():
    rng = np.random.default_rng(3)
    return rng.normal(size=(5, 4)), rng.normal(size=(5, 4))


@pytest.mark.parametrize("candidates", ["all", "cross_view"])
@pytest.mark.parametrize(
    "tau, eps, alpha", [(0.1, 0.1, 1.0), (0.5, 0.05, 0.3), (0.2, 0.3, 2.0), (1.0, 0.1, 0.0)]
)
def test_matches_reference(views, candidates, tau, eps, alpha):
    terms = ifm_terms(*views, temperature=tau, epsilon=eps, alpha=alpha, candidates=candidates)
    assert terms.loss.dtype == tf.float64
    want = reference_ifm(*views, tau, eps, alpha, candidates)
    np.testing.assert_allclose(np.array(terms[:3]), want, rtol=1e-10)
    np.testing.assert_allclose(terms.loss, terms.alignment + terms.distribution, rtol=1e-10)
    np.testing.assert_array_equal(
        ifm(*views, temperature=tau, epsilon=eps, alpha=alpha, candidates=candidates).numpy(),
        terms.loss.numpy(),
    )


@pytest.mark.parametrize("candidates", ["all", "cross_view"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 3.0])
def test_zero_epsilon_is_nt_xent(views, candidates, alpha):
    z1, z2 = (v.astype(np.float32) for v in views)
    got = ifm_terms(z1, z2, temperature=0.2, epsilon=0.0, alpha=alpha, candidates=candidates)
    want = nt_xent_terms(z1, z2, temperature=0.2, candidates=candidates)
    assert got.loss.dtype == tf.float32
    np.testing.assert_allclose(np.array(got[:3]), np.array(want[:3]), rtol=1e-6)


def test_epsilon_raises_the_loss(views):
    """A larger eps lowers the positive's softmax probability in CE(logits_adv): the loss grows
    with eps (alpha > 0), starting from NT-Xent's at eps = 0."""
    z1, z2 = (v.astype(np.float32) for v in views)
    losses = [
        ifm(z1, z2, temperature=0.1, epsilon=eps, alpha=1.0).numpy()
        for eps in (0.0, 0.01, 0.1, 0.5)
    ]
    assert all(a < b for a, b in zip(losses, losses[1:])), losses
    # alpha = 0 ignores the perturbed logits.
    np.testing.assert_allclose(
        ifm(z1, z2, epsilon=0.5, alpha=0.0).numpy(), ifm(z1, z2, epsilon=0.0).numpy(), rtol=1e-6
    )


def test_gradients_are_finite_reach_both_views_and_match_finite_differences(views):
    z1, z2 = (tf.constant(v, tf.float32) for v in views)
    with tf.GradientTape() as tape:
        tape.watch([z1, z2])
        loss = ifm(z1, z2, temperature=0.05, epsilon=0.1, alpha=1.0)
    grads = tape.gradient(loss, [z1, z2])
    for grad in grads:
        assert grad.dtype == tf.float32
        assert np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).max() > 1e-3
    # Central differences of the float64 reference.
    step, expected = 1e-6, []
    for which in range(2):
        grad = np.zeros_like(views[which])
        for index in np.ndindex(grad.shape):
            pair = [views[0].copy(), views[1].copy()]
            pair[which][index] += step
            up = reference_ifm(*pair, 0.05, 0.1, 1.0)[0]
            pair[which][index] -= 2 * step
            grad[index] = (up - reference_ifm(*pair, 0.05, 0.1, 1.0)[0]) / (2 * step)
        expected.append(grad)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_single_pair_has_zero_loss_and_gradient():
    """n = 1: the positive is the only candidate, so both cross-entropies are 0 whatever eps;
    the masked row must not give NaN gradients."""
    z1, z2 = tf.constant([[1.0, 2.0, 0.5]]), tf.constant([[0.3, -1.0, 2.0]])
    with tf.GradientTape() as tape:
        tape.watch([z1, z2])
        terms = ifm_terms(z1, z2, epsilon=0.3, alpha=2.0)
    assert terms.loss.numpy() == 0
    for grad in tape.gradient(terms.loss, [z1, z2]):
        np.testing.assert_array_equal(grad.numpy(), 0)


def test_registered_and_serializable(views):
    assert loss_arguments("ifm") == {
        "method": "ifm",
        "temperature": 0.1,
        "epsilon": 0.1,
        "alpha": 1.0,
        "candidates": "all",
    }
    loss = build_loss("ifm", epsilon=0.2, alpha=0.5, seed=3)
    assert isinstance(loss, ContrastiveLoss)
    assert (loss.method, loss.epsilon, loss.alpha, loss.normalize) == ("ifm", 0.2, 0.5, True)
    z1, z2 = (tf.constant(v, tf.float32) for v in views)
    np.testing.assert_array_equal(
        np.array(loss(z1, z2)[:3]),
        np.array(ifm_terms(z1, z2, temperature=0.1, epsilon=0.2, alpha=0.5)[:3]),
    )
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, ContrastiveLoss) and revived.get_config() == loss.get_config()
    np.testing.assert_array_equal(np.array(revived(z1, z2)[:3]), np.array(loss(z1, z2)[:3]))


def test_cross_view_candidates_are_an_ifm_option(views):
    z1, z2 = (tf.constant(v, tf.float32) for v in views)
    got = ContrastiveLoss("ifm", candidates="cross_view", epsilon=0.2)(z1, z2).loss
    want = ifm(z1, z2, epsilon=0.2, candidates="cross_view")
    np.testing.assert_array_equal(got.numpy(), want.numpy())
