import numpy as np
import pytest
import tensorflow as tf
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from cl_properties.evaluation import cluster_maps, kmeans, kmeans_batch
from cl_properties.evaluation.kmeans import _lloyd_step


def test_well_separated_blobs_match_sklearn_inertia():
    x, _ = make_blobs(n_samples=600, centers=6, n_features=8, cluster_std=0.5, random_state=0)
    x = x.astype(np.float32)
    ours = float(kmeans(x, 6, seed=0, normalize=False).inertia)
    reference = KMeans(6, n_init=1, random_state=0).fit(x).inertia_
    assert ours / reference == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("normalize", [False, True])
def test_random_points_inertia_within_a_few_percent_of_sklearn(normalize):
    rng = np.random.default_rng(0)
    ratios = []
    for seed in range(4):
        x = rng.normal(size=(400, 16)).astype(np.float32)
        data = x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x
        ours = float(kmeans(x, 8, seed=seed, normalize=normalize).inertia)
        reference = np.mean(
            [KMeans(8, n_init=1, random_state=s).fit(data).inertia_ for s in range(3)]
        )
        ratios.append(ours / reference)
    assert np.mean(ratios) < 1.03 and min(ratios) > 0.9


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_outputs_are_consistent_and_deterministic(init):
    x = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    first, second = kmeans(x, 4, seed=3, init=init), kmeans(x, 4, seed=3, init=init)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    normalized = x / np.linalg.norm(x, axis=1, keepdims=True)
    distances = ((normalized[:, None, :] - first.centroids.numpy()[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(first.assignments, distances.argmin(1))
    assert first.assignments.dtype == tf.int32
    assert float(first.inertia) == pytest.approx(distances.min(1).sum(), rel=1e-5)


def test_works_inside_tf_function_with_tensor_seed():
    x = np.random.default_rng(2).normal(size=(3, 60, 4)).astype(np.float32)

    @tf.function
    def run(points, seed):
        return kmeans_batch(points, 3, seed=seed, iterations=10)

    graph = run(tf.constant(x), tf.constant(5))
    eager = kmeans_batch(x, 3, seed=5, iterations=10)
    np.testing.assert_array_equal(graph.assignments, eager.assignments)
    np.testing.assert_allclose(graph.centroids, eager.centroids, atol=1e-6)


def test_batched_equals_per_image_calls():
    x = np.random.default_rng(3).normal(size=(4, 50, 6)).astype(np.float32)
    batched = kmeans_batch(x, 5, seed=9)
    for b in range(4):
        single = kmeans(x[b], 5, seed=9)
        np.testing.assert_array_equal(single.assignments, batched.assignments[b])
        np.testing.assert_allclose(single.centroids, batched.centroids[b], atol=1e-6)
        np.testing.assert_allclose(single.inertia, batched.inertia[b], rtol=1e-5)


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_more_clusters_than_distinct_points_gives_no_nan(init):
    x = np.repeat(np.array([[1.0, 0.0], [0.0, 2.0]], np.float32), 5, axis=0)
    for points, k in [(x, 4), (x[:3], 7)]:
        result = kmeans(points, k, seed=0, init=init, normalize=False)
        assert np.isfinite(result.centroids.numpy()).all()
        assert float(result.inertia) == 0.0
        np.testing.assert_array_equal(result.centroids.numpy()[result.assignments.numpy()], points)


def test_empty_cluster_is_reseeded_at_the_farthest_point():
    x = tf.constant([[[0.0, 0.0], [0.0, 1.0], [10.0, 0.0]]])
    centroids = tf.constant([[[0.0, 0.5], [100.0, 100.0]]])
    updated = _lloyd_step(x, centroids).numpy()[0]
    np.testing.assert_allclose(updated, [[10.0 / 3, 1.0 / 3], [10.0, 0.0]], rtol=1e-6)


def test_cluster_maps_upsample_assignments_by_nearest_neighbour():
    features = np.random.default_rng(4).normal(size=(2, 7, 7, 3)).astype(np.float32)
    maps = cluster_maps(features, 3, image_size=28, seed=1).numpy()
    assert maps.shape == (2, 28, 28) and maps.dtype == np.int32
    assignments = (
        kmeans_batch(features.reshape(2, 49, 3), 3, seed=1).assignments.numpy().reshape(2, 7, 7)
    )
    np.testing.assert_array_equal(maps, np.repeat(np.repeat(assignments, 4, axis=1), 4, axis=2))
    assert cluster_maps(features, 3, image_size=(10, 20), seed=1).shape == (2, 10, 20)


def test_bad_arguments():
    x = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="k must be"):
        kmeans(x, 0, seed=0)
    with pytest.raises(ValueError, match="unknown init"):
        kmeans(x, 2, seed=0, init="forgy")
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        kmeans(x[None], 2, seed=0)
    with pytest.raises(ValueError, match=r"\[B, N, D\]"):
        kmeans_batch(x, 2, seed=0)
    with pytest.raises(ValueError, match="iterations"):
        kmeans(x, 2, seed=0, iterations=-1)
    with pytest.raises(ValueError, match="feature_map"):
        cluster_maps(x, 2, image_size=8, seed=0)
