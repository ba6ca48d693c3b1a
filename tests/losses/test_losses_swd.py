"""The sliced Wasserstein term, its random projection and the priors, and the
reproducibility of their stateless draws in each compile mode."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    PRIORS,
    ContrastiveLoss,
    generalized_contrastive_loss,
    random_orthogonal,
    sample_prior,
    sliced_wasserstein_loss,
    swd_draws,
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
    np.testing.assert_allclose(
        tape.gradient(loss, states).numpy(), expected @ inputs[2].T, rtol=1e-10
    )


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
    z = (
        rng.normal(size=(16, 4)).astype(np.float32)
        if states == "random"
        else np.ones((16, 4), np.float32)
    )
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = sliced_wasserstein_loss(
            z, sample_prior("normal", (16, 4), 0), random_orthogonal(4, 0)
        )
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


COMPILE_MODES = {
    "eager": lambda fn: fn,
    "function": tf.function,
    "jit_compile": lambda fn: tf.function(fn, jit_compile=True),
}
_RNG = np.random.default_rng(11)
_Z1, _Z2 = (_RNG.normal(size=(8, 6)).astype(np.float32) for _ in range(2))


def all_draws(seed):
    """The stateless draws of the losses (every prior, W) for an int64 seed (seed, step)."""
    projection, hypercube = swd_draws("hypercube", 16, 6, seed)
    swd = generalized_contrastive_loss(_Z1, _Z2, distribution="swd", prior="normal", seed=seed)
    return {
        "orthogonal": projection,
        "hypercube": hypercube,
        "hypersphere": sample_prior("hypersphere", (16, 6), seed),
        "swd_loss": swd.loss,
    }


def draws_in(mode, seed, step, fn=None):
    """`all_draws((seed, step))` as numpy arrays, computed in a compile mode (a fresh
    function unless `fn` is given)."""
    fn = fn or COMPILE_MODES[mode](all_draws)
    return {key: value.numpy() for key, value in fn(tf.constant([seed, step], tf.int64)).items()}


def assert_all_equal(got, want):
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def assert_all_differ(got, want):
    for key in want:
        assert not np.array_equal(got[key], want[key]), key


@pytest.mark.parametrize("mode", COMPILE_MODES)
def test_draws_depend_on_seed_and_step_only(mode):
    """In one compile mode: the same (seed, step) gives the same draws in repeated calls, in
    a fresh function and after other (stateful) draws; other steps or seeds give others."""
    fn = COMPILE_MODES[mode](all_draws)
    first = draws_in(mode, 3, 5, fn)
    assert_all_differ(draws_in(mode, 3, 6, fn), first)
    tf.random.normal((4,))
    tf.random.Generator.from_seed(1).normal((4,))
    assert_all_equal(draws_in(mode, 3, 5, fn), first)
    fresh = COMPILE_MODES[mode](all_draws)
    assert_all_equal(draws_in(mode, 3, 5, fresh), first)
    assert_all_differ(draws_in(mode, 4, 5, fresh), first)
    if mode != "eager":
        assert fn.experimental_get_tracing_count() == 1


def test_eager_and_tf_function_draw_the_same_numbers():
    assert_all_equal(draws_in("function", 3, 5), draws_in("eager", 3, 5))


def test_xla_draws_other_numbers_from_the_same_distributions():
    """Documented in `sample_prior`: XLA turns the same Philox bits into other floats. If this
    fails, XLA now matches TensorFlow's kernels: update the docstrings."""
    xla, eager = draws_in("jit_compile", 3, 5), draws_in("eager", 3, 5)
    assert_all_differ(xla, eager)
    w = xla["orthogonal"]
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(xla["hypersphere"], axis=1), 1, rtol=1e-6)
    assert np.abs(xla["hypercube"]).max() <= 1
    draw = tf.function(lambda seed: {"n": sample_prior("normal", (4096,), seed)}, jit_compile=True)
    normal = draws_in("jit_compile", 0, 0, draw)["n"]
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05


def test_xla_draws_use_the_whole_int64_seed():
    """With TF's default algorithm XLA kept only the low 32 bits of each seed word."""
    draw = tf.function(lambda seed: {"n": sample_prior("normal", (8,), seed)}, jit_compile=True)
    high_bit_apart = draws_in("jit_compile", 1 + 2**32, 5, draw)
    assert_all_differ(draws_in("jit_compile", 1, 5, draw), high_bit_apart)


_FRESH_PROCESS = """
import importlib.util, json, sys
import keras
import tensorflow as tf
spec = importlib.util.spec_from_file_location("swd_tests", sys.argv[1])
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
tf.random.set_seed(99)
keras.utils.set_random_seed(1)
tf.random.uniform((7,))
print(json.dumps({mode: {key: value.tolist() for key, value in tests.draws_in(mode, 3, 5).items()}
                  for mode in tests.COMPILE_MODES}))
"""


def test_fresh_process_with_a_global_seed_draws_the_same_numbers():
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, os.path.abspath(__file__)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    for mode in COMPILE_MODES:
        here = draws_in(mode, 3, 5)
        got = {key: np.asarray(value, here[key].dtype) for key, value in fresh[mode].items()}
        assert_all_equal(got, here)
