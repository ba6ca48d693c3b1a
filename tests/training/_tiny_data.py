"""Tiny deterministic two-view data and config shared by the training tests and their driver.

Global batch k is a fixed function of k, and replica r of R reads rows [r B/R, (r+1) B/R)
of it, so every strategy (one device, Mirrored, multi-worker) trains on the same global
batches and runs can be compared step for step. `tiny_data_spec` is instead a tiny image
source for the real input pipeline (`two_view_dataset`, its resume position included).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from cl_properties.data import crop_augment, source_from_arrays
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import DataSpec, EncoderConfig, HeadConfig, LossConfig, PretrainConfig

IMAGE_SIZE = 16
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
CLASSES = 3
PROBES = {"label": CLASSES}

DRIVER = Path(__file__).with_name("_resume_driver.py")
# The model of `tiny_config` as flags of `_resume_driver.py` (the optimizer is the test's).
DRIVER_MODEL_FLAGS = (
    "--encoder=convn",
    "--width_multiplier=0.5",
    "--head_hidden_dim=32",
    "--head_output_dim=16",
    "--loss=swd_hypersphere",
    "--lambda_weight=5",
    "--lr_scaling=none",
    "--batch_size=8",
    "--steps_per_loop=2",
)


def driver_command(output_dir: Path, out: Path, *flags: str) -> list[str]:
    """`_resume_driver.py` training the tiny model into `output_dir`, final weights to `out`."""
    return [
        sys.executable,
        str(DRIVER),
        f"--output_dir={output_dir}",
        f"--out={out}",
        *DRIVER_MODEL_FLAGS,
        *flags,
    ]


def driver_env(tf_config: str | None = None) -> dict[str, str]:
    """The driver's environment: CPU only, quiet, TF_CONFIG set only when given."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    return env


def tiny_config(**overrides) -> PretrainConfig:
    """ConvN (half width) + 2-layer head, SWD loss (its projection depends on the step), LARS
    with warmup and cosine decay (its state: momenta and the iteration count)."""
    fields = dict(
        encoder=EncoderConfig(name="convn", width_multiplier=0.5),
        head=HeadConfig(depth=2, hidden_dim=32, output_dim=16),
        loss=LossConfig("swd_hypersphere"),  # lambda 5 (its preset)
        optimizer=OptimizerConfig(name="lars", learning_rate=0.5, warmup_steps=2),
        batch_size=8,
        train_steps=6,
        steps_per_loop=2,
        seed=0,
    )
    fields.update(overrides)
    return PretrainConfig(**fields)


def global_batch(
    step: int, batch: int, nan_at_step: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views and labels of the global batch of `step` (0-based); NaN images when
    step + 1 == nan_at_step."""
    rng = np.random.RandomState(1000 + step)
    view1 = rng.rand(batch, *INPUT_SHAPE).astype("float32")
    view2 = np.clip(view1[:, :, ::-1] + 0.1 * rng.randn(*view1.shape), 0, 1).astype("float32")
    if step + 1 == nan_at_step:
        view1[:] = np.nan
    return view1, view2, rng.randint(0, CLASSES, batch).astype("int32")


def data_fn(batch: int, steps: int, nan_at_step: int = 0):
    """A `pretrain` data function: (input_context | None, start) -> this pipeline's batches."""

    def train_data(context: tf.distribute.InputContext | None, start: int) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines if context else 1
        pipeline = context.input_pipeline_id if context else 0
        replicas = context.num_replicas_in_sync if context else 1
        local, per_replica = replicas // pipelines, batch // replicas
        parts = []  # this pipeline's per-replica batches, in the order its replicas take them
        for step in range(start, steps):
            v1, v2, y = global_batch(step, batch, nan_at_step)
            for r in range(pipeline * local, (pipeline + 1) * local):
                rows = slice(r * per_replica, (r + 1) * per_replica)
                parts.append((v1[rows], v2[rows], y[rows]))
        if not parts:  # a finished run resumed: fit reads nothing
            v1, v2, y = global_batch(0, batch)
            parts.append((v1[:per_replica], v2[:per_replica], y[:per_replica]))
        v1, v2, y = (np.stack([p[i] for p in parts]) for i in range(3))
        return tf.data.Dataset.from_tensor_slices(((v1, v2), {"label": y})).repeat()

    return train_data


def tiny_data_spec() -> DataSpec:
    """24 training and 8 test images, random, with random labels, as a `train_and_evaluate`
    DataSpec: RandBit crops and a shuffle buffer smaller than the source, so every epoch reads
    its records in a new order (with batch 8, a resume at step 4 starts in epoch 1)."""
    rng = np.random.RandomState(7)

    def source(n: int) -> tf.data.Dataset:
        images = rng.rand(n, *INPUT_SHAPE).astype("float32")
        return source_from_arrays(images, {"label": rng.randint(0, CLASSES, n)})

    return DataSpec(
        train=source(24),
        test=source(8),
        input_shape=INPUT_SHAPE,
        probes=PROBES,
        augment=crop_augment(),
        shuffle_buffer=8,
    )
