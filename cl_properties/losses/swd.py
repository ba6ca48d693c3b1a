"""Sliced Wasserstein distance (SWD) between a batch and prior samples, and random projections."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from cl_properties.losses.primitives import Seed, as_matrix, as_seed, compute_dtype, same_shape
from cl_properties.losses.priors import RNG_ALG, sample_prior


def random_orthogonal(dim: int, seed: Seed, dtype="float32"):
    """A random orthogonal `dim x dim` matrix, Haar-distributed, determined by `seed`.

    W = Q diag(sign(diag(R))) where Q R is the QR factorization of
    G = tf.random.stateless_normal((dim, dim), seed, alg="philox"): the sign correction makes
    R's diagonal positive, so W is unique given G and uniformly distributed on O(dim). A seed
    that depends on the training step, e.g. (seed, step), gives a fresh matrix every step,
    also inside tf.function (unlike `keras.initializers.Orthogonal()` called in a traced
    function, which is frozen into the graph as one matrix).

    Reproducibility as for `sample_prior`: a function of (dim, seed, dtype) and the compile
    mode only; eager and plain tf.function agree bitwise, XLA-compiled code gives another
    (equally Haar-distributed) matrix, because its G differs, and its QR also differs from
    TF's in the last bits (TF 2.21, CPU: up to ~3e-6 for the same 64 x 64 float32 G).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    gaussian = tf.random.stateless_normal((dim, dim), as_seed(seed), dtype=dtype, alg=RNG_ALG)
    q, r = ops.qr(gaussian)
    signs = ops.where(ops.diagonal(r) < 0, ops.cast(-1, dtype), ops.cast(1, dtype))
    return q * signs[None, :]


def swd_draws(prior: str, num_samples, dim: int, seed: Seed, dtype="float32"):
    """The random inputs of one SWD evaluation: (projection W (dim, dim), prior samples
    (num_samples, dim)), both determined by `seed` (split into two independent seeds).

    This is what `generalized_contrastive_loss(distribution="swd", seed=seed)` uses. Within
    one compile mode a seed (seed, step) always gives the same W and samples, at the first
    call or any later one, in a fresh tf.function or process, whatever the global seed and
    the draws before; other steps give independent draws. Eager and plain tf.function agree
    bitwise; XLA-compiled code draws other W and samples for the same seed (see
    `sample_prior` and `random_orthogonal`), so the SWD term, and training, differ with
    `jit_compile`.
    """
    projection_seed, prior_seed = tf.unstack(tf.random.split(as_seed(seed), 2, alg=RNG_ALG))
    projection = random_orthogonal(dim, projection_seed, dtype=dtype)
    return projection, sample_prior(prior, tf.stack([num_samples, dim]), prior_seed, dtype=dtype)


def sliced_wasserstein_loss(states, prior_samples, projection):
    """Squared sliced Wasserstein distance, the SWD distribution term (paper-notes section 1).

        L = mean over (m, k) of (sort_cols(P W) - sort_cols(H W))^2

    for states H (m, d), prior samples P (m, d) and projection W (d, k): every column of the
    projections is sorted over the batch, which solves 1-D optimal transport per direction
    (the i-th smallest state is matched to the i-th smallest prior sample). Sorting costs
    O(k m log m). The gradient flows to `states` only; the prior and W are constants.
    Computes in float32 (float64 if all inputs are float64). No cross-replica gather: pass
    the global batch (as `generalized_contrastive_loss` does).
    """
    states = as_matrix(states, "states")
    prior_samples = as_matrix(prior_samples, "prior_samples")
    projection = as_matrix(projection, "projection")
    same_shape(states, prior_samples, "states and prior_samples")
    dim, rows = states.shape[1], projection.shape[0]
    if dim is not None and rows is not None and dim != rows:
        raise ValueError(
            f"projection must have {states.shape[1]} rows (the states' dimension), "
            f"got shape {tuple(projection.shape)}"
        )
    dtype = compute_dtype(states, prior_samples, projection)
    states = ops.cast(states, dtype)
    prior_samples = ops.stop_gradient(ops.cast(prior_samples, dtype))
    projection = ops.stop_gradient(ops.cast(projection, dtype))
    # Sort along the last axis of the transposed (k, m) projections: one sort per direction.
    projected_states = ops.sort(ops.transpose(ops.matmul(states, projection)), axis=-1)
    projected_prior = ops.sort(ops.transpose(ops.matmul(prior_samples, projection)), axis=-1)
    return ops.mean(ops.square(projected_prior - projected_states))
