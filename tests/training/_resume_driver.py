"""A tiny pretraining entry point for the subprocess tests (kill-and-resume, multi-worker).

Trains ConvN on the in-memory batches of `_tiny_data` through the real flags
(`define_pretrain_flags`, `define_runtime_flags`), `Runtime.start`, `pretrain` and
`output_run`, so each run takes seconds and any strategy sees the same global batches.
--data=pipeline trains instead through `train_and_evaluate` (online probe only) on
`tiny_data_spec`, i.e. through the real `two_view_dataset` and its resume position.
--logical_cpus=N splits the CPU into N logical devices, which --strategy=mirrored mirrors over.

Test hooks: --hold_at_step=N blocks after step N, once: it writes `<output_dir>/held` and
waits for the test's SIGKILL; a rerun of the same command, finding `held`, trains through.
--nan_at_step=N feeds NaN images at step N. Writes `<out>.npz` (final weights) and
`<out>.json` (final metrics, history, distribution, resumed step), suffixed `.task<i>` on
non-chief workers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from cl_properties.distribute import StrategyConfig, is_chief
from cl_properties.experiments.cli import define_pretrain_flags, pretrain_config_from_flags, run
from cl_properties.experiments.runtime import (
    Runtime,
    define_runtime_flags,
    output_run,
    runtime_from_flags,
)
from cl_properties.results import atomic_write_text, write_results
from cl_properties.training import (
    EvalConfig,
    PretrainConfig,
    PretrainResult,
    pretrain,
    train_and_evaluate,
)

from _tiny_data import INPUT_SHAPE, PROBES, data_fn, tiny_data_spec

FLAGS = flags.FLAGS

define_pretrain_flags()
define_runtime_flags()
flags.DEFINE_string("out", None, "Prefix of the final weights (.npz) and metrics (.json).")
flags.DEFINE_integer("hold_at_step", 0, "Block after this step, once per output_dir (0: never).")
flags.DEFINE_integer(
    "nan_at_step",
    0,
    "The global batch of this step (1-based) holds NaN images (0: never; --data=arrays only).",
)
flags.DEFINE_enum(
    "data",
    "arrays",
    ["arrays", "pipeline"],
    "arrays: `_tiny_data`'s fixed global batches; pipeline: `tiny_data_spec` through "
    "`train_and_evaluate`.",
)
flags.DEFINE_integer(
    "logical_cpus", 0, "Split the CPU into this many logical devices (0: leave it whole)."
)


class HoldAtStep(keras.callbacks.Callback):
    """Blocks training after step FLAGS.hold_at_step unless `<output_dir>/held` exists."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def on_train_batch_end(self, batch, logs=None):
        if keras.ops.convert_to_numpy(
            self.model.optimizer.iterations
        ) == FLAGS.hold_at_step and not os.path.exists(self.marker):
            atomic_write_text(self.marker, "")
            threading.Event().wait()  # until the test's SIGKILL


def split_cpu(runtime: Runtime, count: int) -> Runtime:
    """Splits the CPU into `count` logical devices (before any TF op) and makes a "mirrored"
    runtime mirror over them: with no devices given it would take the GPUs, else one CPU."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )
    if runtime.strategy.name != "mirrored":
        return runtime
    devices = tuple(f"/cpu:{i}" for i in range(count))
    return dataclasses.replace(runtime, strategy=StrategyConfig(name="mirrored", devices=devices))


def train(
    config: PretrainConfig,
    strategy: tf.distribute.Strategy,
    runtime: Runtime,
    callbacks: list[keras.callbacks.Callback],
) -> PretrainResult:
    """Pretrains as --data says, into --output_dir."""
    common = dict(
        strategy=strategy,
        model_dir=FLAGS.output_dir,
        checkpoints=runtime.checkpoints,
        callbacks=callbacks,
        verbose=2,
    )
    if FLAGS.data == "pipeline":
        result, _ = train_and_evaluate(
            config, tiny_data_spec(), evaluation=EvalConfig(offline=False), **common
        )
        return result
    return pretrain(
        config,
        input_shape=INPUT_SHAPE,
        probes=PROBES,
        train_data=data_fn(config.batch_size, config.train_steps, FLAGS.nan_at_step),
        **common,
    )


def main(argv):
    del argv
    runtime = runtime_from_flags()
    if FLAGS.logical_cpus:
        runtime = split_cpu(runtime, FLAGS.logical_cpus)
    strategy = runtime.start()
    config = runtime.configure(pretrain_config_from_flags())
    output_dir = FLAGS.output_dir
    callbacks = [HoldAtStep(os.path.join(output_dir, "held"))] if FLAGS.hold_at_step else []
    chief = is_chief(strategy)
    with output_run(
        output_dir,
        config=config.to_dict(),
        seed=config.seed,
        fresh=runtime.checkpoints.fresh,
        chief=chief,
    ):
        result = train(config, strategy, runtime, callbacks)
        suffix = "" if chief else f".task{strategy.cluster_resolver.task_id}"
        weights = {f"w{i:03d}": np.asarray(w) for i, w in enumerate(result.model.get_weights())}
        np.savez(FLAGS.out + suffix + ".npz", **weights)
        summary = {
            "final_metrics": result.final_metrics,
            "history": result.history,
            "distribution": result.distribution,
            "resumed_from_step": result.resumed_from_step,
        }
        atomic_write_text(FLAGS.out + suffix + ".json", json.dumps(summary, indent=1))
        if chief:
            write_results(
                output_dir,
                rows=[result.final_metrics],
                config=config.to_dict(),
                seed=config.seed,
                wall_time_s=0.0,
                extra={"distribution": result.distribution},
            )


if __name__ == "__main__":
    run(main)
