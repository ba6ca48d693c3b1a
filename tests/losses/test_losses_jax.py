"""The loss math is written with keras.ops, so it runs on the JAX backend too: the same
inputs give the same values as on TensorFlow. JAX is a test extra; the backend is chosen per
process, so the JAX side runs in a subprocess with KERAS_BACKEND=jax."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cl_properties.losses import generalized_contrastive_loss, nt_xent, sliced_wasserstein_loss

pytest.importorskip("jax")

_JAX_SIDE = """
import json, sys
import numpy as np
import keras
from cl_properties.losses import generalized_contrastive_loss, nt_xent, sliced_wasserstein_loss
assert keras.backend.backend() == "jax", keras.backend.backend()
z1, z2, prior, projection = (np.asarray(a, np.float32) for a in json.load(sys.stdin))
terms = generalized_contrastive_loss(z1, z2, distribution="logsumexp", temperature=0.5, lambda_weight=0.3)
print(json.dumps({
    "nt_xent": float(nt_xent(z1, z2, temperature=0.2)),
    "decoupled": [float(terms.loss), float(terms.alignment), float(terms.distribution)],
    "swd": float(sliced_wasserstein_loss(z1, prior, projection)),
}))
"""


def test_losses_on_jax_equal_the_tensorflow_values():
    rng = np.random.default_rng(0)
    z1, z2, prior = (rng.normal(size=(16, 8)).astype(np.float32) for _ in range(3))
    projection = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    result = subprocess.run(
        [sys.executable, "-c", _JAX_SIDE],
        input=json.dumps([a.tolist() for a in (z1, z2, prior, projection)]),
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = json.loads(result.stdout.strip().splitlines()[-1])
    terms = generalized_contrastive_loss(z1, z2, distribution="logsumexp", temperature=0.5, lambda_weight=0.3)
    np.testing.assert_allclose(on_jax["nt_xent"], float(nt_xent(z1, z2, temperature=0.2)), rtol=1e-5)
    np.testing.assert_allclose(
        on_jax["decoupled"], [float(terms.loss), float(terms.alignment), float(terms.distribution)], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(on_jax["swd"], float(sliced_wasserstein_loss(z1, prior, projection)), rtol=1e-5)
