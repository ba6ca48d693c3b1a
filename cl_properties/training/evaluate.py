"""Pretrain, then measure the representation three ways: online probes, linear eval, kNN.

Every experiment reports these same numbers for each label key, so one function serves
the Figure 1 study, the feature-suppression sweeps and the benchmark suite.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from cl_properties.data import (
    AugmentConfig,
    EvalPreprocess,
    ViewTransform,
    eval_dataset,
    two_view_dataset,
)
from cl_properties.evaluation import (
    extract_features,
    knn_accuracy,
    linear_eval,
    linear_eval_augmented,
)
from cl_properties.training.config import CheckpointConfig, PretrainConfig
from cl_properties.training.pretrain import PretrainResult, pretrain


@dataclass(frozen=True)
class DataSpec:
    """What a run trains and evaluates on.

    `train` and `test` are sources (records `{"image", "labels", "index"}`); `probes` maps
    each label key to its number of classes. `view_transform` (e.g. RandBit) is applied
    after augmentation and at evaluation.
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    input_shape: tuple[int, int, int]  # of the encoder input, view-transform channels included
    probes: Mapping[str, int]
    augment: AugmentConfig
    view_transform: ViewTransform | None = None
    eval_preprocess: EvalPreprocess = field(default_factory=EvalPreprocess)
    shuffle_buffer: int = 10_000

    @property
    def image_channels(self) -> int:
        """Channels of the images themselves: the input's, less those the view transform
        appends (RandBit's bit planes)."""
        added = 0 if self.view_transform is None else self.view_transform.channels_added()
        return int(self.input_shape[-1]) - added


# The linear probe's protocols: "frozen", a classifier on precomputed features of the plain
# training images (standardized, fast); "simclr", SimCLR's own (`tf2/run.py`): freshly
# cropped and flipped training images every step, a zero-initialized classifier, batch 512.
LINEAR_PROTOCOLS = ("frozen", "simclr")
SIMCLR_LINEAR_BATCH = 512


@dataclass(frozen=True)
class EvalConfig:
    """Offline evaluation of the frozen encoder: the linear probe (`linear_protocol`, one of
    LINEAR_PROTOCOLS, for `linear_epochs` passes over the training set) and weighted kNN."""

    linear_epochs: int = 90
    linear_learning_rate: float = 0.1
    knn_k: int = 200
    knn_temperature: float = 0.1
    batch_size: int = 256
    offline: bool = True  # False: online probes only (paper-scale runs evaluate separately)
    linear_protocol: str = "frozen"

    def __post_init__(self):
        if self.linear_protocol not in LINEAR_PROTOCOLS:
            raise ValueError(
                f"linear_protocol must be one of {LINEAR_PROTOCOLS}, got {self.linear_protocol!r}"
            )


def training_views(
    config: PretrainConfig,
    data: DataSpec,
    *,
    input_context: tf.distribute.InputContext | None = None,
    start_step: int = 0,
    first_view_only: bool = False,
) -> tf.data.Dataset:
    """The stream a run of `config` trains on: batches `((view1, view2), labels)` of
    `data.train` (its augmentation and view transform, shuffled by `config.seed`), from
    step `start_step`; `first_view_only`: batches `(view1, labels)` of the same view 1.
    `config.batch_size` is the global batch: with an input context the batches are per
    replica (`two_view_dataset`)."""
    return two_view_dataset(
        data.train,
        data.augment,
        batch_size=config.batch_size,
        seed=config.seed,
        shuffle_buffer=data.shuffle_buffer,
        view_transform=data.view_transform,
        input_context=input_context,
        start_step=start_step,
        first_view_only=first_view_only,
    )


def eval_batches(
    data: DataSpec, source: tf.data.Dataset, evaluation: EvalConfig
) -> tf.data.Dataset:
    """Un-augmented batches of `source` as evaluation sees them (view transform applied)."""
    return eval_dataset(
        source,
        batch_size=evaluation.batch_size,
        preprocess=data.eval_preprocess,
        view_transform=data.view_transform,
    )


def _simclr_linear_batches(data: DataSpec, seed: int) -> tf.data.Dataset:
    """Endless (images, labels) batches of SIMCLR_LINEAR_BATCH training images, each
    cropped (area 0.08-1) and flipped anew (SimCLR's linear-evaluation augmentation, no
    colour; the data's output size and view transform kept)."""
    augment = dataclasses.replace(
        data.augment,
        crop=True,
        crop_area=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
        color_jitter=False,
        blur=False,
        extra_layers=(),
    )
    return two_view_dataset(
        data.train,
        augment,
        batch_size=SIMCLR_LINEAR_BATCH,
        seed=seed,
        shuffle_buffer=data.shuffle_buffer,
        view_transform=data.view_transform,
        first_view_only=True,
    )


def probe_frozen_features(
    represent: Callable[[tf.Tensor], tf.Tensor],
    data: DataSpec,
    evaluation: EvalConfig,
    *,
    seed: int,
) -> dict[str, float]:
    """`linear_<key>` and `knn_<key>` for every probe of `data`, on frozen features
    `represent(images)` of the un-augmented train and test images (the linear probe by
    `evaluation.linear_protocol`: on those features, or SimCLR's on augmented images, every
    key's classifier on the same batches), and `chance_<key>`: the accuracy of always
    answering the test set's most frequent label (its chance level, which differs from
    1 / classes when the labels are unbalanced or some classes never occur, e.g. a digit
    drawn from a pool of K < 10 images).

    The linear probe is SimCLR's (`linear_eval`: a linear classifier trained on the train
    features); kNN is the weighted vote of `knn_accuracy`. Every model of every experiment
    (contrastive, VAE, supervised) is measured by this one function.
    """
    train_x, train_y = extract_features(represent, eval_batches(data, data.train, evaluation))
    test_x, test_y = extract_features(represent, eval_batches(data, data.test, evaluation))
    simclr = evaluation.linear_protocol == "simclr"
    augmented = {}
    if simclr and data.probes:
        # One classifier per key on the same augmented batches: one encoder pass per batch.
        augmented = linear_eval_augmented(
            represent,
            _simclr_linear_batches(data, seed),
            evaluation.linear_epochs * -(-len(train_x) // SIMCLR_LINEAR_BATCH),
            train_x,
            train_y,
            test_x,
            test_y,
            num_classes=data.probes,
            batch_size=SIMCLR_LINEAR_BATCH,
            learning_rate=evaluation.linear_learning_rate,
        )
    metrics = {}
    for key, classes in data.probes.items():
        if simclr:
            linear = augmented[key]
        else:
            linear = linear_eval(
                train_x,
                train_y[key],
                test_x,
                test_y[key],
                epochs=evaluation.linear_epochs,
                batch_size=evaluation.batch_size,
                learning_rate=evaluation.linear_learning_rate,
                seed=seed,
                num_classes=classes,
            )
        metrics[f"chance_{key}"] = float(np.bincount(test_y[key]).max() / len(test_y[key]))
        metrics[f"linear_{key}"] = float(linear.test_accuracy)
        metrics[f"knn_{key}"] = float(
            knn_accuracy(
                train_x,
                train_y[key],
                test_x,
                test_y[key],
                k=evaluation.knn_k,
                temperature=evaluation.knn_temperature,
                num_classes=classes,
            )
        )
    return metrics


def train_and_evaluate(
    config: PretrainConfig,
    data: DataSpec,
    *,
    evaluation: EvalConfig = EvalConfig(),
    strategy: tf.distribute.Strategy | None = None,
    model_dir: str | None = None,
    checkpoints: CheckpointConfig = CheckpointConfig(),
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> tuple[PretrainResult, dict[str, float]]:
    """Pretrains with `config` on `data` and returns the result and a flat dict of metrics.

    Metrics: `online_<key>` (the online probe's test accuracy), `linear_<key>` (linear
    classifier trained on frozen train-split features), `knn_<key>` (weighted kNN), the final
    training loss terms (`train_<name>`), and `pretrain_seconds`. `strategy`, `model_dir`
    and `checkpoints` go to `pretrain` (a rerun resumes from model_dir's checkpoints);
    `result.distribution` describes the strategy for results.json.
    """
    started = time.perf_counter()

    result = pretrain(
        config,
        input_shape=data.input_shape,
        probes=data.probes,
        image_channels=data.image_channels,
        train_data=lambda context, start_step: training_views(
            config, data, input_context=context, start_step=start_step
        ),
        strategy=strategy,
        model_dir=model_dir,
        checkpoints=checkpoints,
        callbacks=callbacks,
        verbose=verbose,
    )
    metrics = {f"train_{k}": v for k, v in result.final_metrics.items()}
    metrics["pretrain_seconds"] = time.perf_counter() - started

    online = result.model.evaluate(
        eval_batches(data, data.test, evaluation), return_dict=True, verbose=0
    )
    for key in data.probes:
        metrics[f"online_{key}"] = float(online[f"probe_{key}_accuracy"])
    if evaluation.offline:
        metrics.update(probe_frozen_features(result.model, data, evaluation, seed=config.seed))
    return result, metrics
