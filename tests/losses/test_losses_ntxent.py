"""NT-Xent against a direct numpy transcription of its definition, its decomposition,
analytic values and gradients, and its relative precision near zero loss; NT-Xent with masked
extra negatives (the bit-matched oracle's) against its own transcription."""

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    contrastive_accuracy,
    nt_xent,
    nt_xent_extra_negatives_terms,
    nt_xent_terms,
)


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


def precise_reference_nt_xent(z1, z2, tau, normalize=True):
    """l_i = log(1 + sum_{k != i, p(i)} exp((s_ik - s_ip) / tau)) in float64 with log1p: the
    same value as `reference_nt_xent`, with full relative precision when l_i is tiny."""
    h = np.concatenate([z1, z2]).astype(np.float64)
    if normalize:
        h = unit(h)
    m, n = len(h), len(z1)
    logits = h @ h.T / tau
    losses = []
    for i in range(m):
        p = (i + n) % m
        others = [k for k in range(m) if k not in (i, p)]
        losses.append(np.log1p(np.exp(logits[i, others] - logits[i, p]).sum()))
    return np.mean(losses)


def reference_gradients(z1, z2, tau, normalize=True):
    """dL/dz1, dL/dz2 in float64: dL/dlogits = (softmax_{k != i} - onehot(p(i))) / 2n, chained
    through logits = u u^T / tau and, if `normalize`, u = h / ||h||."""
    h = np.concatenate([z1, z2]).astype(np.float64)
    norms = np.linalg.norm(h, axis=1, keepdims=True)
    u = h / norms if normalize else h
    m, n = len(h), len(z1)
    logits = u @ u.T / tau
    np.fill_diagonal(logits, -np.inf)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    d_logits = (softmax - np.eye(m)[(np.arange(m) + n) % m]) / m
    grad = (d_logits + d_logits.T) @ u / tau
    if normalize:
        grad = (grad - u * np.sum(u * grad, axis=1, keepdims=True)) / norms
    return grad[:n], grad[n:]


def saturated_views(target, tau, normalize, seed=0):
    """Float32 views with well-separated pairs whose NT-Xent is about `target`.

    Normalized: two pairs at angle phi in a plane, l_i ~ 2 exp(-(1 - cos phi) / tau).
    Unnormalized: four orthogonal pairs of norm r, l_i ~ 6 exp(-r^2 / tau).
    The second view is the first plus 1e-3 noise.
    """
    rng = np.random.default_rng(seed)
    if normalize:
        phi = np.arccos(1 - tau * np.log(2 / target))
        z1 = np.array([[1.0, 0.0, 0.0], [np.cos(phi), np.sin(phi), 0.0]])
    else:
        z1 = np.sqrt(tau * np.log(6 / target)) * np.linalg.qr(rng.normal(size=(8, 8)))[0][:4]
    z2 = z1 + 1e-3 * rng.normal(size=z1.shape)
    return z1.astype(np.float32), z2.astype(np.float32)


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
    np.testing.assert_allclose(
        terms.loss.numpy(), nt_xent(z1, z2, temperature=tau).numpy(), rtol=1e-14
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_loss_is_alignment_plus_distribution_up_to_rounding(views, dtype, tau):
    """The loss is computed per anchor, not as the sum; they differ by rounding only, i.e. by
    a few ulps of the larger term (the terms are ~1/tau, the loss may be much smaller)."""
    z1, z2 = (v.astype(dtype) for v in views)
    terms = nt_xent_terms(z1, z2, temperature=tau)
    alignment, distribution = terms.alignment.numpy(), terms.distribution.numpy()
    ulp = np.finfo(dtype).eps * max(abs(alignment), abs(distribution))
    assert abs(terms.loss.numpy() - (alignment + distribution)) <= 8 * ulp


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
    np.testing.assert_allclose(
        nt_xent(z1[perm], z2[perm], temperature=0.3).numpy(), loss, rtol=1e-13
    )


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


# Normalized at tau 0.1 the loss cannot go below 2 exp(-2 / 0.1) = 4e-9 (antipodal pairs).
SATURATED = [
    (normalize, tau, target)
    for normalize in (True, False)
    for tau in (0.05, 0.1)
    for target in ((1e-3, 1e-6, 1e-8) if normalize and tau == 0.1 else (1e-3, 1e-6, 1e-9, 1e-12))
]


@pytest.mark.parametrize("normalize, tau, target", SATURATED)
def test_relative_precision_near_zero_loss(normalize, tau, target):
    z1, z2 = saturated_views(target, tau, normalize)
    expected = precise_reference_nt_xent(z1, z2, tau, normalize)
    assert target / 10 < expected < target * 10
    got = nt_xent(z1, z2, temperature=tau, normalize=normalize)
    assert got.dtype == tf.float32
    assert got.numpy() >= 0
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4)
    z1, z2 = z1.astype(np.float64), z2.astype(np.float64)
    got64 = nt_xent(z1, z2, temperature=tau, normalize=normalize)
    np.testing.assert_allclose(got64.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("normalize", [True, False])
def test_gradients_match_reference(views, dtype, tau, normalize):
    scale = 1.0 if normalize else 0.3
    z1, z2 = (tf.constant(scale * v, dtype) for v in views)
    with tf.GradientTape() as tape:
        tape.watch([z1, z2])
        loss = nt_xent(z1, z2, temperature=tau, normalize=normalize)
    grads = tape.gradient(loss, [z1, z2])
    expected = reference_gradients(z1.numpy(), z2.numpy(), tau, normalize)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for got, want in zip(grads, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_single_pair_has_zero_loss_and_gradient():
    """n = 1: no negatives, l_i = -log 1 = 0; the masked row must not give NaN gradients."""
    z1, z2 = tf.constant([[1.0, 2.0, 0.5]]), tf.constant([[0.3, -1.0, 2.0]])
    for normalize in (True, False):
        with tf.GradientTape() as tape:
            tape.watch([z1, z2])
            terms = nt_xent_terms(z1, z2, temperature=0.1, normalize=normalize)
        assert terms.loss.numpy() == 0
        np.testing.assert_allclose(terms.alignment.numpy(), -terms.distribution.numpy(), rtol=1e-6)
        for grad in tape.gradient(terms.loss, [z1, z2]):
            np.testing.assert_array_equal(grad.numpy(), 0)


def reference_cross_view_nt_xent(z1, z2, tau):
    """The official RandBit colab's loss, CE(I, u1 u2^T / tau) + CE(I, u2 u1^T / tau) with
    cosine similarities, halved to the mean over the 2n anchors."""
    u1, u2 = unit(np.asarray(z1, np.float64)), unit(np.asarray(z2, np.float64))

    def cross_entropy(logits):  # mean over rows of -log softmax(row)[own index]
        logits = logits - logits.max(axis=1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -np.mean(np.diag(log_softmax))

    return (cross_entropy(u1 @ u2.T / tau) + cross_entropy(u2 @ u1.T / tau)) / 2


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_cross_view_candidates_match_the_colab_loss(views, tau):
    z1, z2 = views
    terms = nt_xent_terms(z1, z2, temperature=tau, candidates="cross_view")
    np.testing.assert_allclose(
        terms.loss.numpy(), reference_cross_view_nt_xent(z1, z2, tau), rtol=1e-10
    )
    np.testing.assert_allclose(terms.loss, terms.alignment + terms.distribution, rtol=1e-10)
    # Fewer candidates (n, not 2n - 1): a different, smaller loss than SimCLR's.
    assert terms.loss < nt_xent(z1, z2, temperature=tau)


def test_unknown_candidates_are_rejected(views):
    with pytest.raises(ValueError, match="candidates must be one of"):
        nt_xent(*views, candidates="same_view")


def reference_extra_negatives(z1, z2, extra, mask, tau, normalize=True):
    """l_i = -log(exp(s_ip / tau) / (sum_{k != i} exp(s_ik / tau)
    + sum_{j: not mask[i mod n, j]} exp(s(h_i, e_j) / tau))), averaged over 2n anchors."""
    h = np.concatenate([z1, z2]).astype(np.float64)
    extra = np.asarray(extra, np.float64)
    if normalize:
        h, extra = unit(h), unit(extra)
    m, n = len(h), len(z1)
    losses = []
    for i in range(m):
        sims = h[i] @ h.T / tau
        denominator = sum(np.exp(sims[k]) for k in range(m) if k != i)
        denominator += sum(
            np.exp(h[i] @ extra[j] / tau) for j in range(len(extra)) if not mask[i % n, j]
        )
        losses.append(-np.log(np.exp(sims[(i + n) % m]) / denominator))
    return np.mean(losses)


@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("normalize", [True, False])
def test_extra_negatives_match_reference(views, tau, normalize):
    z1, z2 = views
    rng = np.random.default_rng(1)
    extra = rng.normal(size=(5, z1.shape[1])).astype(np.float32)
    mask = rng.random((len(z1), 5)) < 0.4
    terms = nt_xent_extra_negatives_terms(z1, z2, extra, mask, tau, normalize)
    want = reference_extra_negatives(z1, z2, extra, mask, tau, normalize)
    np.testing.assert_allclose(terms.loss, want, rtol=1e-5)
    np.testing.assert_allclose(terms.loss, terms.alignment + terms.distribution, rtol=1e-5)
    # The negatives only add to the denominators: the alignment is NT-Xent's.
    np.testing.assert_allclose(terms.alignment, nt_xent_terms(z1, z2, tau, normalize).alignment)


def test_masked_or_no_extra_negatives_are_nt_xent(views):
    z1, z2 = views
    extra = np.random.default_rng(1).normal(size=(3, z1.shape[1])).astype(np.float32)
    want = nt_xent_terms(z1, z2, 0.2)
    for got in (
        nt_xent_extra_negatives_terms(z1, z2, extra, np.ones((len(z1), 3), bool), 0.2),
        nt_xent_extra_negatives_terms(z1, z2, extra[:0], None, 0.2),
    ):
        for name in ("loss", "alignment", "distribution"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-6)
    # Unmasked, the extra negatives raise the loss.
    assert float(nt_xent_extra_negatives_terms(z1, z2, extra, None, 0.2).loss) > float(want.loss)


def test_extra_negatives_need_the_views_dimension(views):
    z1, z2 = views
    with pytest.raises(ValueError, match="extra must have z1's"):
        nt_xent_extra_negatives_terms(z1, z2, np.ones((2, z1.shape[1] + 1), np.float32))
