"""tf.data input pipelines: two-view pretraining batches and evaluation batches.

Pretraining stream (per input pipeline):

    source -> shard (multi-host) -> for epoch e = 0, 1, ...: shuffle with seed f(seed, e)
    -> skip (resume) -> two views per record, view v seeded by (seed, index, e, v)
    -> view transform -> batch -> prefetch

Everything random is a function of `seed` (and of the epoch and the record's `index`), so
two builds give the same stream, and `start_step=k` continues exactly where global step k
of an uninterrupted run would read, with or without distribution. Batches run across epoch
boundaries (the stream repeats before batching, as in SimCLR).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Protocol

import tensorflow as tf

from cl_properties.data.augment import AugmentConfig, EvalPreprocess, augment_image, example_seed

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 10_000

# Salt separating the shuffle seeds from the per-view augmentation seeds.
_SHUFFLE_SALT = 2
# Graph-level seed pinned inside the per-epoch function: with it, `Dataset.shuffle`'s order
# depends only on its op seed, not on whatever global seed (tf.random.set_seed) is set.
# Nonzero: TF compares the seed pair with (0, 0), which fails on a tensor op seed.
_PINNED_GRAPH_SEED = 1


class ViewTransform(Protocol):
    """Applied after augmentation (e.g. RandBit's bit planes, which are never augmented)."""

    def views(
        self, record: dict, view1: tf.Tensor, view2: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]: ...

    def single(self, record: dict, image: tf.Tensor) -> tf.Tensor: ...

    def channels_added(self) -> int: ...


def view_shape(
    image_shape: Sequence[int], view_transform: ViewTransform | None = None
) -> tuple[int, int, int]:
    """[H, W, C + k] of the views of [H, W, C] images, k being the channels `view_transform`
    appends (its `channels_added()`): the encoder's input shape, without resizing."""
    height, width, channels = image_shape
    added = 0 if view_transform is None else view_transform.channels_added()
    return height, width, channels + added


def _check_int(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_source(source: tf.data.Dataset) -> None:
    if not isinstance(source, tf.data.Dataset):
        raise ValueError(f"source must be a tf.data.Dataset, got {type(source).__name__}")
    spec = source.element_spec
    if not isinstance(spec, dict) or not {"image", "labels", "index"} <= set(spec):
        raise ValueError(
            f"source records must be dicts with keys image, labels, index; got element_spec {spec}"
        )


def _check_fixed_size(source: tf.data.Dataset, output_size, what: str) -> None:
    """Batching needs one image size: varying-size sources need an output size."""
    shape = source.element_spec["image"].shape
    if output_size is None and (shape.rank != 3 or None in shape[:2]):
        raise ValueError(f"source images have varying size {shape}: set {what} to batch them")


def _shard(
    source: tf.data.Dataset, batch_size: int, input_context: tf.distribute.InputContext | None
) -> tuple[tf.data.Dataset, int]:
    """This input pipeline's shard of the source, and its (per-replica) batch size."""
    if input_context is None:
        return source, batch_size
    source = source.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return source, input_context.get_per_replica_batch_size(batch_size)


def _records_per_step(batch_size: int, input_context: tf.distribute.InputContext | None) -> int:
    """Records one input pipeline yields per global step: a per-replica batch for each of the
    replicas it feeds (Mirrored: all of them; multi-worker: those of its worker)."""
    if input_context is None:
        return batch_size
    pipelines, replicas = input_context.num_input_pipelines, input_context.num_replicas_in_sync
    if replicas % pipelines:
        raise ValueError(
            f"{replicas} replicas cannot be split evenly over {pipelines} input pipelines"
        )
    return input_context.get_per_replica_batch_size(batch_size) * (replicas // pipelines)


def _shuffle_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """An int64 scalar drawn statelessly from (seed, epoch): the shuffle's op seed."""
    key = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, _SHUFFLE_SALT], tf.int64), tf.cast(epoch, tf.int64)
    )
    return tf.random.stateless_uniform([], seed=key, minval=None, maxval=None, dtype=tf.int64)


def two_view_dataset(
    source: tf.data.Dataset,
    augment: AugmentConfig,
    *,
    batch_size: int,
    seed: int,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    repeat: bool = True,
    view_transform: ViewTransform | None = None,
    input_context: tf.distribute.InputContext | None = None,
    drop_remainder: bool = True,
    start_step: int = 0,
    first_view_only: bool = False,
) -> tf.data.Dataset:
    """Batches `((view1, view2), labels)` for contrastive pretraining.

    Each epoch e (0, 1, ...; only epoch 0 if repeat=False) reads the source (this pipeline's
    shard of it when `input_context` is given) through a `shuffle_buffer`-record shuffle
    seeded by (seed, e); each record gives view v = augment_image(image, augment,
    example_seed(seed, index, e, v)) for v = 1, 2, then `view_transform.views(record, view1,
    view2)` if given. Views float32 [B, h, w, C + channels_added]; labels name -> int32 [B].
    `first_view_only=True` gives batches `(view1, labels)` of the same view 1 without
    augmenting view 2 (half the augmentation work: the single-view baselines' stream), for
    view transforms whose first view depends on the record and view 1 only.

    batch_size is the global batch; with an input_context the batches hold
    `input_context.get_per_replica_batch_size(batch_size)` examples (for
    `strategy.distribute_datasets_from_function`). `start_step=k` resumes after k global
    steps: each pipeline skips the k * batch_size / num_input_pipelines records its replicas
    consumed (all k * batch_size without an input context), without augmenting them (whole
    epochs are skipped without reading them when the source size is known). The same
    arguments always give the same stream, whatever global TF seed is set.

    Raises ValueError for batch_size < 1, shuffle_buffer < 1, start_step < 0, a non-int
    seed, an empty source, a source not in the shared record format, varying-size images
    without `augment.output_size`, or replicas not divisible by the input pipelines.
    """
    if not isinstance(augment, AugmentConfig):
        raise ValueError(f"augment must be an AugmentConfig, got {type(augment).__name__}")
    _check_int(batch_size, "batch_size", 1)
    _check_int(shuffle_buffer, "shuffle_buffer", 1)
    _check_int(start_step, "start_step", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    _check_source(source)
    _check_fixed_size(source, augment.output_size, "AugmentConfig.output_size")

    source, per_replica_batch = _shard(source, batch_size, input_context)
    size = tf.get_static_value(source.cardinality())  # < 0: infinite or unknown
    if size == 0:
        raise ValueError("the source (or this input pipeline's shard of it) is empty")
    skip = start_step * _records_per_step(batch_size, input_context)
    first_epoch, offset = 0, skip
    if repeat and size is not None and size > 0:
        first_epoch, offset = divmod(skip, int(size))

    def epoch_records(epoch: tf.Tensor) -> tf.data.Dataset:
        # Traced in graph mode: this pins the seed of this function's graph only.
        tf.random.set_seed(_PINNED_GRAPH_SEED)
        shuffled = source.shuffle(
            shuffle_buffer, seed=_shuffle_seed(seed, epoch), reshuffle_each_iteration=False
        )
        return shuffled.map(lambda record: (record, epoch))

    epochs = tf.data.Dataset.counter(first_epoch) if repeat else tf.data.Dataset.range(1)
    records = epochs.flat_map(epoch_records).skip(offset)

    def make_views(record: dict, epoch: tf.Tensor):
        image, index = record["image"], record["index"]
        view1 = augment_image(image, augment, example_seed(seed, index, epoch, 1))
        if first_view_only:
            if view_transform is not None:
                view1 = view_transform.views(record, view1, view1)[0]
            return view1, record["labels"]
        view2 = augment_image(image, augment, example_seed(seed, index, epoch, 2))
        if view_transform is not None:
            view1, view2 = view_transform.views(record, view1, view2)
        return (view1, view2), record["labels"]

    dataset = records.map(make_views, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(per_replica_batch, drop_remainder=drop_remainder)
    return _pipeline_options(dataset.prefetch(AUTOTUNE))


def eval_dataset(
    source: tf.data.Dataset,
    *,
    batch_size: int,
    preprocess: Callable[[tf.Tensor], tf.Tensor] = EvalPreprocess(),
    view_transform: ViewTransform | None = None,
    input_context: tf.distribute.InputContext | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches `(image, labels)` for evaluation, in source order, one pass.

    image = preprocess(record image) (default: unchanged; `imagenet_eval_preprocess()` for
    ImageNet), then `view_transform.single(record, image)` if given. Sharding and the
    per-replica batch size follow `two_view_dataset`. Raises ValueError for batch_size < 1
    or a source not in the shared record format.
    """
    _check_int(batch_size, "batch_size", 1)
    _check_source(source)
    if not callable(preprocess):
        raise ValueError(f"preprocess must be callable, got {preprocess!r}")
    if isinstance(preprocess, EvalPreprocess):
        _check_fixed_size(source, preprocess.output_size, "EvalPreprocess.output_size")
    source, per_replica_batch = _shard(source, batch_size, input_context)

    def prepare(record: dict):
        image = preprocess(record["image"])
        if view_transform is not None:
            image = view_transform.single(record, image)
        return image, record["labels"]

    dataset = source.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(per_replica_batch, drop_remainder=drop_remainder)
    return _pipeline_options(dataset.prefetch(AUTOTUNE))


def _pipeline_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Deterministic order, and tf.data's autotuning model off (AUTOTUNE parallelism and
    buffer sizes then take tf.data's defaults instead of the model's choice). Measured on 2 cores
    (DigitOnImages, K = 1, one contrastive configuration of 300 steps): 85.6 s with the
    model, 36.3 s without, the same probes; with it, `fit`'s end waited 34 s for the
    iterator's destructor and training itself ran 1.4x slower."""
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    return dataset.with_options(options)
