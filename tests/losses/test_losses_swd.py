"""The sliced Wasserstein term, its random projection and the priors."""
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    PRIORS,
    ContrastiveLoss,
    random_orthogonal,
    sample_prior,
    sliced_wasserstein_loss,
)


def reference_swd(states, prior_samples, projection):
    """mean((sort_cols(P W) - sort_cols(H W))^2), sorting each column over the batch."""
    return np.mean(
        (np.sort(prior_samples @ projection, axis=0) - np.sort(states @ projection, axis=0)) ** 2
    )


@pytest.fixture
def inputs():
    rng = np.random.default_rng(7)
    return rng.normal(size=(12, 5)), rng.uniform(-1, 1, size=(12, 5)), rng.normal(size=(5, 3))


def test_matches_reference(inputs):
    got = sliced_wasserstein_loss(*inputs)
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), reference_swd(*inputs), rtol=1e-12)


def test_gradient_reaches_states_only(inputs):
    states, samples, projection = (tf.constant(x) for x in inputs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([states, samples, projection])
        loss = sliced_wasserstein_loss(states, samples, projection)
    assert tape.gradient(loss, samples) is None
    assert tape.gradient(loss, projection) is None
    # d/dH mean((sort(PW) - sort(HW))^2): each state row gets its matched quantiles' residual.
    hw, pw = inputs[0] @ inputs[2], inputs[1] @ inputs[2]
    expected = np.zeros_like(hw)
    for j in range(hw.shape[1]):
        order = np.argsort(hw[:, j])
        expected[order, j] = -2 * (np.sort(pw[:, j]) - hw[order, j]) / hw.size
    np.testing.assert_allclose(tape.gradient(loss, states).numpy(), expected @ inputs[2].T, rtol=1e-10)


def test_invariant_to_permuting_the_batch(inputs):
    states, samples, projection = inputs
    perm = np.random.default_rng(0).permutation(len(states))
    np.testing.assert_allclose(
        sliced_wasserstein_loss(states[perm], samples, projection).numpy(),
        sliced_wasserstein_loss(states, samples, projection).numpy(),
        rtol=1e-13,
    )
    np.testing.assert_allclose(
        sliced_wasserstein_loss(states, samples[perm[::-1]], projection).numpy(),
        sliced_wasserstein_loss(states, samples, projection).numpy(),
        rtol=1e-13,
    )


@pytest.mark.parametrize("prior", PRIORS)
def test_near_zero_for_prior_samples_large_for_collapse(prior):
    projection = random_orthogonal(8, 3)
    samples = sample_prior(prior, (4096, 8), seed=2)
    states = sample_prior(prior, (4096, 8), seed=1)
    collapsed = tf.tile(states[:1], [4096, 1])
    matched = sliced_wasserstein_loss(states, samples, projection).numpy()
    mismatched = sliced_wasserstein_loss(collapsed, samples, projection).numpy()
    assert matched < 0.01 * mismatched
    # A collapsed batch costs at least the projected prior's variance per direction.
    assert mismatched > 0.5 * np.var(samples.numpy() @ projection.numpy(), axis=0).mean()


@pytest.mark.parametrize("states", ["random", "collapsed"])
def test_gradients_finite(states):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(16, 4)).astype(np.float32) if states == "random" else np.ones((16, 4), np.float32)
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = sliced_wasserstein_loss(z, sample_prior("normal", (16, 4), 0), random_orthogonal(4, 0))
    assert np.isfinite(loss.numpy()) and np.isfinite(tape.gradient(loss, z).numpy()).all()


@pytest.mark.parametrize("dim", [1, 7, 64])
def test_random_orthogonal_is_sign_corrected_qr(dim):
    w = random_orthogonal(dim, (5, 9)).numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(dim), atol=1e-5)
    np.testing.assert_allclose(w.T @ w, np.eye(dim), atol=1e-5)
    # W is the Q of G = Q R with diag(R) > 0 for the documented Gaussian G.
    gaussian = tf.random.stateless_normal((dim, dim), tf.constant([5, 9], tf.int64)).numpy()
    r = w.T @ gaussian
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-4)
    assert (np.diag(r) > 0).all()


def test_random_orthogonal_depends_on_seed_only():
    a = random_orthogonal(16, (1, 2)).numpy()
    np.testing.assert_array_equal(a, random_orthogonal(16, (1, 2)).numpy())
    assert np.abs(a - random_orthogonal(16, (1, 3)).numpy()).max() > 0.1


def test_fresh_projection_each_step_inside_tf_function():
    """The (seed, step) draw changes with the step in ONE traced function, and repeats."""
    loss = ContrastiveLoss("swd", prior="normal", seed=3)
    z1, z2 = (tf.constant(np.random.default_rng(i).normal(size=(8, 6)), tf.float32) for i in (0, 1))
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def distribution_term():
        return loss(z1, z2, step=step).distribution

    def run():
        values = []
        for s in range(3):
            step.assign(s)
            values.append(distribution_term().numpy())
        return values

    first = run()
    assert len(set(first)) == 3
    assert run() == first
    assert distribution_term.experimental_get_tracing_count() == 1
    other_seed = ContrastiveLoss("swd", prior="normal", seed=4)(z1, z2, step=2).distribution.numpy()
    assert other_seed != first[2]


def test_sample_prior_supports():
    sphere = sample_prior("hypersphere", (2000, 3), 0).numpy()
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(sphere.mean(axis=0), 0, atol=0.05)
    cube = sample_prior("hypercube", (2000, 3), 0).numpy()
    assert cube.min() >= -1 and cube.max() <= 1
    np.testing.assert_allclose(cube.var(axis=0), 1 / 3, rtol=0.1)
    normal = sample_prior("normal", (2000, 3), 0).numpy()
    np.testing.assert_allclose(normal.std(axis=0), 1, rtol=0.1)
    np.testing.assert_array_equal(normal, sample_prior("normal", (2000, 3), 0).numpy())
    assert sample_prior("normal", (2, 3), 0, dtype="float64").dtype == tf.float64
