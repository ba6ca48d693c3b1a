"""Flags for where and how a run executes (strategy, XLA, checkpoints), as explicit config.

Every entry point calls `define_runtime_flags()` next to `define_pretrain_flags()`, then:

    runtime = runtime_from_flags()
    strategy = runtime.start()                      # first: before any other TF op
    config = runtime.configure(pretrain_config_from_flags())
    with output_run(output_dir, config=..., seed=config.seed, fresh=runtime.checkpoints.fresh,
                    chief=is_chief(strategy)):
        if start_run(output_dir, ...): report the completed run and return
        result, metrics = train_and_evaluate(config, data, strategy=strategy,
                                             model_dir=output_dir, checkpoints=runtime.checkpoints)
        write_results(output_dir, ..., extra={"distribution": result.distribution})
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from absl import flags

from cl_properties.distribute import STRATEGIES, StrategyConfig, make_strategy
from cl_properties.results import (
    ResultsFileError,
    lock_output_dir,
    previous_results,
    read_results,
    remove_results,
    write_results,
)
from cl_properties.training import (
    CheckpointConfig,
    CheckpointError,
    NonFiniteLossError,
    PretrainConfig,
    loop_steps,
)

JIT_MODES = {"auto": None, "on": True, "off": False}


def define_runtime_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines --strategy, --tpu, --global_bn, --jit_compile, --checkpoint_every,
    --keep_checkpoints, --multi_worker_timeout, --fresh and --deterministic."""
    flags.DEFINE_enum(
        "strategy",
        "auto",
        list(STRATEGIES),
        "Distribution: auto (TPU if --tpu, multi_worker if TF_CONFIG names a cluster, Mirrored "
        "over all GPUs, "
        "else the default), tpu, mirrored, multi_worker (cluster from TF_CONFIG) or default.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "tpu",
        None,
        "TPU for --strategy=tpu|auto: 'local' on a Cloud TPU VM, a TPU name or grpc://host:port.",
        flag_values=flag_values,
    )
    flags.DEFINE_boolean(
        "global_bn",
        False,
        "Synchronize BatchNorm statistics over all replicas (SimCLR's global BN).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "jit_compile",
        "auto",
        list(JIT_MODES),
        "XLA-compile the train step: auto (on for GPUs, off on CPUs; TPUs always compile), on or "
        "off.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "checkpoint_every",
        0,
        "Steps between checkpoints, a multiple of --steps_per_loop (0: every loop).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "keep_checkpoints",
        3,
        "Number of most recent checkpoints kept.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "multi_worker_timeout",
        300.0,
        "Seconds a multi-worker run waits for every worker of TF_CONFIG's cluster to join before "
        "it stops, "
        "naming the workers that never answered.",
        lower_bound=1.0,
        flag_values=flag_values,
    )
    flags.DEFINE_boolean(
        "fresh",
        False,
        "Delete the checkpoints, history and logs in the output directory and start over "
        "(default: resume).",
        flag_values=flag_values,
    )
    flags.DEFINE_boolean(
        "deterministic",
        False,
        "Enable TensorFlow op determinism (bitwise-reproducible reruns and resumes; slower on "
        "GPUs).",
        flag_values=flag_values,
    )


@dataclass(frozen=True)
class Runtime:
    """Where and how a run executes; nothing here changes what it computes (except
    `global_bn` with several replicas, which it sets on the model)."""

    strategy: StrategyConfig = dataclasses.field(default_factory=StrategyConfig)
    checkpoints: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    global_bn: bool = False
    jit_compile: bool | None = None
    deterministic: bool = False

    def start(self) -> tf.distribute.Strategy:
        """Applies the process-wide settings (op determinism) and builds the strategy. Call
        it first in main: multi-worker and TPU strategies must exist before other TF ops."""
        if self.deterministic:
            tf.config.experimental.enable_op_determinism()
        return make_strategy(self.strategy)

    def configure(self, config: PretrainConfig) -> PretrainConfig:
        """`config` with synchronized BatchNorm (`global_bn`) and the XLA choice applied.
        ValueError (before the run touches its folder) unless its steps and the checkpoint
        interval are whole loops (`loop_steps`)."""
        loop_steps(config, self.checkpoints)
        encoder = dataclasses.replace(config.encoder, sync_bn=self.global_bn)
        return dataclasses.replace(config, encoder=encoder, jit_compile=self.jit_compile)


def runtime_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Runtime:
    """The Runtime the flags describe; ValueError (one line) for inconsistent values."""
    fv = flag_values
    return Runtime(
        strategy=StrategyConfig(
            name=fv.strategy, tpu=fv.tpu or None, connect_timeout_s=fv.multi_worker_timeout
        ),
        checkpoints=CheckpointConfig(
            every_steps=fv.checkpoint_every or None, keep=fv.keep_checkpoints, fresh=fv.fresh
        ),
        global_bn=fv.global_bn,
        jit_compile=JIT_MODES[fv.jit_compile],
        deterministic=fv.deterministic,
    )


# Flags that do not change what a run measures: a completed run rerun with other values of
# these is the same run (see `completed_run`).
RUN_CONTROL_FLAGS = (
    "output_dir",
    "fresh",
    "verbose",
    "keep_checkpoints",
    "checkpoint_every",
    "workers",
    "dry_run",
    "multi_worker_timeout",
    "jit_compile",
    "tpu",
)


def completed_run(output_dir: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The completed results of this configuration in `output_dir`, which a rerun reports
    instead of training again; None to run or resume (an unfinished run's checkpoints decide
    whether it can resume: a preempted run may come back on another TPU or strategy).

    Raises OutputDirError when the folder holds a run of another configuration: a completed
    one, or an interrupted or failed one whose settings other than the run-control flags and
    --strategy differ (its checkpoints hold the model's settings, not the data's, the
    augmentation's or the evaluation's, so resuming would mix two configurations).
    """
    try:
        status = read_results(output_dir)["status"]
    except (FileNotFoundError, ResultsFileError):
        return None
    if status != "completed":
        previous_results(output_dir, config, ignore=(*RUN_CONTROL_FLAGS, "strategy"))
        return None
    return previous_results(output_dir, config, ignore=RUN_CONTROL_FLAGS)


def start_run(
    output_dir: str, config: Mapping[str, Any], *, seed: int, chief: bool = True
) -> dict[str, Any] | None:
    """`completed_run`; when there is none, the chief records the run as "running" with its
    config before it trains, so that a run killed without a word (SIGKILL, a lost host) is
    still resumed only under the settings it started with."""
    finished = completed_run(output_dir, config)
    if finished is None and chief:
        write_results(
            output_dir, rows=[], config=config, seed=seed, wall_time_s=0.0, status="running"
        )
    return finished


@contextlib.contextmanager
def output_run(
    output_dir: str,
    *,
    config: Mapping[str, Any],
    seed: int,
    fresh: bool = False,
    chief: bool = True,
) -> Iterator[str]:
    """A run's hold on its output folder: yields it, locked (`lock_output_dir`), while the
    block runs; records how the block ended when it did not finish.

    Only the chief (the process that writes results and checkpoints) takes the lock, and
    with `fresh` (a run started over) deletes the folder's earlier results. When the
    block raises NonFiniteLossError or CheckpointError, results.json gets status "failed" with
    the error; Ctrl-C or SIGTERM (KeyboardInterrupt) gives status "interrupted". Either way a
    completed results.json already there is kept (`write_results`), and the error re-raised.
    """
    holding = lock_output_dir(output_dir) if chief else contextlib.nullcontext(output_dir)
    with holding:
        if fresh and chief:
            remove_results(output_dir)
        started = time.perf_counter()
        try:
            yield output_dir
        except (NonFiniteLossError, CheckpointError, KeyboardInterrupt) as error:
            if chief:
                status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
                write_results(
                    output_dir,
                    rows=[],
                    config=config,
                    seed=seed,
                    wall_time_s=time.perf_counter() - started,
                    status=status,
                    extra={"error": f"{type(error).__name__}: {error}"},
                )
            raise
