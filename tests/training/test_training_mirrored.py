"""The whole `pretrain` step under MirroredStrategy over two logical CPUs, with global BN,
equals one device on the same global batches: losses, metrics and updated weights.

Both runs see the same global batch at every step (`_tiny_data`: each replica reads its
half). The SWD loss sorts the gathered global batch and draws its projection from the
optimizer's step, the BatchNorm statistics are all-reduced, and the replica gradients are
summed after dividing the global objective by the replica count.
"""

import dataclasses

import keras
import numpy as np
import pytest

from cl_properties.optimization import OptimizerConfig
from cl_properties.training import (
    AuxiliaryConfig,
    LossConfig,
    build_contrastive_model,
    pretrain,
)

from _tiny_data import INPUT_SHAPE, PROBES, data_fn, tiny_config

TOLERANCE = 1e-5


def train(config, strategy, model_dir=None):
    return pretrain(
        config,
        input_shape=INPUT_SHAPE,
        probes=PROBES,
        train_data=data_fn(config.batch_size, config.train_steps),
        strategy=strategy,
        model_dir=model_dir,
        verbose=0,
    )


@pytest.mark.slow
def test_two_replicas_with_global_bn_equal_one_device(two_cpu_strategy, tmp_path):
    # Momentum SGD with a large step: weights move far more than the tolerance.
    base = tiny_config(
        train_steps=3,
        steps_per_loop=1,
        optimizer=OptimizerConfig(name="sgd", learning_rate=0.5, lr_scaling="none"),
    )
    config = dataclasses.replace(base, encoder=dataclasses.replace(base.encoder, sync_bn=True))
    single = train(config, None)
    mirrored = train(config, two_cpu_strategy, str(tmp_path))
    assert (
        mirrored.distribution["replicas"] == 2 and mirrored.distribution["per_replica_batch"] == 4
    )
    assert mirrored.distribution["jit_compile"] is False  # XLA cannot compile this over CPU devices

    assert single.history.keys() == mirrored.history.keys()
    for name, values in single.history.items():  # every step's loss terms and probe metrics
        np.testing.assert_allclose(
            mirrored.history[name], values, atol=TOLERANCE, rtol=TOLERANCE, err_msg=name
        )
    weights = [np.asarray(w) for w in mirrored.model.get_weights()]  # BN moving statistics included
    expected = [np.asarray(w) for w in single.model.get_weights()]
    assert len(weights) == len(expected)
    for got, want, variable in zip(weights, expected, single.model.weights):
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE, err_msg=variable.path)
    # The comparison is not vacuous: training moved every weight away from its initial value.
    keras.utils.set_random_seed(config.seed)
    initial = build_contrastive_model(config, input_shape=INPUT_SHAPE, probes=PROBES).get_weights()
    still = [
        v.path
        for v, w, i in zip(single.model.weights, expected, initial)
        if np.allclose(w, i, atol=1e-3)
    ]
    assert not still
    assert keras.ops.convert_to_numpy(mirrored.model.optimizer.iterations) == 3

    # Its checkpoints, written from mirrored variables, restore into mirrored variables.
    resumed = train(config, two_cpu_strategy, str(tmp_path))
    assert resumed.resumed_from_step == 3 and resumed.history == mirrored.history
    for got, want in zip(resumed.model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, term", [("reconstruction", "recon_loss"), ("rotation", "rotation_loss")]
)
def test_auxiliary_objectives_train_on_two_replicas(two_cpu_strategy, name, term):
    # Their terms are per-replica means (batch variance, batch quarters): not the single
    # device's numbers, but each replica's share of the global objective.
    config = tiny_config(train_steps=2, steps_per_loop=1, auxiliary=AuxiliaryConfig(name))
    result = train(config, two_cpu_strategy)
    assert type(result.model).TERM == term
    assert np.all(np.isfinite(result.history[term])) and np.all(np.isfinite(result.history["loss"]))
    assert keras.ops.convert_to_numpy(result.model.optimizer.iterations) == 2


@pytest.mark.slow
def test_bit_matched_negatives_train_on_two_replicas(two_cpu_strategy):
    # The mask of each anchor's own pixels spans the global batch the loss gathers.
    config = tiny_config(
        train_steps=2,
        steps_per_loop=1,
        loss=LossConfig("nt_xent"),
        auxiliary=AuxiliaryConfig("bit_matched"),
    )
    result = train(config, two_cpu_strategy)
    assert type(result.model).__name__ == "BitMatchedContrastiveModel"
    assert np.all(np.isfinite(result.history["loss"]))
    assert keras.ops.convert_to_numpy(result.model.optimizer.iterations) == 2
