"""`ContrastiveLoss`: one serializable configuration object for every loss of the family."""

from __future__ import annotations

import keras
import tensorflow as tf

from cl_properties.losses.generalized import check_pairing, generalized_contrastive_loss
from cl_properties.losses.ifm import ifm_terms
from cl_properties.losses.ntxent import check_candidates, nt_xent_terms
from cl_properties.losses.primitives import (
    LossTerms,
    check_lambda,
    check_nonnegative,
    check_scale,
    check_temperature,
)

METHODS = ("nt_xent", "ifm", "decoupled", "swd")
# The methods built on NT-Xent's logits: on the hypersphere, with its candidates option.
_NT_XENT_METHODS = ("nt_xent", "ifm")
# Temperature when none is given: NT-Xent's usual 0.1 (IFM's too); 1.0 for the generalized
# losses (the decoupled NT-Xent's paper setting; SWD ignores it).
_DEFAULT_TEMPERATURE = {"nt_xent": 0.1, "ifm": 0.1, "decoupled": 1.0, "swd": 1.0}


@keras.saving.register_keras_serializable(package="cl_properties")
class ContrastiveLoss:
    """A configured member of the loss family, called as `loss(z1, z2, step=None) -> LossTerms`.

    - method="nt_xent": SimCLR's NT-Xent (`nt_xent_terms`): loss = NT-Xent, alignment =
      -mean cos(positive) / tau, distribution = mean log sum_{k != i} exp(s_ik / tau), so
      loss == alignment + distribution (lambda_weight is not used); `candidates` "all"
      (SimCLR's 2n - 1) or "cross_view" (the other view's n, the RandBit colab's).
    - method="ifm": implicit feature modification (`ifm_terms`), NT-Xent with the cosine
      similarities moved by `epsilon` (finite, >= 0) to raise the loss, averaged with the
      clean NT-Xent at weights 1 and `alpha` (finite, >= 0); terms and candidates as
      nt_xent's, loss == alignment + distribution. `epsilon` and `alpha` are IFM's only.
    - method="decoupled": `generalized_contrastive_loss(distribution="logsumexp")`.
    - method="swd": `generalized_contrastive_loss(distribution="swd", prior=prior)`; the
      projection and prior samples are drawn from the seed (seed, step), so they are fresh
      every training step and reproducible (step=None counts as step 0). The temperature is
      not used.

    `scale` (finite, > 0) multiplies the loss and both terms, so `loss == alignment + lambda *
    distribution` still holds. Our NT-Xent is the paper's mean over the 2n anchors; SimCLR's
    `add_contrastive_loss` (and keras-cv, tf-similarity) returns the sum of the two views'
    mean cross-entropies, twice ours: `scale=2` reproduces its scale, which SimCLR's optimizer
    settings were tuned with (the unadapted BN/bias steps and weight decay's weight relative
    to the gradient depend on it). The official generalized-loss colab is one mean over the
    2n anchors, with this knob as `loss_scaling` (default 1).

    `normalize=None` resolves to True for nt_xent and ifm and to the prior's default otherwise
    (True for the hypersphere); `temperature=None` to 0.1 for nt_xent and ifm and 1.0
    otherwise. Invalid combinations raise ValueError at construction. Distribution: the result
    is the global-batch value on every replica (see `nt_xent_terms`).
    """

    def __init__(
        self,
        method: str = "nt_xent",
        prior: str = "hypersphere",
        temperature: float | None = None,
        lambda_weight: float = 1.0,
        normalize: bool | None = None,
        seed: int = 0,
        scale: float = 1.0,
        candidates: str = "all",
        epsilon: float = 0.1,
        alpha: float = 1.0,
    ):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        if method in _NT_XENT_METHODS and prior != "hypersphere":
            raise ValueError(f"method={method!r} works on the hypersphere; got prior={prior!r}")
        distribution = "swd" if method == "swd" else "logsumexp"
        normalize = check_pairing(distribution, prior, normalize)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if check_candidates(candidates) != "all" and method not in _NT_XENT_METHODS:
            raise ValueError(f"candidates={candidates!r} is an NT-Xent option, not {method}'s")
        self.method = method
        self.prior = prior
        self.temperature = check_temperature(
            _DEFAULT_TEMPERATURE[method] if temperature is None else temperature
        )
        self.lambda_weight = check_lambda(lambda_weight)
        self.normalize = normalize
        self.seed = seed
        self.scale = check_scale(scale)
        self.candidates = candidates
        self.epsilon = check_nonnegative(epsilon, "epsilon")
        self.alpha = check_nonnegative(alpha, "alpha")

    def __call__(self, z1, z2, step=None) -> LossTerms:
        """The loss terms for views z1, z2 (n, d); `step` (int scalar or variable, e.g.
        `optimizer.iterations`) selects the SWD draw."""
        return self._terms(z1, z2, step).scaled(self.scale)

    def _terms(self, z1, z2, step) -> LossTerms:
        if self.method == "nt_xent":
            return nt_xent_terms(
                z1,
                z2,
                temperature=self.temperature,
                normalize=self.normalize,
                candidates=self.candidates,
            )
        if self.method == "ifm":
            return ifm_terms(
                z1,
                z2,
                temperature=self.temperature,
                epsilon=self.epsilon,
                alpha=self.alpha,
                normalize=self.normalize,
                candidates=self.candidates,
            )
        seed = self.seed
        if step is not None:
            seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return generalized_contrastive_loss(
            z1,
            z2,
            distribution="swd" if self.method == "swd" else "logsumexp",
            prior=self.prior,
            lambda_weight=self.lambda_weight,
            temperature=self.temperature,
            normalize=self.normalize,
            seed=seed,
        )

    def get_config(self) -> dict:
        return {
            "method": self.method,
            "prior": self.prior,
            "temperature": self.temperature,
            "lambda_weight": self.lambda_weight,
            "normalize": self.normalize,
            "seed": self.seed,
            "scale": self.scale,
            "candidates": self.candidates,
            "epsilon": self.epsilon,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config: dict) -> ContrastiveLoss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"ContrastiveLoss({args})"
