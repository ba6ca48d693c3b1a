"""Every bad input raises a ValueError that names the problem."""

import numpy as np
import pytest

from cl_properties.losses import (
    ContrastiveLoss,
    contrastive_accuracy,
    generalized_contrastive_loss,
    ifm,
    nt_xent,
    random_orthogonal,
    sample_prior,
    sliced_wasserstein_loss,
)

Z = np.ones((4, 3), np.float32)


def gcl(**kwargs):
    return generalized_contrastive_loss(Z, Z, **kwargs)


def swd(**kwargs):
    return generalized_contrastive_loss(Z, Z, distribution="swd", **kwargs)


CASES = [
    (lambda: nt_xent(np.ones(3), np.ones(3)), "rank 2"),
    (lambda: nt_xent(np.ones((2, 3, 4)), np.ones((2, 3, 4))), "rank 2"),
    (lambda: nt_xent(Z, np.ones((5, 3))), "same shape"),
    (lambda: nt_xent(Z, np.ones((4, 2))), "same shape"),
    (lambda: nt_xent(Z, Z, temperature=0.0), "temperature"),
    (lambda: nt_xent(Z, Z, temperature=-0.5), "temperature"),
    (lambda: nt_xent(Z, Z, temperature=float("nan")), "temperature"),
    (lambda: ifm(Z, Z, epsilon=-0.1), "epsilon must be finite and >= 0"),
    (lambda: ifm(Z, Z, epsilon=float("inf")), "epsilon must be finite and >= 0"),
    (lambda: ifm(Z, Z, alpha=-1), "alpha must be finite and >= 0"),
    (lambda: ifm(Z, Z, alpha=float("nan")), "alpha must be finite and >= 0"),
    (lambda: ifm(Z, Z, temperature=0), "temperature"),
    (lambda: ifm(Z, Z, candidates="same_view"), "candidates must be one of"),
    (lambda: contrastive_accuracy(Z, np.ones((4,))), "rank 2"),
    (lambda: generalized_contrastive_loss(np.ones(3), np.ones(3)), "rank 2"),
    (lambda: generalized_contrastive_loss(Z, np.ones((3, 3))), "same shape"),
    (lambda: gcl(temperature=0), "temperature"),
    (lambda: gcl(lambda_weight=-1), "lambda_weight"),
    (lambda: gcl(distribution="wasserstein"), "unknown distribution"),
    (lambda: swd(prior="ball", seed=0), "unknown prior"),
    (lambda: gcl(prior="normal"), "prior must be 'hypersphere'"),
    (lambda: swd(prior="normal", normalize=True, seed=0), "incompatible"),
    (lambda: swd(prior="hypercube", normalize=True, seed=0), "incompatible"),
    (lambda: swd(), "needs a seed"),
    (lambda: swd(seed=(1, 2, 3)), "seed must be"),
    (lambda: swd(seed=0.5), "seed must be"),
    (lambda: sliced_wasserstein_loss(Z, np.ones((5, 3)), np.eye(3)), "same shape"),
    (lambda: sliced_wasserstein_loss(Z, Z, np.eye(4)), "projection must have 3 rows"),
    (lambda: sliced_wasserstein_loss(Z, Z, np.ones(3)), "rank 2"),
    (lambda: sample_prior("uniform", (2, 3), 0), "unknown prior"),
    (lambda: random_orthogonal(0, 0), "dim must be a positive int"),
    (lambda: random_orthogonal(3, None), "seed is required"),
    (lambda: ContrastiveLoss("simclr"), "unknown method"),
    (lambda: ContrastiveLoss("nt_xent", prior="normal"), "hypersphere"),
    (lambda: ContrastiveLoss("decoupled", prior="hypercube"), "prior must be 'hypersphere'"),
    (lambda: ContrastiveLoss("swd", prior="normal", normalize=True), "incompatible"),
    (lambda: ContrastiveLoss("swd", prior="sphere"), "unknown prior"),
    (lambda: ContrastiveLoss(temperature=0), "temperature"),
    (lambda: ContrastiveLoss("decoupled", lambda_weight=-0.1), "lambda_weight"),
    (lambda: ContrastiveLoss(seed=1.5), "seed must be an int"),
    (lambda: ContrastiveLoss("ifm", epsilon=-0.5), "epsilon must be finite and >= 0"),
    (lambda: ContrastiveLoss("ifm", alpha=float("inf")), "alpha must be finite and >= 0"),
    (lambda: ContrastiveLoss("ifm", prior="normal"), "hypersphere"),
]


@pytest.mark.parametrize("call, message", CASES)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
