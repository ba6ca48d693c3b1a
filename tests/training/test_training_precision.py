"""`pretrain` under mixed precision and its distribution checks."""

import dataclasses

import keras
import numpy as np
import pytest

from cl_properties.training import pretrain

from _tiny_data import INPUT_SHAPE, PROBES, data_fn, tiny_config


def run(config, strategy=None):
    return pretrain(
        config,
        input_shape=INPUT_SHAPE,
        probes=PROBES,
        train_data=data_fn(config.batch_size, config.train_steps),
        strategy=strategy,
        verbose=0,
    )


@pytest.mark.parametrize(
    "precision,compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_mixed_precision_trains_finite_with_float32_losses(precision, compute):
    result = run(tiny_config(precision=precision, train_steps=2))
    model = result.model
    conv = model.encoder.get_layer("stage1_conv")
    assert conv.compute_dtype == compute and conv.kernel.dtype == "float32"
    assert all(p.compute_dtype == "float32" for p in model.probes.values())
    assert all(np.isfinite(v) for v in result.final_metrics.values())
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (precision == "mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # restored for whatever runs next
    assert result.distribution["precision"] == precision


def test_distribution_checks(two_cpu_strategy):
    with pytest.raises(ValueError, match="not divisible by the 2 replicas"):
        run(tiny_config(batch_size=7), strategy=two_cpu_strategy)
    with pytest.raises(ValueError, match="jit_compile on is not supported"):
        run(dataclasses.replace(tiny_config(), jit_compile=True), strategy=two_cpu_strategy)
