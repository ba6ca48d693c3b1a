"""k-means in TensorFlow (graph- and accelerator-friendly), batched over images."""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

_INITS = ("kmeans++", "random")


class KMeansResult(NamedTuple):
    """k-means output; a leading batch dimension B is present for `kmeans_batch`.

    centroids: float [(B,) k, D]; assignments: int32 [(B,) N], the index of the nearest
    centroid of each point; inertia: float [(B,)], sum over points of the squared distance
    to the assigned centroid.
    """

    centroids: tf.Tensor
    assignments: tf.Tensor
    inertia: tf.Tensor


def _squared_distances(x: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """||x_n - c_j||^2 for x [B, N, D], c [B, K, D] -> [B, N, K], clipped at 0 (round-off)."""
    xx = tf.reduce_sum(tf.square(x), axis=-1)[:, :, None]
    cc = tf.reduce_sum(tf.square(c), axis=-1)[:, None, :]
    return tf.maximum(xx - 2.0 * tf.matmul(x, c, transpose_b=True) + cc, 0.0)


def _seed_pair(seed: tf.Tensor, salt: int) -> tf.Tensor:
    return tf.stack([seed, tf.constant(salt, tf.int64)])


def _init_random(x: tf.Tensor, k: int, seed: tf.Tensor) -> tf.Tensor:
    """k distinct points (cycled when k > N) at indices drawn uniformly, shared by the batch."""
    n = tf.shape(x)[1]
    permutation = tf.argsort(
        tf.random.stateless_uniform([n], seed=_seed_pair(seed, 1)), stable=True
    )
    indices = tf.gather(permutation, tf.range(k) % n)
    return tf.gather(x, indices, axis=1)


def _init_kmeans_plus_plus(x: tf.Tensor, k: int, seed: tf.Tensor) -> tf.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's variant).

    The first centre is a uniform random point; each next one is the best, by resulting
    potential sum_n min_j ||x_n - c_j||^2, of 2 + floor(log k) candidates drawn with
    probability proportional to the squared distance to the nearest chosen centre. The
    uniform numbers are shared by all images of the batch, so that image b of a batch gets
    the same centres as a call on image b alone.
    """
    n = tf.shape(x)[1]
    trials = 2 + int(math.log(k))
    uniforms = tf.random.stateless_uniform([k, trials], seed=_seed_pair(seed, 0), dtype=x.dtype)
    first = tf.minimum(tf.cast(uniforms[0, 0] * tf.cast(n, x.dtype), tf.int32), n - 1)
    first_centre = tf.gather(x, first, axis=1)  # [B, D]
    closest = _squared_distances(x, first_centre[:, None, :])[:, :, 0]  # [B, N]
    centroids = tf.tile(first_centre[:, None, :], [1, k, 1])

    def add_centre(j, centroids, closest):
        cumulative = tf.cumsum(closest, axis=1)
        targets = uniforms[j][None, :] * cumulative[:, -1:]  # [B, trials]
        candidates = tf.minimum(tf.searchsorted(cumulative, targets, side="right"), n - 1)
        candidate_points = tf.gather(x, candidates, batch_dims=1)  # [B, trials, D]
        new_closest = tf.minimum(closest[:, :, None], _squared_distances(x, candidate_points))
        best = tf.argmin(tf.reduce_sum(new_closest, axis=1), axis=1, output_type=tf.int32)  # [B]
        centre = tf.gather(candidate_points, best, batch_dims=1)  # [B, D]
        slot = tf.one_hot(j, k, dtype=x.dtype)[None, :, None]
        centroids = centroids * (1.0 - slot) + centre[:, None, :] * slot
        closest = tf.gather(tf.transpose(new_closest, [0, 2, 1]), best, batch_dims=1)
        return j + 1, centroids, closest

    _, centroids, _ = tf.while_loop(
        lambda j, *_: j < k,
        add_centre,
        [tf.constant(1), centroids, closest],
        shape_invariants=[tf.TensorShape([]), centroids.shape, tf.TensorShape([None, None])],
    )
    return centroids


def _lloyd_step(x: tf.Tensor, centroids: tf.Tensor) -> tf.Tensor:
    """One Lloyd update; an empty cluster is re-seeded at a point far from its centroid.

    Points are assigned to their nearest centroid and each centroid moves to the mean of its
    points. As in scikit-learn, the i-th empty cluster (in index order) moves instead to the
    i-th farthest point from its assigned centroid, so no centroid is ever NaN.
    """
    k = centroids.shape[1]
    distances = _squared_distances(x, centroids)
    onehot = tf.one_hot(tf.argmin(distances, axis=-1), k, dtype=x.dtype)  # [B, N, K]
    counts = tf.reduce_sum(onehot, axis=1)  # [B, K]
    # A one-hot matmul rather than a segment sum: deterministic on accelerators.
    means = tf.einsum("bnk,bnd->bkd", onehot, x) / tf.maximum(counts, 1.0)[:, :, None]
    empty = counts == 0
    num_far = tf.minimum(k, tf.shape(x)[1])
    farthest = tf.math.top_k(tf.reduce_min(distances, axis=-1), k=num_far).indices  # [B, num_far]
    rank = tf.clip_by_value(tf.cumsum(tf.cast(empty, tf.int32), axis=1) - 1, 0, num_far - 1)
    reseeded = tf.gather(tf.gather(x, farthest, batch_dims=1), rank, batch_dims=1)  # [B, K, D]
    return tf.where(empty[:, :, None], reseeded, means)


@tf.function(reduce_retracing=True)
def _kmeans_batch(
    x: tf.Tensor, seed: tf.Tensor, k: int, iterations: int, init: str, normalize: bool
) -> KMeansResult:
    if normalize:
        x = tf.math.l2_normalize(x, axis=-1)
    centroids = (
        _init_kmeans_plus_plus(x, k, seed) if init == "kmeans++" else _init_random(x, k, seed)
    )
    _, centroids = tf.while_loop(
        lambda i, _: i < iterations,
        lambda i, c: (i + 1, _lloyd_step(x, c)),
        [tf.constant(0), centroids],
    )
    assignments = tf.argmin(_squared_distances(x, centroids), axis=-1, output_type=tf.int32)
    # Inertia from explicit differences: the expanded form in _squared_distances loses precision.
    residual = x - tf.gather(centroids, assignments, batch_dims=1)
    return KMeansResult(centroids, assignments, tf.reduce_sum(tf.square(residual), axis=[1, 2]))


def kmeans_batch(
    points,
    k: int,
    *,
    iterations: int = 20,
    seed: int | tf.Tensor,
    init: str = "kmeans++",
    normalize: bool = True,
) -> KMeansResult:
    """Clusters each of B point sets [N, D] separately, vectorized over the batch.

    Minimizes the inertia sum_n ||x_n - c_{a(n)}||^2 per point set with `iterations` Lloyd
    steps (a fixed budget, no early stop, so it compiles to a static graph) after a seeded
    initialization: greedy k-means++ (`init="kmeans++"`) or k distinct random points
    (`init="random"`). Empty clusters are re-seeded at the points farthest from their
    centroids. The random numbers come from stateless ops keyed by `seed` and are shared
    by all point sets, so result[b] equals `kmeans(points[b], ...)` with the same seed.
    Works eagerly and inside `tf.function`; k may exceed the number of (distinct) points.

    Args:
      points: float [B, N, D] (float64 stays float64, anything else becomes float32).
      k: number of clusters, >= 1.
      seed: int or scalar integer tensor.
      normalize: l2-normalize the points first (k-means on the unit sphere's chords).
    """
    x = tf.convert_to_tensor(points)
    if x.dtype != tf.float64:
        x = tf.cast(x, tf.float32)
    if x.shape.rank != 3:
        raise ValueError(f"points must have shape [B, N, D], got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError("points must contain at least one point per set (N >= 1)")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if init not in _INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {_INITS}")
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank != 0:
        raise ValueError(f"seed must be a scalar, got shape {seed.shape}")
    return _kmeans_batch(x, seed, k, int(iterations), init, bool(normalize))


def kmeans(
    points,
    k: int,
    *,
    iterations: int = 20,
    seed: int | tf.Tensor,
    init: str = "kmeans++",
    normalize: bool = True,
) -> KMeansResult:
    """k-means of one point set [N, D]: `kmeans_batch` on a batch of one (see there)."""
    x = tf.convert_to_tensor(points)
    if x.shape.rank != 2:
        raise ValueError(f"points must have shape [N, D], got {x.shape}")
    result = kmeans_batch(
        x[None], k, iterations=iterations, seed=seed, init=init, normalize=normalize
    )
    return KMeansResult(*(field[0] for field in result))


def cluster_maps(
    feature_map,
    k: int,
    *,
    image_size: int | tuple[int, int],
    seed: int | tf.Tensor,
    iterations: int = 20,
    init: str = "kmeans++",
    normalize: bool = True,
) -> tf.Tensor:
    """Per-image k-means segmentation of a feature map, upsampled to the image size.

    The h*w feature vectors of each image are clustered separately (`kmeans_batch`) and the
    cluster ids are upsampled by nearest neighbour: pixel (i, j) of an H x W image takes the
    id of feature cell (floor((i + 1/2) h / H), floor((j + 1/2) w / W)), its containing cell.

    Args:
      feature_map: float [B, h, w, C].
      image_size: H (square) or (H, W).

    Returns:
      int32 [B, H, W] cluster ids in [0, k).
    """
    features = tf.convert_to_tensor(feature_map)
    if features.shape.rank != 4:
        raise ValueError(f"feature_map must have shape [B, h, w, C], got {features.shape}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    shape = tf.shape(features)
    batch, h, w = shape[0], shape[1], shape[2]
    flat = tf.reshape(features, [batch, h * w, features.shape[-1]])
    labels = kmeans_batch(
        flat, k, iterations=iterations, seed=seed, init=init, normalize=normalize
    ).assignments
    labels = tf.reshape(labels, [batch, h, w])

    def source_index(out_size: int, in_size: tf.Tensor) -> tf.Tensor:
        centres = (
            (tf.range(out_size, dtype=tf.float64) + 0.5) * tf.cast(in_size, tf.float64) / out_size
        )
        return tf.cast(tf.floor(centres), tf.int32)

    labels = tf.gather(labels, source_index(height, h), axis=1)
    return tf.gather(labels, source_index(width, w), axis=2)
