"""Preemption-safe checkpoints of a pretraining run: atomic, verified, the last K kept.

A checkpoint of step N is two files in `model_dir/checkpoints/`:

- `ckpt-0000000N.weights.h5`: Keras `save_weights` of the compiled model, which holds the
  model's variables (BatchNorm moving statistics included) and the optimizer's (iteration
  count, momenta, loss scale);
- `ckpt-0000000N.json`: the metadata that commits it: step (= batches consumed, the data
  position), optimizer iterations, the SHA-256 of the weights file, the run's config, the
  shapes and dtypes of every saved variable, the states of Keras seed generators (which
  `save_weights` leaves out) and the per-loop metric history.

The weights file is written under a temporary name and renamed; the JSON is written the
same way after it, so a process killed at any moment leaves either a complete checkpoint or
files that no JSON names, which are ignored and cleaned up. Restoring verifies everything
and raises `CheckpointError` instead of silently starting over or loading half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from cl_properties.results import as_saved, atomic_write_text, config_differences

FORMAT_VERSION = 1
CHECKPOINT_SUBDIR = "checkpoints"
# PretrainConfig fields that do not change what a run computes: a checkpoint resumes under
# other values of these.
RESUMABLE_FIELDS = ("jit_compile",)
_COMMITTED = re.compile(r"^ckpt-(\d+)\.json$")
_WEIGHTS = re.compile(r"^ckpt-(\d+)\.weights\.h5$")
_PARTIAL = re.compile(r"^\.ckpt-\d+\..*\.tmp\.weights\.h5$")
# Keras reports a mismatched optimizer by a warning and skips it; here that is an error.
_LOADING_WARNINGS = ("Skipping variable loading", "could not be loaded")


class CheckpointError(ValueError):
    """A checkpoint in model_dir that cannot be resumed from: corrupt or incompatible."""


def _start_over_hint(directory: str) -> str:
    return f"to start over, rerun with --fresh (CheckpointConfig(fresh=True)) or delete {directory}"


def variable_manifest(model: keras.Model) -> list[list]:
    """[shape, dtype] of every variable a checkpoint saves: model weights, then optimizer
    variables, in order. Equal manifests mean a checkpoint's arrays fit the model."""
    variables = list(model.weights) + list(model.optimizer.variables)
    return [[list(v.shape), str(v.dtype)] for v in variables]


def _seed_states(model: keras.Model) -> list:
    # The state variables of keras.random.SeedGenerator objects (Dropout etc.), which
    # `save_weights` does not save.
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointManager:
    """Writes, lists, prunes and restores the checkpoints in `model_dir/checkpoints`.

    Only the chief writes there; other workers of a multi-worker run (`chief=False`) still
    call `save` (every worker must take part in reading distributed variables) but write to
    a private temporary folder that is deleted at once.
    """

    def __init__(self, model_dir: str, *, keep: int, chief: bool = True):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = os.path.join(os.fspath(model_dir), CHECKPOINT_SUBDIR)
        self.keep = keep
        self.chief = chief

    def committed(self) -> list[tuple[int, str]]:
        """(step, metadata path) of every complete checkpoint, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _COMMITTED.match(name)
            if match:
                found.append((int(match.group(1)), os.path.join(self.directory, name)))
        return sorted(found)

    def latest_step(self) -> int | None:
        committed = self.committed()
        return committed[-1][0] if committed else None

    def _paths(self, step: int) -> tuple[str, str]:
        stem = os.path.join(self.directory, f"ckpt-{step:08d}")
        return stem + ".weights.h5", stem + ".json"

    def clear(self) -> None:
        """Deletes every checkpoint (committed or partial): the start of a fresh run."""
        if self.chief and os.path.isdir(self.directory):
            shutil.rmtree(self.directory)

    def remove_partial(self) -> None:
        """Deletes what interrupted saves left: temporary files and weights no JSON commits."""
        if not self.chief or not os.path.isdir(self.directory):
            return
        steps = {step for step, _ in self.committed()}
        for name in os.listdir(self.directory):
            match = _WEIGHTS.match(name)
            if _PARTIAL.match(name) or (match and int(match.group(1)) not in steps):
                os.remove(os.path.join(self.directory, name))

    def save(
        self,
        model: keras.Model,
        *,
        step: int,
        config: Mapping[str, Any],
        history: Mapping[str, Sequence[float]],
    ) -> str | None:
        """Writes the checkpoint of `step` (batches consumed) atomically, then deletes all but
        the newest `keep`. Returns the metadata path (None on a non-chief worker)."""
        if not self.chief:
            scratch = tempfile.mkdtemp(prefix="cl_properties_ckpt_")
            try:
                model.save_weights(os.path.join(scratch, "worker.weights.h5"))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return None
        os.makedirs(self.directory, exist_ok=True)
        weights_path, json_path = self._paths(step)
        partial = os.path.join(
            self.directory, f".ckpt-{step:08d}.{uuid.uuid4().hex}.tmp.weights.h5"
        )
        try:
            model.save_weights(partial)
            _fsync(partial)
            digest = _sha256(partial)
            os.replace(partial, weights_path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
        metadata = {
            "format": FORMAT_VERSION,
            "step": int(step),
            "optimizer_iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
            "data_position": {"batches_consumed": int(step)},
            "weights": os.path.basename(weights_path),
            "sha256": digest,
            "rng": {
                "seed": config.get("seed"),
                "seed_generator_states": [
                    keras.ops.convert_to_numpy(v).tolist() for v in _seed_states(model)
                ],
            },
            "config": dict(config),
            "variables": variable_manifest(model),
            "history": {k: [float(x) for x in v] for k, v in history.items()},
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(json_path, json.dumps(metadata, indent=1) + "\n")
        self._prune()
        return json_path

    def _prune(self) -> None:
        for step, json_path in self.committed()[: -self.keep]:
            os.remove(
                json_path
            )  # uncommit first: a kill in between leaves an orphan, not a broken checkpoint
            weights_path, _ = self._paths(step)
            if os.path.exists(weights_path):
                os.remove(weights_path)

    def restore(self, model: keras.Model, *, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Loads the latest checkpoint into `model` (compiled, optimizer built) and returns
        its metadata, or None when there is none.

        Raises CheckpointError, naming the file and how to start over, when the metadata is
        unreadable or of another format, the config differs (except `RESUMABLE_FIELDS`), the
        variables' shapes differ, the weights file is missing or its checksum is wrong,
        Keras cannot load it, or the optimizer state did not load.
        """
        committed = self.committed()
        if not committed:
            return None
        step, json_path = committed[-1]
        hint = _start_over_hint(os.path.dirname(self.directory))

        def fail(reason: str) -> CheckpointError:
            return CheckpointError(f"cannot resume from checkpoint {json_path}: {reason}; {hint}")

        try:
            with open(json_path, encoding="utf-8") as f:
                metadata = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise fail(f"its metadata is corrupt ({error})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_VERSION:
            found = metadata.get("format") if isinstance(metadata, dict) else None
            raise fail(f"checkpoint format {found!r}, this code reads format {FORMAT_VERSION}")
        if metadata.get("step") != step:
            raise fail(f"it records step {metadata.get('step')!r}, its name says {step}")
        saved_config = {
            k: v for k, v in metadata.get("config", {}).items() if k not in RESUMABLE_FIELDS
        }
        current_config = {k: v for k, v in as_saved(config).items() if k not in RESUMABLE_FIELDS}
        differences = config_differences(saved_config, current_config)
        if differences:
            shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
            raise fail(f"it was written by a different configuration ({shown})")
        if metadata.get("variables") != variable_manifest(model):
            raise fail(
                "its variables do not match this model and optimizer (shapes or dtypes differ)"
            )
        weights_path = os.path.join(self.directory, str(metadata.get("weights")))
        if not os.path.isfile(weights_path):
            raise fail(f"its weights file {weights_path} is missing")
        if _sha256(weights_path) != metadata.get("sha256"):
            raise fail(f"its weights file {weights_path} is corrupt (checksum mismatch)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.load_weights(weights_path)
            except Exception as error:  # h5py, Keras and TF raise many types for a bad file
                raise fail(
                    f"Keras cannot load {weights_path} ({type(error).__name__}: {error})"
                ) from None
        problems = [
            str(w.message) for w in caught if any(s in str(w.message) for s in _LOADING_WARNINGS)
        ]
        if problems:
            raise fail(f"Keras loaded {weights_path} only partly ({problems[0]})")
        states = metadata.get("rng", {}).get("seed_generator_states", [])
        variables = _seed_states(model)
        if len(states) != len(variables):
            raise fail(f"it has {len(states)} seed generator states, the model {len(variables)}")
        for variable, state in zip(variables, states):
            variable.assign(np.asarray(state, dtype=variable.dtype))
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if iterations != metadata.get("optimizer_iterations"):
            raise fail(
                f"the optimizer state did not load (iterations {iterations}, saved "
                f"{metadata.get('optimizer_iterations')})"
            )
        return metadata
