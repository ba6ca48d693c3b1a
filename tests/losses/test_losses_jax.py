"""The loss math is written with keras.ops, so it runs on the JAX backend too: the same
inputs give the same values as on TensorFlow. JAX is a test extra; the backend is chosen per
process, so the JAX side runs in a subprocess with KERAS_BACKEND=jax."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.losses import (
    generalized_contrastive_loss,
    ifm,
    nt_xent,
    sliced_wasserstein_loss,
)

pytest.importorskip("jax")

_JAX_SIDE = """
import json, sys
import jax
import numpy as np
import keras
from cl_properties.losses import generalized_contrastive_loss, ifm, nt_xent, sliced_wasserstein_loss
assert keras.backend.backend() == "jax", keras.backend.backend()
z1, z2, prior, projection, s1, s2 = (np.asarray(a, np.float32) for a in json.load(sys.stdin))
terms = generalized_contrastive_loss(
    z1, z2, distribution="logsumexp", temperature=0.5, lambda_weight=0.3
)
nt_xent_grads = jax.grad(lambda a, b: nt_xent(a, b, temperature=0.2), argnums=(0, 1))
print(json.dumps({
    "nt_xent": float(nt_xent(z1, z2, temperature=0.2)),
    "nt_xent_grads": [np.asarray(g).tolist() for g in nt_xent_grads(z1, z2)],
    "nt_xent_saturated": float(nt_xent(s1, s2, temperature=0.05)),
    "nt_xent_single_pair_grads": [np.asarray(g).tolist() for g in nt_xent_grads(z1[:1], z2[:1])],
    "ifm": float(ifm(z1, z2, temperature=0.2, epsilon=0.1, alpha=0.5)),
    "ifm_single_pair_grads": [
        np.asarray(g).tolist()
        for g in jax.grad(lambda a, b: ifm(a, b, epsilon=0.3), argnums=(0, 1))(z1[:1], z2[:1])
    ],
    "decoupled": [float(terms.loss), float(terms.alignment), float(terms.distribution)],
    "swd": float(sliced_wasserstein_loss(z1, prior, projection)),
}))
"""


def test_losses_on_jax_equal_the_tensorflow_values():
    rng = np.random.default_rng(0)
    z1, z2, prior = (rng.normal(size=(16, 8)).astype(np.float32) for _ in range(3))
    projection = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    # Orthogonal pairs at tau 0.05: NT-Xent ~ 6 exp(-20), where only the per-anchor form is precise.
    s1 = np.eye(8, dtype=np.float32)[:4]
    s2 = s1 + 0.01 * np.eye(8, dtype=np.float32)[4:]
    result = subprocess.run(
        [sys.executable, "-c", _JAX_SIDE],
        input=json.dumps([a.tolist() for a in (z1, z2, prior, projection, s1, s2)]),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = json.loads(result.stdout.strip().splitlines()[-1])
    terms = generalized_contrastive_loss(
        z1, z2, distribution="logsumexp", temperature=0.5, lambda_weight=0.3
    )
    np.testing.assert_allclose(
        on_jax["nt_xent"], float(nt_xent(z1, z2, temperature=0.2)), rtol=1e-5
    )
    saturated = float(nt_xent(s1, s2, temperature=0.05))
    assert 1e-9 < saturated < 1e-7
    np.testing.assert_allclose(on_jax["nt_xent_saturated"], saturated, rtol=1e-5)
    views = [tf.constant(z) for z in (z1, z2)]
    with tf.GradientTape() as tape:
        tape.watch(views)
        loss = nt_xent(*views, temperature=0.2)
    for got, want in zip(on_jax["nt_xent_grads"], tape.gradient(loss, views)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-7)
    # One pair: no negatives, zero loss and zero (not NaN) gradient.
    np.testing.assert_array_equal(on_jax["nt_xent_single_pair_grads"], np.zeros((2, 1, 8)))
    np.testing.assert_allclose(
        on_jax["ifm"], float(ifm(z1, z2, temperature=0.2, epsilon=0.1, alpha=0.5)), rtol=1e-5
    )
    np.testing.assert_array_equal(on_jax["ifm_single_pair_grads"], np.zeros((2, 1, 8)))
    np.testing.assert_allclose(
        on_jax["decoupled"],
        [float(terms.loss), float(terms.alignment), float(terms.distribution)],
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        on_jax["swd"], float(sliced_wasserstein_loss(z1, prior, projection)), rtol=1e-5
    )
