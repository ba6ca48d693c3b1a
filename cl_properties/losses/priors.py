"""Priors that the sliced-Wasserstein distribution term matches (paper-notes section 1)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from cl_properties.losses.primitives import Seed, as_seed, l2_normalize

PRIORS = ("hypersphere", "hypercube", "normal")
# The stateless bit generator of every draw of the losses. TF's kernels use Philox anyway;
# without it, XLA lowers the seed-only ops with a generator chosen per device (not Philox on
# TPUs) that keeps only the low 32 bits of each int64 seed word (TF 2.21: seeds that differ
# above bit 31 gave equal draws), e.g. of the 64-bit seeds that `tf.random.split` returns.
RNG_ALG = "philox"


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

    Reproducibility: the draw is a function of (prior, shape, seed, dtype) and of the compile
    mode only. It ignores global seeds (`tf.random.set_seed`, `keras.utils.set_random_seed`)
    and earlier draws, and is the same at every call, in a fresh tf.function or process and
    on every replica. Eagerly and in a plain `tf.function` (TensorFlow's kernels) the numbers
    are bitwise equal; XLA-compiled (`tf.function(jit_compile=True)`, Keras
    `compile(jit_compile=True)`) they are other numbers from the same distribution: XLA
    takes the same Philox bits but turns them into floats its own way (TF 2.21, CPU: its
    uniforms use the bits' high end, TF's kernel the low end; its normals are unrelated).
    Pinning `RNG_ALG` ("philox") does not make the modes agree.
    """
    check_prior(prior)
    seed = as_seed(seed)
    if prior == "hypercube":
        return tf.random.stateless_uniform(
            shape, seed, minval=-1.0, maxval=1.0, dtype=dtype, alg=RNG_ALG
        )
    samples = tf.random.stateless_normal(shape, seed, dtype=dtype, alg=RNG_ALG)
    return l2_normalize(samples) if prior == "hypersphere" else samples
