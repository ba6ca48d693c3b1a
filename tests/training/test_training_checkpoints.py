"""`pretrain`'s checkpoints in one process: resuming, NaN stops, interrupted saves,
corrupt and incompatible checkpoints, fresh starts, the checkpoint interval."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest

from cl_properties.experiments.runtime import output_run
from cl_properties.results import read_results
from cl_properties.training import (
    CheckpointConfig,
    CheckpointError,
    HeadConfig,
    NonFiniteLossError,
    pretrain,
)

from _tiny_data import INPUT_SHAPE, PROBES, data_fn, tiny_config


def run(config, model_dir=None, *, nan_at_step=0, strategy=None, **kwargs):
    return pretrain(
        config,
        input_shape=INPUT_SHAPE,
        probes=PROBES,
        train_data=data_fn(config.batch_size, config.train_steps, nan_at_step),
        strategy=strategy,
        model_dir=None if model_dir is None else str(model_dir),
        verbose=0,
        **kwargs,
    )


def checkpoint_files(model_dir) -> list[str]:
    return sorted(os.listdir(os.path.join(model_dir, "checkpoints")))


def copy_run(source, target):
    os.makedirs(target / "checkpoints")
    for name in os.listdir(source / "checkpoints"):
        (target / "checkpoints" / name).write_bytes((source / "checkpoints" / name).read_bytes())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 4-step run (checkpoints after steps 2 and 4) and its model_dir."""
    model_dir = tmp_path_factory.mktemp("finished")
    return run(tiny_config(train_steps=4), model_dir), model_dir


def test_rerun_of_a_finished_run_resumes_at_the_end(finished_run):
    result, model_dir = finished_run
    assert result.resumed_from_step == 0
    assert checkpoint_files(model_dir) == [
        "ckpt-00000002.json",
        "ckpt-00000002.weights.h5",
        "ckpt-00000004.json",
        "ckpt-00000004.weights.h5",
    ]
    history = json.loads((model_dir / "history.json").read_text())
    assert history["step"] == 4 and history["history"] == result.history
    assert (
        len(result.history["loss"]) == 2
        and result.final_metrics["loss"] == result.history["loss"][-1]
    )
    assert result.distribution["replicas"] == 1 and result.distribution["precision"] == "float32"

    again = run(tiny_config(train_steps=4), model_dir)  # nothing left to train
    assert again.resumed_from_step == 4
    assert again.history == result.history and again.final_metrics == result.final_metrics
    for a, b in zip(again.model.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert keras.ops.convert_to_numpy(again.model.optimizer.iterations) == 4


def test_nan_loss_stops_keeps_the_last_good_checkpoint_and_marks_results_failed(tmp_path):
    config = tiny_config(train_steps=6)
    with pytest.raises(NonFiniteLossError) as excinfo:
        with output_run(str(tmp_path), config=config.to_dict(), seed=config.seed):
            run(config, tmp_path, nan_at_step=5)  # in the third loop, steps 5-6
    message = str(excinfo.value)
    assert "non-finite" in message and "steps 5-6" in message and "step 4" in message
    assert checkpoint_files(tmp_path)[-1] == "ckpt-00000004.weights.h5"
    results = read_results(tmp_path)
    assert (
        results["status"] == "failed"
        and "NonFiniteLossError" in results["error"]
        and results["rows"] == []
    )
    assert keras.config.dtype_policy().name == "float32"
    # The kept checkpoint is good: the same run on clean data resumes from it and finishes.
    resumed = run(config, tmp_path)
    assert resumed.resumed_from_step == 4 and np.isfinite(resumed.final_metrics["loss"])


def test_partial_files_of_an_interrupted_save_are_ignored_and_removed(finished_run, tmp_path):
    _, source = finished_run
    os.makedirs(tmp_path / "checkpoints")
    for name in ("ckpt-00000002.json", "ckpt-00000002.weights.h5"):
        (tmp_path / "checkpoints" / name).write_bytes((source / "checkpoints" / name).read_bytes())
    # Killed during the save of step 4: a temporary file, or weights that no JSON commits.
    (tmp_path / "checkpoints" / ".ckpt-00000004.0123.tmp.weights.h5").write_bytes(b"partial")
    (tmp_path / "checkpoints" / "ckpt-00000004.weights.h5").write_bytes(b"uncommitted")
    result = run(tiny_config(train_steps=4), tmp_path)
    assert result.resumed_from_step == 2
    assert checkpoint_files(tmp_path) == [
        "ckpt-00000002.json",
        "ckpt-00000002.weights.h5",
        "ckpt-00000004.json",
        "ckpt-00000004.weights.h5",
    ]


@pytest.mark.parametrize(
    "damage,expected",
    [
        ("truncate_weights", "checksum mismatch"),
        ("garbage_weights_same_checksum", "Keras cannot load"),
        ("truncate_json", "metadata is corrupt"),
        ("delete_weights", "is missing"),
        ("old_format", "checkpoint format 0"),
    ],
)
def test_corrupt_checkpoint_is_a_clear_error(finished_run, tmp_path, damage, expected):
    _, source = finished_run
    copy_run(source, tmp_path)
    weights = tmp_path / "checkpoints" / "ckpt-00000004.weights.h5"
    metadata_path = tmp_path / "checkpoints" / "ckpt-00000004.json"
    metadata = json.loads(metadata_path.read_text())
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "garbage_weights_same_checksum":  # a checksum that matches a bad file
        weights.write_bytes(b"not an h5 file")
        metadata["sha256"] = hashlib.sha256(b"not an h5 file").hexdigest()
        metadata_path.write_text(json.dumps(metadata))
    elif damage == "truncate_json":
        metadata_path.write_text(metadata_path.read_text()[:50])
    elif damage == "delete_weights":
        weights.unlink()
    else:
        metadata_path.write_text(json.dumps({**metadata, "format": 0}))
    with pytest.raises(CheckpointError) as excinfo:
        run(tiny_config(train_steps=4), tmp_path)
    message = str(excinfo.value)
    assert expected in message and "ckpt-00000004.json" in message and "--fresh" in message
    assert isinstance(excinfo.value, ValueError)  # experiments print it as one line
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize(
    "change,expected",
    [
        (dict(head=HeadConfig(depth=2, hidden_dim=32, output_dim=8)), "head.output_dim: 16 -> 8"),
        (dict(seed=1), "seed: 0 -> 1"),
        (dict(train_steps=8), "train_steps: 4 -> 8"),
    ],
)
def test_incompatible_checkpoint_is_a_clear_error(finished_run, tmp_path, change, expected):
    _, source = finished_run
    copy_run(source, tmp_path)
    with pytest.raises(CheckpointError) as excinfo:
        run(tiny_config(**{"train_steps": 4, **change}), tmp_path)
    message = str(excinfo.value)
    assert "different configuration" in message and expected in message and "--fresh" in message


def test_incompatible_variables_are_caught_even_with_an_equal_config(finished_run, tmp_path):
    _, source = finished_run
    copy_run(source, tmp_path)
    metadata_path = tmp_path / "checkpoints" / "ckpt-00000004.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["variables"][0][0][-1] += 1  # as if written by other code with this config
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="variables do not match"):
        run(tiny_config(train_steps=4), tmp_path)


def test_fresh_discards_the_old_run_and_checkpoints_every_n_steps(finished_run, tmp_path):
    _, source = finished_run
    copy_run(source, tmp_path)
    (tmp_path / "checkpoints" / "ckpt-00000004.json").write_text("{broken")
    result = run(
        tiny_config(train_steps=4, steps_per_loop=1),
        tmp_path,
        checkpoints=CheckpointConfig(fresh=True, every_steps=2, keep=5),
    )
    assert result.resumed_from_step == 0 and len(result.history["loss"]) == 4
    assert checkpoint_files(tmp_path) == [
        "ckpt-00000002.json",
        "ckpt-00000002.weights.h5",
        "ckpt-00000004.json",
        "ckpt-00000004.weights.h5",
    ]
    metadata = json.loads((tmp_path / "checkpoints" / "ckpt-00000004.json").read_text())
    assert metadata["config"]["steps_per_loop"] == 1 and len(metadata["history"]["loss"]) == 4
    assert metadata["optimizer_iterations"] == 4 and metadata["data_position"] == {
        "batches_consumed": 4
    }


def test_checkpoint_argument_checks():
    with pytest.raises(ValueError, match="multiple of steps_per_loop"):
        run(tiny_config(), checkpoints=CheckpointConfig(every_steps=3))
    with pytest.raises(ValueError, match="keep must be"):
        CheckpointConfig(keep=0)
    with pytest.raises(ValueError, match="every_steps must be"):
        CheckpointConfig(every_steps=0)
