"""Keras callbacks of the pretraining driver: loop history, non-finite guard, checkpoints,
and a step timer for the experiments' rows.

In `pretrain` one Keras "epoch" is one loop of `steps_per_loop` steps, so loop `e` ends
after step `(e + 1) * steps_per_loop`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from cl_properties.results import atomic_write_text
from cl_properties.training.checkpoints import CheckpointManager

HISTORY_JSON = "history.json"


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or Inf loss (or weights); the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT) or SIGTERM; what it wrote before is kept.

    `signal_number` is the signal that stopped it (the exit status is 128 + it)."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT):
        super().__init__(message)
        self.signal_number = int(signal_number)


def _finite(value: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))


class LoopHistory(keras.callbacks.Callback):
    """Per-loop metrics of the whole run: those of the resumed checkpoint, then this fit's."""

    def __init__(self, history: Mapping[str, Sequence[float]] | None = None):
        super().__init__()
        self.history: dict[str, list[float]] = {
            k: [float(x) for x in v] for k, v in (history or {}).items()
        }

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(np.asarray(value)))


class StepTimer(keras.callbacks.Callback):
    """Mean wall-clock seconds of a training step after the first `skip` steps, which trace
    (and maybe compile) the step function and would dominate a short run.

    Measured between step ends, so the input pipeline and the other callbacks' per-step work
    count, as they do in a run. `mean_seconds` is None until a step after `skip` has ended
    (e.g. a run of `skip` steps or fewer).
    """

    def __init__(self, skip: int = 1):
        super().__init__()
        if skip < 1:
            raise ValueError(f"skip must be >= 1 (the first step traces), got {skip}")
        self.skip = skip
        self.steps = 0
        self._first: float | None = None  # time at the end of step `skip`
        self._last: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1  # counted over the whole fit: Keras numbers batches per epoch
        now = time.perf_counter()
        if self.steps == self.skip:
            self._first = now
        self._last = now

    @property
    def mean_seconds(self) -> float | None:
        timed = self.steps - self.skip
        return (self._last - self._first) / timed if timed > 0 else None


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises NonFiniteLossError at the end of a loop whose logged metrics are not finite.

    A loop's logs are means over its steps, so one NaN or Inf loss at any step shows at the
    loop's end, without a host synchronization per step. It must run before the checkpoint
    callback, so the diverged state is never saved. `last_checkpoint()` describes the last
    good checkpoint for the message.
    """

    def __init__(self, *, steps_per_loop: int, last_checkpoint: Callable[[], str]):
        super().__init__()
        self.steps_per_loop = steps_per_loop
        self.last_checkpoint = last_checkpoint

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: float(np.asarray(v)) for k, v in (logs or {}).items() if not _finite(v)}
        if bad:
            first, last = epoch * self.steps_per_loop + 1, (epoch + 1) * self.steps_per_loop
            values = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            raise NonFiniteLossError(
                f"training stopped: non-finite {values} in steps {first}-{last}; "
                f"{self.last_checkpoint()}"
            )


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `every_steps` steps (a multiple of `steps_per_loop`) and after
    `total_steps`, and writes the run's history to `model_dir/history.json` (atomically)
    with each one.

    Raises NonFiniteLossError instead of saving weights that are not finite.
    """

    def __init__(
        self,
        manager: CheckpointManager,
        *,
        model_dir: str,
        steps_per_loop: int,
        every_steps: int,
        total_steps: int,
        config: Mapping[str, Any],
        history: LoopHistory,
    ):
        super().__init__()
        self.manager = manager
        self.model_dir = model_dir
        self.steps_per_loop = steps_per_loop
        self.every_steps = every_steps
        self.total_steps = total_steps
        self.config = dict(config)
        self.loop_history = history

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.steps_per_loop
        if step % self.every_steps and step != self.total_steps:
            return
        if not all(_finite(keras.ops.convert_to_numpy(v)) for v in self.model.trainable_variables):
            raise NonFiniteLossError(
                f"training stopped: the weights are not finite after step {step}; "
                f"{describe_last_checkpoint(self.manager)}"
            )
        self.manager.save(
            self.model, step=step, config=self.config, history=self.loop_history.history
        )
        if self.manager.chief:
            atomic_write_text(
                os.path.join(self.model_dir, HISTORY_JSON),
                json.dumps({"step": step, "history": self.loop_history.history}, indent=1) + "\n",
            )


def describe_last_checkpoint(manager: CheckpointManager | None) -> str:
    """A phrase naming the last good checkpoint, for error messages."""
    if manager is None:
        return "no model_dir was given, so there is no checkpoint"
    step = manager.latest_step()
    if step is None:
        return f"no checkpoint was written yet in {manager.directory}"
    return f"the last good checkpoint, step {step}, is kept in {manager.directory}"
