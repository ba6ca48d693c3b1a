"""SimCLR's NT-Xent loss, its alignment/distribution decomposition and contrastive accuracy."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cl_properties.distribute import cross_replica_concat
from cl_properties.losses.primitives import (
    LossTerms,
    as_matrix,
    as_views,
    check_temperature,
    l2_normalize,
)


def _mask(where, logits):
    """`logits` with the entries at `where` set to the dtype's lowest finite value.

    Finite rather than -inf: exp() of it is still 0, but a row with every entry masked
    (an anchor without negatives, n = 1) keeps a finite logsumexp, whose gradient with -inf
    would be 0/0 = NaN on both TensorFlow and JAX.
    """
    lowest = np.finfo(keras.backend.standardize_dtype(logits.dtype)).min
    return ops.where(where, ops.cast(lowest, logits.dtype), logits)


# The candidates of an anchor: "all" 2n - 1 other embeddings (SimCLR), or "cross_view", the
# n embeddings of the other view (the official RandBit colab's loss).
CANDIDATES = ("all", "cross_view")


def check_candidates(candidates: str) -> str:
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates must be one of {CANDIDATES}, got {candidates!r}")
    return candidates


def pair_logits(z1, z2, temperature: float, candidates: str = "all"):
    """The candidates of NT-Xent-style losses: (z1, z2) gathered from all replicas, the
    (2n, 2n) logits h h^T / tau of h = [z1; z2] with the non-candidates masked (self-pairs
    always; with candidates="cross_view" every pair within one view) and the index p(i) of
    each anchor's positive (i +- n). Pass normalized views for cosine similarities."""
    check_candidates(candidates)
    z1, z2 = cross_replica_concat((z1, z2))
    h = ops.concatenate([z1, z2], axis=0)
    index = ops.arange(ops.shape(h)[0])
    n = ops.shape(z1)[0]
    if candidates == "all":
        masked = ops.expand_dims(index, 1) == ops.expand_dims(index, 0)
    else:
        view = index // n
        masked = ops.expand_dims(view, 1) == ops.expand_dims(view, 0)
    logits = _mask(masked, ops.matmul(h, ops.transpose(h)) / temperature)
    positive = ops.concatenate([index[n:], index[:n]], axis=0)  # anchor i <-> i +- n
    return z1, z2, logits, positive


def positive_mask(positive, columns: int | None = None):
    """The (m, columns) boolean mask of each anchor's positive: True at (i, p(i)) for the int
    `positive` (m,) of `pair_logits`; `columns` defaults to m (candidates beyond the m
    embeddings, such as extra negatives, come after them)."""
    index = ops.arange(ops.shape(positive)[0] if columns is None else columns)
    return ops.expand_dims(positive, 1) == ops.expand_dims(index, 0)


def positive_cross_entropy(logits, positive):
    """NT-Xent's per-anchor loss (paper-notes section 1): the (sparse softmax) cross-entropy
    of each anchor's positive, computed as

        l_i = -log softmax(logits_i)[p(i)]
            = softplus( logsumexp_{k != i, p(i)} (logit_ik - logit_i,p(i)) )

    for (m, m) `logits` whose self-pairs are masked (`pair_logits`), or (m, m + e) with e
    extra candidates' columns after them, and int `positive` (m,) = p(i). The two forms are
    equal exactly (-log(e^a / (e^a + S)) = log(1 + S / e^a)); the second keeps relative
    precision when l_i is tiny (softplus(x) ~ e^x for x << 0), where -log softmax, or the
    paper's alignment + distribution split (Sec. 2), subtracts two large numbers. It is never
    negative.
    """
    is_positive = positive_mask(positive, ops.shape(logits)[1])
    positive_logit = ops.sum(ops.where(is_positive, logits, 0), axis=1, keepdims=True)
    # Self-pairs stay masked: lowest - logit rounds back to lowest (or to -inf).
    others = _mask(is_positive, logits - positive_logit)
    return ops.softplus(ops.logsumexp(others, axis=1))


def nt_xent_terms(
    z1, z2, temperature: float = 0.1, normalize: bool = True, candidates: str = "all"
) -> LossTerms:
    """NT-Xent with its exact decomposition into alignment and distribution terms.

    With s_ik = z~_i . z~_k over the 2n embeddings h = [z1; z2] (z~ = z / ||z|| when
    `normalize`), p(i) the other view of anchor i and C(i) its candidates (`candidates`
    "all": k != i, SimCLR's; "cross_view": the n embeddings of the other view, the official
    RandBit colab's CE(I, z1 z2^T / tau) + CE(I, z2 z1^T / tau), here halved to a mean over
    the 2n anchors like the rest of the family):

        loss         = (1/2n) sum_i -log( exp(s_i,p(i) / tau) / sum_{k in C(i)} exp(s_ik / tau) )
        alignment    = -(1/2n) sum_i s_i,p(i) / tau
        distribution =  (1/2n) sum_i log sum_{k in C(i)} exp(s_ik / tau)

    and loss = alignment + distribution, i.e. tau * NT-Xent = L_alignment + tau *
    L_distribution (paper Sec. 2, lambda = tau). The loss is computed per anchor by
    `positive_cross_entropy`, not as that sum: near saturation the two terms are large and
    nearly opposite, and their float32 sum loses all relative precision (it can even be
    negative). The equality holds up to the rounding of the two terms.

    Under a tf.distribute replica context with several replicas, z1 and z2 are gathered from
    all replicas (differentiably) and the terms are those of the global batch, identical on
    every replica: divide by `num_replicas_in_sync` before taking gradients (the optimizer
    sums replica gradients). Computes in float32 (float64 for float64 inputs).
    """
    temperature = check_temperature(temperature)
    z1, z2 = as_views(z1, z2)
    if normalize:
        z1, z2 = l2_normalize(z1), l2_normalize(z2)
    return _terms(*pair_logits(z1, z2, temperature, candidates), temperature)


def _terms(z1, z2, logits, positive, temperature: float) -> LossTerms:
    """NT-Xent's terms from `pair_logits`'s (z1, z2, logits, positive), the logits possibly
    extended by extra candidates' columns."""
    loss = ops.mean(positive_cross_entropy(logits, positive))
    # s_i,p(i) is the same for both anchors of a pair, so the mean over 2n anchors is over n.
    alignment = -ops.mean(ops.sum(z1 * z2, axis=-1)) / temperature
    distribution = ops.mean(ops.logsumexp(logits, axis=1))
    return LossTerms(loss, alignment, distribution)


def nt_xent_extra_negatives_terms(
    z1,
    z2,
    extra,
    extra_mask=None,
    temperature: float = 0.1,
    normalize: bool = True,
    candidates: str = "all",
) -> LossTerms:
    """NT-Xent (`nt_xent_terms`) with m extra negatives e_j shared by every anchor, except
    where `extra_mask` excludes them.

    With h = [z1; z2] (2n rows, anchor i showing image i mod n), C(i) the NT-Xent candidates
    of anchor i and E(i) = {j : not extra_mask[i mod n, j]} its extra negatives:

        l_i = -log( exp(s_i,p(i) / tau)
                    / (sum_{k in C(i)} exp(s_ik / tau) + sum_{j in E(i)} exp(s(h_i, e_j) / tau)) )

        loss = (1/2n) sum_i l_i,  alignment = NT-Xent's,
        distribution = (1/2n) sum_i log(the denominator above)

    so loss == alignment + distribution. `extra` (m, d) are embeddings like z1's (normalized
    as they are when `normalize`); `extra_mask` (n, m) boolean, True where image i's two
    anchors must not see e_j (None: every anchor sees every e_j). With every extra negative
    masked, or m = 0, this is NT-Xent exactly. The bit-matched oracle
    (`cl_properties.models.BitMatchedContrastiveModel`) passes the embeddings of the anchors'
    bits on other images' pixels, masking each anchor's own pixels.

    Distribution: `extra` is gathered from all replicas like z1 and z2 (replica order), so
    n, m and `extra_mask` are the global batch's; the result is the global-batch value on
    every replica (see `nt_xent_terms`).
    """
    temperature = check_temperature(temperature)
    z1, z2 = as_views(z1, z2)
    extra = ops.cast(as_matrix(extra, "extra"), z1.dtype)
    if None not in (extra.shape[1], z1.shape[1]) and extra.shape[1] != z1.shape[1]:
        raise ValueError(f"extra must have z1's {z1.shape[1]} columns, got {tuple(extra.shape)}")
    if normalize:
        z1, z2, extra = l2_normalize(z1), l2_normalize(z2), l2_normalize(extra)
    z1, z2, logits, positive = pair_logits(z1, z2, temperature, candidates)
    extra = cross_replica_concat(extra)
    extra_logits = ops.matmul(ops.concatenate([z1, z2], axis=0), ops.transpose(extra))
    extra_logits = extra_logits / temperature
    if extra_mask is not None:
        # Both anchors of image i (rows i and i + n) share row i of the mask.
        extra_mask = ops.convert_to_tensor(extra_mask, "bool")
        extra_logits = _mask(ops.concatenate([extra_mask, extra_mask], axis=0), extra_logits)
    logits = ops.concatenate([logits, extra_logits], axis=1)
    return _terms(z1, z2, logits, positive, temperature)


def nt_xent(z1, z2, temperature: float = 0.1, normalize: bool = True, candidates: str = "all"):
    """SimCLR's NT-Xent loss (paper-notes section 1), a scalar.

    Every one of the 2n embeddings h = [z1; z2] is an anchor; its candidates are the other
    2n - 1 embeddings, its positive p(i) (the other view) and 2n - 2 negatives:

        l_i = -log( exp(s_i,p(i) / tau) / sum_{k != i} exp(s_ik / tau) ),  L = mean_i l_i

    with s_ik the cosine similarity (dot product if not `normalize`). SimCLR's
    `add_contrastive_loss` returns 2L. `candidates="cross_view"` keeps the n candidates of
    the other view only (see `nt_xent_terms`). Global batch under distribution: see
    `nt_xent_terms`.
    """
    return nt_xent_terms(
        z1, z2, temperature=temperature, normalize=normalize, candidates=candidates
    ).loss


def contrastive_accuracy(z1, z2):
    """Fraction of the 2n anchors whose positive has the highest cosine similarity among
    their 2n - 1 candidates (global batch under distribution). A float32 scalar, no gradient."""
    z1, z2 = as_views(ops.stop_gradient(z1), ops.stop_gradient(z2))
    _, _, logits, positive = pair_logits(l2_normalize(z1), l2_normalize(z2), 1.0)
    hits = ops.cast(ops.argmax(logits, axis=1), "int32") == ops.cast(positive, "int32")
    return ops.mean(ops.cast(hits, "float32"))
