"""Contrastive pretraining with Keras `fit`: one driver for every experiment, any strategy,
any precision, resumable after preemption."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf

from cl_properties.distribute import (
    describe,
    format_description,
    is_chief,
    resolve_jit_compile,
    strategy_kind,
)
from cl_properties.models import ProjectionHead, build_auxiliary_model, build_encoder
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.optimization import build_optimizer
from cl_properties.training.callbacks import (
    HISTORY_JSON,
    Interrupted,
    LoopHistory,
    PeriodicCheckpoint,
    StopOnNonFinite,
    describe_last_checkpoint,
)
from cl_properties.training.checkpoints import CheckpointManager
from cl_properties.training.config import CheckpointConfig, PretrainConfig

LOGS_SUBDIR = "logs"

# (input_context or None, global steps already trained) -> batches of ((view1, view2), labels),
# sized per replica when an input context is given (`input_context.get_per_replica_batch_size`);
# each pipeline then skips what its replicas consumed in those steps (see `two_view_dataset`).
DatasetFn = Callable[[tf.distribute.InputContext | None, int], tf.data.Dataset]


@dataclass
class PretrainResult:
    """A trained model and its run.

    history: per-loop metrics of the whole run (a resumed run included the loops before the
    resume); final_metrics: the last loop's; distribution: `describe` of the strategy plus
    jit_compile and precision (for results.json); resumed_from_step: 0 for a fresh start.
    """

    model: ContrastiveModel
    history: dict[str, list[float]]
    final_metrics: dict[str, float]
    distribution: dict[str, Any] = field(default_factory=dict)
    resumed_from_step: int = 0


def build_config_encoder(config: PretrainConfig, input_shape: Sequence[int]) -> keras.Model:
    """The encoder `config.encoder` names, for images of `input_shape`, freshly initialized
    (from Keras's global seed): the one architecture every model of a run shares."""
    return build_encoder(
        config.encoder.name,
        input_shape=tuple(input_shape),
        width_multiplier=config.encoder.width_multiplier,
        cifar_stem=config.encoder.cifar_stem,
        sync_bn=config.encoder.sync_bn,
    )


def build_contrastive_model(
    config: PretrainConfig,
    *,
    input_shape: Sequence[int],
    probes: Mapping[str, int],
    image_channels: int | None = None,
) -> ContrastiveModel:
    """Encoder + head + loss + one online probe per label key, as `config` says, and its
    auxiliary objective if it has one (`build_auxiliary_model`; `image_channels`: the input's
    first channels that are the image's, the rest appended by a view transform; None: all)."""
    encoder = build_config_encoder(config, input_shape)
    head = ProjectionHead(
        depth=config.head.depth,
        hidden_dim=config.head.hidden_dim,
        output_dim=config.head.output_dim,
        sync_bn=config.encoder.sync_bn,
    )
    loss = config.loss.build(seed=config.seed)
    options = dict(probes=probes, bn_views=config.bn_views, probe_views=config.probe_views)
    if config.auxiliary is None:
        return ContrastiveModel(encoder, head, loss, **options)
    return build_auxiliary_model(
        config.auxiliary.name,
        encoder,
        head,
        loss,
        image_channels=image_channels,
        arguments=config.auxiliary.arguments,
        **options,
    )


def _work_around_keras_strategies(model: ContrastiveModel, kind: str) -> None:
    """Lets Keras 3 `fit`/`evaluate` run under every strategy (keras-team/keras#20585).

    1. Under a strategy Keras builds the model "symbolically" before the first step from a
       first batch reduced over the replicas, a reduction of a nested batch that the
       multi-worker (and TPU) strategies reject. The model and optimizer are built
       already, so that step has nothing to do and is skipped.
    2. Under MultiWorkerMirroredStrategy Keras reduces each step's outputs with
       `strategy.reduce("MEAN", v, axis=0)`, which rejects scalars: the steps return them
       with a leading axis of 1, which the reduction removes (leaving the mean over
       replicas of the per-replica metric values, as under MirroredStrategy).
    """
    if kind == "default":
        return
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if kind != "multi_worker":
        return
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def with_leading_axis(data, step=step):
            return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

        setattr(model, name, with_leading_axis)


def _clear_run(model_dir: str, manager: CheckpointManager) -> None:
    """What a fresh start discards: checkpoints, the history summary and TensorBoard logs."""
    manager.clear()
    shutil.rmtree(os.path.join(model_dir, LOGS_SUBDIR), ignore_errors=True)
    history = os.path.join(model_dir, HISTORY_JSON)
    if os.path.exists(history):
        os.remove(history)


def loop_steps(config: PretrainConfig, checkpoints: CheckpointConfig) -> tuple[int, int]:
    """(steps per loop, steps between checkpoints) of a run; ValueError unless the training
    steps and the checkpoint interval are whole loops. Programs check it before they touch
    their output folder."""
    steps_per_loop = min(config.steps_per_loop, config.train_steps)
    if config.train_steps % steps_per_loop:
        raise ValueError(
            f"train_steps ({config.train_steps}) must be a multiple of steps_per_loop "
            f"({steps_per_loop})"
        )
    every_steps = checkpoints.every_steps or steps_per_loop
    if every_steps % steps_per_loop:
        raise ValueError(
            f"checkpoint interval {every_steps} must be a multiple of steps_per_loop "
            f"({steps_per_loop})"
        )
    return steps_per_loop, every_steps


def pretrain(
    config: PretrainConfig,
    *,
    input_shape: Sequence[int],
    probes: Mapping[str, int],
    train_data: DatasetFn,
    image_channels: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    model_dir: str | None = None,
    checkpoints: CheckpointConfig = CheckpointConfig(),
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> PretrainResult:
    """Builds the model under `strategy` and trains it for `config.train_steps` steps.

    `image_channels`: the input's first channels that are the image's (None: all), for an
    auxiliary objective that weighs them apart from appended ones (`build_contrastive_model`).

    - Distribution: `config.batch_size` is the global batch, split evenly over the replicas
      (ValueError otherwise); with several replicas `train_data(input_context, start)` is
      called once per input pipeline and must yield per-replica batches. XLA follows
      `resolve_jit_compile(strategy, config.jit_compile)`. The strategy summary is printed
      (unless verbose=0) and returned in `PretrainResult.distribution`.
    - Precision: the model is built under the Keras dtype policy `config.precision` (the
      global policy is restored on return); the loss terms and probes compute in float32;
      mixed_float16 wraps the optimizer in a dynamic `LossScaleOptimizer`.
    - Checkpoints (when `model_dir` is given): see `CheckpointConfig` and
      `cl_properties.training.checkpoints`. The run resumes from the latest checkpoint in
      `model_dir/checkpoints`: weights, optimizer state (hence the step seen by the SWD
      projection and the schedule), seed-generator states, and the data position (the data
      function is called with `start` = global steps done). A corrupt or incompatible
      checkpoint raises CheckpointError. The per-loop history goes to `model_dir/history.json`
      and TensorBoard summaries to `model_dir/logs` (chief only).
    - A NaN or Inf loss raises NonFiniteLossError at the end of its loop; the checkpoints
      written before it are kept.
    - Ctrl-C (KeyboardInterrupt, or `Interrupted` from a SIGTERM handler) raises
      `Interrupted` naming the step reached and the last checkpoint, which a rerun resumes.
    """
    strategy = strategy or tf.distribute.get_strategy()
    steps_per_loop, every_steps = loop_steps(config, checkpoints)
    distribution = describe(strategy, config.batch_size)
    jit_compile = resolve_jit_compile(strategy, config.jit_compile)
    distribution.update(jit_compile=jit_compile, precision=config.precision)
    if verbose != 0:
        print(format_description(distribution), flush=True)
    chief = is_chief(strategy)
    manager = (
        CheckpointManager(model_dir, keep=checkpoints.keep, chief=chief) if model_dir else None
    )
    if manager is not None and chief:
        if checkpoints.fresh:
            _clear_run(model_dir, manager)
        manager.remove_partial()

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model = build_contrastive_model(
                config, input_shape=input_shape, probes=probes, image_channels=image_channels
            )
            optimizer = build_optimizer(
                config.optimizer,
                batch_size=config.batch_size,
                total_steps=config.train_steps,
                model=model,
            )
            if config.precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, jit_compile=jit_compile)
            # Built now, so that a checkpoint's optimizer state has variables to load into.
            optimizer.build(model.trainable_variables)
            resumed = None
            if manager is not None and not checkpoints.fresh:
                resumed = manager.restore(model, config=config.to_dict())
        _work_around_keras_strategies(model, strategy_kind(strategy))
        start = resumed["step"] if resumed else 0
        if verbose != 0 and resumed:
            print(f"resuming from step {start} ({manager.committed()[-1][1]})", flush=True)

        # Exactly the steps left: at the end of fit, tearing down an endless stream mid-way
        # cost 14 s per 200 steps of the RandBit default here (benchmarks/profile_randbit.py).
        left = config.train_steps - start
        if strategy.num_replicas_in_sync > 1:
            # A pipeline feeds num_replicas / num_input_pipelines batches per global step.
            dataset = strategy.distribute_datasets_from_function(
                lambda ctx: train_data(ctx, start).take(
                    left * ctx.num_replicas_in_sync // ctx.num_input_pipelines
                )
            )
        else:
            dataset = train_data(None, start).take(left)
        history = LoopHistory(resumed["history"] if resumed else None)
        run_callbacks: list[keras.callbacks.Callback] = [
            StopOnNonFinite(
                steps_per_loop=steps_per_loop,
                last_checkpoint=lambda: describe_last_checkpoint(manager),
            ),
            history,
        ]
        if manager is not None:
            run_callbacks.append(
                PeriodicCheckpoint(
                    manager,
                    model_dir=model_dir,
                    steps_per_loop=steps_per_loop,
                    every_steps=every_steps,
                    total_steps=config.train_steps,
                    config=config.to_dict(),
                    history=history,
                )
            )
        run_callbacks += list(callbacks)
        if model_dir and chief:
            run_callbacks.append(
                keras.callbacks.TensorBoard(log_dir=os.path.join(model_dir, LOGS_SUBDIR))
            )
        try:
            model.fit(
                dataset,
                epochs=config.train_steps // steps_per_loop,
                steps_per_epoch=steps_per_loop,
                initial_epoch=start // steps_per_loop,
                callbacks=run_callbacks,
                shuffle=False,  # the data function orders the stream (and resumes it)
                verbose=verbose,
            )
        except KeyboardInterrupt as interrupt:
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            raise Interrupted(
                f"interrupted at step {step} of {config.train_steps}; "
                f"{describe_last_checkpoint(manager)}; "
                "rerun the same command to resume",
                getattr(interrupt, "signal_number", signal.SIGINT),
            ) from None
    finally:
        keras.config.set_dtype_policy(previous_policy)
    final = {name: values[-1] for name, values in history.history.items() if values}
    return PretrainResult(
        model=model,
        history=history.history,
        final_metrics=final,
        distribution=distribution,
        resumed_from_step=start,
    )
