"""The generalized contrastive loss L = L_alignment + lambda * L_distribution (paper Sec. 2)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from cl_properties.distribute import cross_replica_concat
from cl_properties.losses.primitives import (
    LossTerms,
    Seed,
    as_views,
    check_lambda,
    check_temperature,
    l2_normalize,
)
from cl_properties.losses.priors import check_prior, default_normalize
from cl_properties.losses.swd import sliced_wasserstein_loss, swd_draws

DISTRIBUTIONS = ("logsumexp", "swd")


def alignment_loss(z1, z2):
    """L_alignment = mean over the n * d entries of (z1 - z2)^2 / 2 (the official convention;
    for unit vectors (1/d) * mean_i (1 - cos(z1_i, z2_i)))."""
    return ops.mean(ops.square(z1 - z2)) / 2


def logsumexp_distribution(h, temperature: float):
    """The decoupled NT-Xent distribution term on h (m, d), the official convention:

        L_dist = mean_i logsumexp_k(h_i . h_k / tau) - log(d)

    over all k, self-similarity and positive included; log(d) is a constant offset.
    """
    scores = ops.matmul(h, ops.transpose(h)) / temperature
    dim = ops.cast(ops.shape(h)[1], h.dtype)
    return ops.mean(ops.logsumexp(scores, axis=1)) - ops.log(dim)


def check_pairing(distribution: str, prior: str, normalize: bool | None) -> bool:
    """Validates a (distribution, prior, normalize) choice; returns the resolved `normalize`.

    Forbidden: "logsumexp" with a prior other than "hypersphere" (its implied prior is the
    uniform hypersphere), and normalize=True with the "normal" or "hypercube" prior (unit
    vectors cannot match those priors; the official code's `hidden_norm=True` with its
    normal prior *is* the hypersphere prior).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
    check_prior(prior)
    if distribution == "logsumexp" and prior != "hypersphere":
        raise ValueError(
            f"distribution='logsumexp' matches the uniform hypersphere; prior must be "
            f"'hypersphere', got {prior!r}"
        )
    normalize = default_normalize(prior) if normalize is None else bool(normalize)
    if normalize and prior != "hypersphere":
        raise ValueError(
            f"normalize=True is incompatible with prior={prior!r}: unit vectors cannot match "
            f"it (use prior='hypersphere' or normalize=False)"
        )
    return normalize


def generalized_contrastive_loss(
    z1,
    z2,
    *,
    distribution: str = "logsumexp",
    prior: str = "hypersphere",
    lambda_weight: float = 1.0,
    temperature: float = 1.0,
    normalize: bool | None = None,
    seed: Seed | None = None,
) -> LossTerms:
    """L = L_alignment + lambda * L_distribution with the official colab's conventions.

    z = z / ||z|| first if `normalize` (None: True for the hypersphere prior, else False);
    h = [z1; z2] (2n, d);
    - L_alignment = mean over n * d of (z1 - z2)^2 / 2 (`alignment_loss`);
    - distribution="logsumexp" (decoupled NT-Xent): `logsumexp_distribution(h, temperature)`;
    - distribution="swd": `sliced_wasserstein_loss(h, P, W)` with W = random_orthogonal(d)
      and P = 2n samples of `prior`, both drawn statelessly from `seed` by `swd_draws`
      (required: an int, a pair, or a tensor such as (seed, step), which makes W and P fresh
      every step and the same on every replica). The temperature is not used.

    Under a tf.distribute replica context with several replicas, z1 and z2 are gathered from
    all replicas (differentiably) and the terms are those of the global batch, identical on
    every replica: divide by `num_replicas_in_sync` before taking gradients (the optimizer
    sums replica gradients). Computes in float32 (float64 for float64 inputs).
    """
    normalize = check_pairing(distribution, prior, normalize)
    temperature = check_temperature(temperature)
    lambda_weight = check_lambda(lambda_weight)
    if distribution == "swd" and seed is None:
        raise ValueError(
            "distribution='swd' needs a seed (e.g. (seed, step)) for its random projection and "
            "prior samples"
        )
    z1, z2 = as_views(z1, z2)
    dim = z1.shape[-1] if z1.shape[-1] is not None else z2.shape[-1]
    if distribution == "swd" and dim is None:
        raise ValueError("distribution='swd' needs the embedding dimension known statically")
    z1, z2 = cross_replica_concat((z1, z2))
    if normalize:
        z1, z2 = l2_normalize(z1), l2_normalize(z2)
    alignment = alignment_loss(z1, z2)
    h = ops.concatenate([z1, z2], axis=0)
    if distribution == "logsumexp":
        dist = logsumexp_distribution(h, temperature)
    else:
        projection, samples = swd_draws(prior, tf.shape(h)[0], dim, seed, dtype=h.dtype)
        dist = sliced_wasserstein_loss(h, samples, projection)
    return LossTerms(alignment + lambda_weight * dist, alignment, dist)
