"""Implicit feature modification (IFM): NT-Xent with adversarially perturbed logits.

Robinson, Sun, Yu, Batmanghelich, Jegelka and Sra, "Can contrastive learning avoid shortcut
solutions?", NeurIPS 2021 (reference code: github.com/joshr17/IFM, moco/adv_builder.py and
main_moco.py). A candidate remedy for feature suppression.
"""

from __future__ import annotations

from keras import ops

from cl_properties.losses.ntxent import pair_logits, positive_cross_entropy, positive_mask
from cl_properties.losses.primitives import (
    LossTerms,
    as_views,
    check_nonnegative,
    check_temperature,
    l2_normalize,
)


def ifm_terms(
    z1,
    z2,
    temperature: float = 0.1,
    epsilon: float = 0.1,
    alpha: float = 1.0,
    normalize: bool = True,
    candidates: str = "all",
) -> LossTerms:
    """The IFM loss (Robinson et al. 2021, Sec. 3) with an exact alignment + distribution
    decomposition.

    With s_ik the cosine similarities over the 2n embeddings h = [z1; z2] (dot products if
    not `normalize`), p(i) anchor i's positive and C(i) its candidates (`candidates`, as in
    `nt_xent_terms`), IFM moves every similarity by `epsilon` in the direction that raises
    the loss, the closed-form worst case of perturbing the positive and negative embeddings
    within an epsilon ball (for a unit-norm anchor):

        logits_ik     = s_ik / tau
        logits_adv_ik = (s_ik - eps [k = p(i)] + eps [k != p(i), k in C(i)]) / tau
        loss          = (CE(logits) + alpha * CE(logits_adv)) / (1 + alpha)

    with CE NT-Xent's per-anchor cross-entropy of the positive (`positive_cross_entropy`)
    averaged over the 2n anchors. eps = 0 is NT-Xent for any alpha; eps > 0 can only raise it.

    The terms keep NT-Xent's meaning and `loss == alignment + distribution` (lambda 1):

        alignment    = -(1/2n) sum_i s_i,p(i) / tau          (NT-Xent's, unperturbed)
        distribution = (1/2n) sum_i [ LSE_i(logits) + alpha LSE_i(logits + 2 eps / tau
                       [k != p(i)]) ] / (1 + alpha)

    with LSE_i the log-sum-exp over C(i): the clean and the adversarial log-partitions, the
    latter that of logits_adv + eps / tau, which takes in the positive's -eps / tau of
    CE(logits_adv) so that the alignment stays unperturbed.

    Differences from the reference code, which is MoCo's: there the anchors are the queries
    only, the positive is the momentum key and the negatives a queue of past keys, none
    receiving gradients; here every one of the 2n embeddings is an anchor against in-batch
    candidates, all differentiated (SimCLR's NT-Xent). The formula is the reference's: eps is
    applied to cosine similarities before dividing by tau, and the two cross-entropies are
    averaged with weights 1 and alpha (its `method="ifm"`; `"ifm_only"`, CE(logits_adv)
    alone, is alpha -> infinity, not offered here). Global batch under distribution and
    dtypes: as `nt_xent_terms`.
    """
    temperature = check_temperature(temperature)
    epsilon = check_nonnegative(epsilon, "epsilon")
    alpha = check_nonnegative(alpha, "alpha")
    z1, z2 = as_views(z1, z2)
    if normalize:
        z1, z2 = l2_normalize(z1), l2_normalize(z2)
    z1, z2, logits, positive = pair_logits(z1, z2, temperature, candidates)
    # logits_adv - eps / tau on every candidate of a row: the same softmax, so the same
    # cross-entropy, and only the positive (never masked) changes, so the masking stays exact.
    shift = 2 * epsilon / temperature
    lowered = ops.where(positive_mask(positive), logits - shift, logits)
    clean = positive_cross_entropy(logits, positive)
    adversarial = positive_cross_entropy(lowered, positive)
    loss = ops.mean(clean + alpha * adversarial) / (1 + alpha)
    # s_i,p(i) is the same for both anchors of a pair, so the mean over 2n anchors is over n.
    alignment = -ops.mean(ops.sum(z1 * z2, axis=-1)) / temperature
    log_partition = ops.logsumexp(logits, axis=1)
    adversarial_log_partition = ops.logsumexp(lowered, axis=1) + shift
    distribution = ops.mean(log_partition + alpha * adversarial_log_partition) / (1 + alpha)
    return LossTerms(loss, alignment, distribution)


def ifm(
    z1,
    z2,
    temperature: float = 0.1,
    epsilon: float = 0.1,
    alpha: float = 1.0,
    normalize: bool = True,
    candidates: str = "all",
):
    """The IFM loss, a scalar: (CE(logits) + alpha * CE(logits_adv)) / (1 + alpha), with
    logits_adv the cosine similarities moved by `epsilon` against the anchor (positive -eps,
    negatives +eps) before dividing by tau. See `ifm_terms`."""
    return ifm_terms(
        z1,
        z2,
        temperature=temperature,
        epsilon=epsilon,
        alpha=alpha,
        normalize=normalize,
        candidates=candidates,
    ).loss
