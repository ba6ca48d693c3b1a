"""NT-Xent against a direct numpy transcription of its definition, its decomposition and
analytic values."""
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import contrastive_accuracy, nt_xent, nt_xent_terms


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_nt_xent(z1, z2, tau, normalize=True):
    """l_i = -log(exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau)), averaged over 2n anchors."""
    h = np.concatenate([z1, z2]).astype(np.float64)
    if normalize:
        h = unit(h)
    m, n = len(h), len(z1)
    losses = []
    for i in range(m):
        sims = np.array([h[i] @ h[k] for k in range(m)]) / tau
        denominator = sum(np.exp(sims[k]) for k in range(m) if k != i)
        losses.append(-np.log(np.exp(sims[(i + n) % m]) / denominator))
    return np.mean(losses)


@pytest.fixture
def views():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)), rng.normal(size=(6, 5))


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_nt_xent_matches_reference(views, tau, normalize):
    z1, z2 = views
    scale = 1.0 if normalize else 0.3  # keeps exp(s/tau) in range without normalization
    z1, z2 = scale * z1, scale * z2
    got = nt_xent(z1, z2, temperature=tau, normalize=normalize)
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), reference_nt_xent(z1, z2, tau, normalize), rtol=1e-10)


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_decomposition_is_exact(views, tau):
    z1, z2 = views
    terms = nt_xent_terms(z1, z2, temperature=tau)
    h = unit(np.concatenate([z1, z2]))
    n = len(z1)
    scores = h @ h.T / tau
    np.fill_diagonal(scores, -np.inf)
    lse = np.log(np.exp(scores).sum(axis=1))  # log sum_{k != i} exp(s_ik / tau)
    l_alignment = -np.mean(np.sum(h[:n] * h[n:], axis=1))  # -mean cos(positive pair)
    # tau * L_NTXent = L_alignment + tau * L_distribution
    np.testing.assert_allclose(tau * terms.loss.numpy(), l_alignment + tau * lse.mean(), rtol=1e-12)
    np.testing.assert_allclose(tau * terms.alignment.numpy(), l_alignment, rtol=1e-12)
    np.testing.assert_allclose(terms.distribution.numpy(), lse.mean(), rtol=1e-12)
    np.testing.assert_allclose(terms.loss.numpy(), (terms.alignment + terms.distribution).numpy(), rtol=1e-14)
    np.testing.assert_allclose(terms.loss.numpy(), nt_xent(z1, z2, temperature=tau).numpy(), rtol=1e-14)


def test_perfectly_correlated_orthogonal_embeddings():
    n = 4
    z = np.eye(8)[:n]  # orthogonal unit rows; z1 == z2
    # Exact value: s_ip = 1, s_ik = 0 for the 2n - 2 negatives.
    expected = np.log1p((2 * n - 2) * np.exp(-1 / 0.1))
    np.testing.assert_allclose(nt_xent(z, z, temperature=0.1).numpy(), expected, rtol=1e-10)
    # tau -> 0: the positive takes all the mass.
    assert 0 <= nt_xent(z, z, temperature=0.01).numpy() < 1e-12
    # tau -> infinity: every candidate equally likely, -log(1 / (2n - 1)).
    np.testing.assert_allclose(nt_xent(z, z, temperature=1e6).numpy(), np.log(2 * n - 1), rtol=1e-5)


def test_symmetric_and_permutation_invariant(views):
    z1, z2 = views
    loss = nt_xent(z1, z2, temperature=0.3).numpy()
    np.testing.assert_allclose(nt_xent(z2, z1, temperature=0.3).numpy(), loss, rtol=1e-13)
    perm = np.random.default_rng(1).permutation(len(z1))
    np.testing.assert_allclose(nt_xent(z1[perm], z2[perm], temperature=0.3).numpy(), loss, rtol=1e-13)


def test_gradients_finite_float32(views):
    z1, z2 = (tf.constant(v, tf.float32) for v in views)
    with tf.GradientTape() as tape:
        tape.watch([z1, z2])
        loss = nt_xent(z1, z2, temperature=0.05)
    grads = tape.gradient(loss, [z1, z2])
    assert loss.dtype == tf.float32
    assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_contrastive_accuracy(views):
    z1, z2 = views
    assert contrastive_accuracy(z1, z1 + 1e-3 * z2).numpy() == 1.0
    # Reference: argmax over the other 2n - 1 candidates.
    h = unit(np.concatenate([z1, z2]))
    n = len(z1)
    scores = h @ h.T
    np.fill_diagonal(scores, -np.inf)
    expected = np.mean(np.argmax(scores, axis=1) == (np.arange(2 * n) + n) % (2 * n))
    got = contrastive_accuracy(z1, z2)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7)
