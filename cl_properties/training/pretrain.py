"""Contrastive pretraining with Keras `fit`: one driver for every experiment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

from cl_properties.losses import ContrastiveLoss
from cl_properties.models import ProjectionHead, build_encoder
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.optimization import build_optimizer
from cl_properties.training.config import PretrainConfig

# (input_context or None, first batch to yield) -> batches of ((view1, view2), labels), sized
# per replica when an input context is given (`input_context.get_per_replica_batch_size`).
DatasetFn = Callable[[tf.distribute.InputContext | None, int], tf.data.Dataset]


@dataclass
class PretrainResult:
    model: ContrastiveModel
    history: dict[str, list[float]]
    final_metrics: dict[str, float]


def build_contrastive_model(
    config: PretrainConfig, *, input_shape: Sequence[int], probes: Mapping[str, int]
) -> ContrastiveModel:
    """Encoder + head + loss + one online probe per label key, as `config` says."""
    encoder = build_encoder(
        config.encoder.name,
        input_shape=tuple(input_shape),
        width_multiplier=config.encoder.width_multiplier,
        cifar_stem=config.encoder.cifar_stem,
        sync_bn=config.encoder.sync_bn,
    )
    head = ProjectionHead(
        depth=config.head.depth,
        hidden_dim=config.head.hidden_dim,
        output_dim=config.head.output_dim,
        sync_bn=config.encoder.sync_bn,
    )
    loss = ContrastiveLoss(
        method=config.loss.method,
        prior=config.loss.prior,
        temperature=config.loss.temperature,
        lambda_weight=config.loss.lambda_weight,
        normalize=config.loss.normalize,
        seed=config.seed,
    )
    return ContrastiveModel(encoder, head, loss, probes=probes)


def pretrain(
    config: PretrainConfig,
    *,
    input_shape: Sequence[int],
    probes: Mapping[str, int],
    train_data: DatasetFn,
    strategy: tf.distribute.Strategy | None = None,
    model_dir: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> PretrainResult:
    """Builds the model under `strategy` and trains it for `config.train_steps` steps.

    The data function is called once with the first batch to read, so a resumed run
    continues the same stream. Logs go to TensorBoard under `model_dir/logs` when given.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"global batch {config.batch_size} is not divisible by the {replicas} replicas"
        )
    steps_per_loop = min(config.steps_per_loop, config.train_steps)
    if config.train_steps % steps_per_loop:
        raise ValueError(
            f"train_steps ({config.train_steps}) must be a multiple of steps_per_loop ({steps_per_loop})"
        )
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_contrastive_model(config, input_shape=input_shape, probes=probes)
        optimizer = build_optimizer(
            config.optimizer, batch_size=config.batch_size, total_steps=config.train_steps, model=model
        )
        model.compile(optimizer=optimizer, jit_compile=bool(config.jit_compile))
    start_batch = 0
    if replicas > 1:
        dataset = strategy.distribute_datasets_from_function(lambda ctx: train_data(ctx, start_batch))
    else:
        dataset = train_data(None, start_batch)
    all_callbacks = list(callbacks)
    if model_dir:
        all_callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(model_dir, "logs")))
    history = model.fit(
        dataset,
        epochs=config.train_steps // steps_per_loop,
        steps_per_epoch=steps_per_loop,
        initial_epoch=start_batch // steps_per_loop,
        callbacks=all_callbacks,
        verbose=verbose,
    )
    final = {name: float(values[-1]) for name, values in history.history.items()}
    return PretrainResult(model=model, history=history.history, final_metrics=final)
