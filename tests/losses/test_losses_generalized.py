"""The generalized loss (decoupled NT-Xent and SWD) against numpy references written from the
official conventions in paper-notes section 1."""

import numpy as np
import pytest

from cl_properties.losses import PRIORS, generalized_contrastive_loss, swd_draws


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_logsumexp(z1, z2, tau, lam):
    """alignment = mean over n*d of (z~1 - z~2)^2 / 2; L_dist = mean_i logsumexp_k(s_ik / tau)
    - log d with k over all 2n (self and positive included)."""
    z1, z2 = unit(z1), unit(z2)
    alignment = np.mean((z1 - z2) ** 2) / 2
    h = np.concatenate([z1, z2])
    distribution = np.mean(np.log(np.exp(h @ h.T / tau).sum(axis=1))) - np.log(h.shape[1])
    return alignment + lam * distribution, alignment, distribution


def reference_swd(z1, z2, normalize, lam, projection, prior_samples):
    if normalize:
        z1, z2 = unit(z1), unit(z2)
    alignment = np.mean((z1 - z2) ** 2) / 2
    h = np.concatenate([z1, z2])
    distance = np.sort(prior_samples @ projection, axis=0) - np.sort(h @ projection, axis=0)
    distribution = np.mean(distance**2)
    return alignment + lam * distribution, alignment, distribution


@pytest.fixture
def views():
    rng = np.random.default_rng(3)
    return rng.normal(size=(7, 6)), rng.normal(size=(7, 6))


@pytest.mark.parametrize("tau, lam", [(1.0, 0.1), (0.2, 1.0), (0.5, 3.0)])
def test_logsumexp_matches_reference(views, tau, lam):
    terms = generalized_contrastive_loss(*views, lambda_weight=lam, temperature=tau)
    expected = reference_logsumexp(*views, tau, lam)
    for got, want in zip(terms, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(
        terms.loss.numpy(), (terms.alignment + lam * terms.distribution).numpy(), rtol=1e-14
    )


@pytest.mark.parametrize("prior", PRIORS)
def test_swd_matches_reference(views, prior):
    lam, seed = 5.0, (11, 4)
    terms = generalized_contrastive_loss(
        *views, distribution="swd", prior=prior, lambda_weight=lam, seed=seed
    )
    z1, z2 = views
    projection, samples = swd_draws(prior, 2 * len(z1), z1.shape[1], seed, dtype="float64")
    normalize = prior == "hypersphere"
    expected = reference_swd(z1, z2, normalize, lam, projection.numpy(), samples.numpy())
    for got, want in zip(terms, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(
        terms.loss.numpy(), (terms.alignment + lam * terms.distribution).numpy(), rtol=1e-14
    )


def test_swd_hypersphere_without_normalization(views):
    z1, z2 = views
    seed = 5
    terms = generalized_contrastive_loss(
        z1, z2, distribution="swd", prior="hypersphere", normalize=False, seed=seed
    )
    projection, samples = swd_draws("hypersphere", 2 * len(z1), z1.shape[1], seed, dtype="float64")
    expected = reference_swd(z1, z2, False, 1.0, projection.numpy(), samples.numpy())
    np.testing.assert_allclose(terms.loss.numpy(), expected[0], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{}] + [{"distribution": "swd", "prior": p, "seed": 2} for p in PRIORS]
)
def test_symmetric_and_permutation_invariant(views, kwargs):
    z1, z2 = views
    loss = generalized_contrastive_loss(z1, z2, **kwargs).loss.numpy()
    np.testing.assert_allclose(
        generalized_contrastive_loss(z2, z1, **kwargs).loss.numpy(), loss, rtol=1e-12
    )
    perm = np.random.default_rng(0).permutation(len(z1))
    permuted = generalized_contrastive_loss(z1[perm], z2[perm], **kwargs).loss.numpy()
    np.testing.assert_allclose(permuted, loss, rtol=1e-12)


def test_decoupled_is_minimal_for_aligned_spread_embeddings():
    """Aligned (z1 == z2) orthogonal embeddings beat misaligned and collapsed ones."""
    z = np.eye(8)[:4]
    spread = generalized_contrastive_loss(z, z).loss.numpy()
    collapsed = generalized_contrastive_loss(np.ones((4, 8)), np.ones((4, 8))).loss.numpy()
    misaligned = generalized_contrastive_loss(z, z[::-1]).loss.numpy()
    assert spread < collapsed and spread < misaligned
