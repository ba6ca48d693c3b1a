"""The loss family of "Intriguing Properties of Contrastive Losses": NT-Xent, the generalized
loss L = L_alignment + lambda * L_distribution (LogSumExp or sliced Wasserstein), priors, the
serializable `ContrastiveLoss` wrapper and the registry of losses by name (`LOSSES`,
`build_loss`); and the feature-suppression remedies: IFM (implicit feature modification) and
the auxiliary objectives' terms (view reconstruction, rotation prediction) and NT-Xent with
extra negatives (the bit-matched oracle's)."""

from cl_properties.losses.auxiliary import (
    RECON_WEIGHTINGS,
    bit_matched_images,
    normalized_reconstruction_loss,
    reconstruction_channel_weights,
    rotate_quarters,
    rotation_cross_entropy,
)
from cl_properties.losses.generalized import (
    DISTRIBUTIONS,
    alignment_loss,
    generalized_contrastive_loss,
    logsumexp_distribution,
)
from cl_properties.losses.ifm import ifm, ifm_terms
from cl_properties.losses.keras_loss import METHODS, ContrastiveLoss
from cl_properties.losses.ntxent import (
    CANDIDATES,
    contrastive_accuracy,
    nt_xent,
    nt_xent_extra_negatives_terms,
    nt_xent_terms,
    pair_logits,
    positive_cross_entropy,
    positive_mask,
)
from cl_properties.losses.primitives import LossTerms
from cl_properties.losses.priors import PRIORS, default_normalize, sample_prior
from cl_properties.losses.registry import (
    LOSSES,
    build_loss,
    loss_arguments,
    loss_uses,
    register_loss,
)
from cl_properties.losses.swd import random_orthogonal, sliced_wasserstein_loss, swd_draws

__all__ = [
    "CANDIDATES",
    "DISTRIBUTIONS",
    "LOSSES",
    "METHODS",
    "PRIORS",
    "RECON_WEIGHTINGS",
    "ContrastiveLoss",
    "LossTerms",
    "alignment_loss",
    "bit_matched_images",
    "build_loss",
    "contrastive_accuracy",
    "default_normalize",
    "generalized_contrastive_loss",
    "ifm",
    "ifm_terms",
    "logsumexp_distribution",
    "loss_arguments",
    "loss_uses",
    "normalized_reconstruction_loss",
    "nt_xent",
    "nt_xent_extra_negatives_terms",
    "nt_xent_terms",
    "pair_logits",
    "positive_cross_entropy",
    "positive_mask",
    "random_orthogonal",
    "reconstruction_channel_weights",
    "register_loss",
    "rotate_quarters",
    "rotation_cross_entropy",
    "sample_prior",
    "sliced_wasserstein_loss",
    "swd_draws",
]
