"""Priors that the sliced-Wasserstein distribution term matches (paper-notes section 1)."""
from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from cl_properties.losses.common import Seed, as_seed, l2_normalize

PRIORS = ("hypersphere", "hypercube", "normal")


def check_prior(prior: str) -> str:
    """Returns `prior`; ValueError unless it is one of PRIORS."""
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; expected one of {PRIORS}")
    return prior


def default_normalize(prior: str) -> bool:
    """Whether embeddings are l2-normalized by default: only for the hypersphere prior."""
    return check_prior(prior) == "hypersphere"


def sample_prior(prior: str, shape: Sequence[int] | tf.Tensor, seed: Seed, dtype="float32"):
    """Draws `shape` samples from a prior, deterministically from `seed` (stateless RNG).

    - "normal": i.i.d. N(0, 1) entries;
    - "hypercube": i.i.d. U(-1, 1) entries (uniform on [-1, 1]^d);
    - "hypersphere": N(0, I) rows l2-normalized along the last axis (uniform on S^{d-1}).

    The same (seed, shape) gives the same draw on every replica and inside tf.function.
    """
    check_prior(prior)
    seed = as_seed(seed)
    if prior == "hypercube":
        return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0, dtype=dtype)
    samples = tf.random.stateless_normal(shape, seed, dtype=dtype)
    return l2_normalize(samples) if prior == "hypersphere" else samples
