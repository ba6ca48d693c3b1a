"""A tiny pretraining entry point for the subprocess tests (kill-and-resume, multi-worker).

Trains ConvN on the in-memory batches of `_tiny_data` through the real flags
(`define_pretrain_flags`, `define_runtime_flags`), `Runtime.start`, `pretrain` and
`record_failure`, so each run takes seconds and any strategy sees the same global batches.

Test hooks: --hold_at_step=N blocks after step N, once: it writes `<output_dir>/held` and
waits for the test's SIGKILL; a rerun of the same command, finding `held`, trains through.
--nan_at_step=N feeds NaN images at step N. Writes `<out>.npz` (final weights) and
`<out>.json` (final metrics, history, distribution, resumed step), suffixed `.task<i>` on
non-chief workers.
"""
from __future__ import annotations

import json
import os
import threading

import keras
import numpy as np
from absl import flags

from _tiny_data import INPUT_SHAPE, PROBES, data_fn
from cl_properties.distribute import is_chief
from cl_properties.experiments.common import define_pretrain_flags, pretrain_config_from_flags, run
from cl_properties.experiments.runtime import define_runtime_flags, record_failure, runtime_from_flags
from cl_properties.results import atomic_write_text, write_results
from cl_properties.training import pretrain

FLAGS = flags.FLAGS

define_pretrain_flags()
define_runtime_flags()
flags.DEFINE_string("out", None, "Prefix of the final weights (.npz) and metrics (.json).")
flags.DEFINE_integer("hold_at_step", 0, "Block after this step, once per output_dir (0: never).")
flags.DEFINE_integer("nan_at_step", 0, "The global batch of this step (1-based) holds NaN images (0: never).")


class HoldAtStep(keras.callbacks.Callback):
    """Blocks training after step FLAGS.hold_at_step unless `<output_dir>/held` exists."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def on_train_batch_end(self, batch, logs=None):
        if keras.ops.convert_to_numpy(self.model.optimizer.iterations) == FLAGS.hold_at_step and not os.path.exists(self.marker):
            atomic_write_text(self.marker, "")
            threading.Event().wait()  # until the test's SIGKILL


def main(argv):
    del argv
    runtime = runtime_from_flags()
    strategy = runtime.start()
    config = runtime.configure(pretrain_config_from_flags())
    output_dir = FLAGS.output_dir
    callbacks = [HoldAtStep(os.path.join(output_dir, "held"))] if FLAGS.hold_at_step else []
    with record_failure(output_dir, config=config.to_dict(), seed=config.seed):
        result = pretrain(
            config,
            input_shape=INPUT_SHAPE,
            probes=PROBES,
            train_data=data_fn(config.batch_size, config.train_steps, FLAGS.nan_at_step),
            strategy=strategy,
            model_dir=output_dir,
            checkpoints=runtime.checkpoints,
            callbacks=callbacks,
            verbose=2,
        )
    chief = is_chief(strategy)
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
