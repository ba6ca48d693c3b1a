"""tf.data pipelines: structure, determinism, epochs, resume, sharding, view transforms."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.data import (
    EvalPreprocess,
    RandBit,
    cifar_augment,
    crop_augment,
    eval_dataset,
    source_from_arrays,
    two_view_dataset,
)

N = 20


def _source(n=N, size=8, channels=3):
    images = np.random.default_rng(0).random((n, size, size, channels), dtype=np.float32)
    return source_from_arrays(images, {"label": np.arange(n), "parity": np.arange(n) % 2})


def _batches(dataset, count):
    return [
        (v1.numpy(), v2.numpy(), labels["label"].numpy())
        for (v1, v2), labels in dataset.take(count)
    ]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


class AppendConstant:
    """A ViewTransform appending a constant channel (0.25) after augmentation."""

    def views(self, record, view1, view2):
        return self.single(record, view1), self.single(record, view2)

    def single(self, record, image):
        return tf.concat([image, tf.fill(tf.concat([tf.shape(image)[:2], [1]], 0), 0.25)], -1)

    def channels_added(self):
        return 1


def test_batch_structure_and_shapes():
    dataset = two_view_dataset(_source(), cifar_augment(), batch_size=4, seed=0)
    (view1, view2), labels = next(iter(dataset))
    assert view1.shape == view2.shape == (4, 8, 8, 3)
    assert view1.dtype == view2.dtype == tf.float32
    assert set(labels) == {"label", "parity"}
    assert labels["label"].dtype == tf.int32 and labels["label"].shape == (4,)
    np.testing.assert_array_equal(labels["parity"], labels["label"] % 2)
    assert float(tf.reduce_min(view1)) >= 0.0 and float(tf.reduce_max(view1)) <= 1.0
    assert not np.array_equal(view1.numpy(), view2.numpy())


def test_one_channel_pipeline():
    dataset = two_view_dataset(_source(channels=1), crop_augment(), batch_size=5, seed=0)
    (view1, _), _ = next(iter(dataset))
    assert view1.shape == (5, 8, 8, 1)


def test_same_seed_same_stream_whatever_the_global_seed():
    build = lambda: two_view_dataset(_source(), cifar_augment(), batch_size=6, seed=3)  # noqa: E731
    first = _batches(build(), 5)
    tf.random.set_seed(1234)  # the stream must not depend on TF's global seed
    _assert_same_batches(first, _batches(build(), 5))
    other = _batches(two_view_dataset(_source(), cifar_augment(), batch_size=6, seed=4), 1)
    assert not np.array_equal(first[0][0], other[0][0])


def test_each_epoch_is_a_new_permutation_with_new_views():
    # One batch per epoch: batch e holds epoch e, in its shuffled order.
    dataset = two_view_dataset(_source(), cifar_augment(), batch_size=N, seed=0, shuffle_buffer=N)
    epochs = _batches(dataset, 3)
    for _, _, labels in epochs:
        np.testing.assert_array_equal(np.sort(labels), np.arange(N))
    assert not np.array_equal(epochs[0][2], epochs[1][2])
    assert not np.array_equal(epochs[1][2], epochs[2][2])
    # The same image gets different views in different epochs.
    view_e0 = epochs[0][0][np.argsort(epochs[0][2])]
    view_e1 = epochs[1][0][np.argsort(epochs[1][2])]
    assert all(not np.array_equal(a, b) for a, b in zip(view_e0, view_e1))


@pytest.mark.parametrize("start_step", [3, 7])
def test_start_step_continues_the_uninterrupted_stream(start_step):
    # N = 20, batch 6: batch 3 straddles epochs 0-1; start 7 skips two whole epochs.
    kwargs = dict(batch_size=6, seed=1, shuffle_buffer=8)
    stream = _batches(two_view_dataset(_source(), cifar_augment(), **kwargs), start_step + 2)
    resumed = two_view_dataset(_source(), cifar_augment(), start_step=start_step, **kwargs)
    _assert_same_batches(stream[start_step:], _batches(resumed, 2))


def test_start_step_with_unknown_source_size():
    source = _source().filter(lambda record: True)  # cardinality unknown: skip record by record
    kwargs = dict(batch_size=6, seed=1)
    stream = _batches(two_view_dataset(source, cifar_augment(), **kwargs), 6)
    resumed = _batches(two_view_dataset(source, cifar_augment(), start_step=4, **kwargs), 2)
    _assert_same_batches(stream[4:], resumed)


@pytest.mark.parametrize("pipelines, replicas", [(1, 2), (2, 2), (2, 4)])
def test_start_step_skips_what_each_pipelines_replicas_consumed(pipelines, replicas):
    # Per step a pipeline feeds replicas / pipelines per-replica batches (Mirrored: one pipeline
    # for all replicas; multi-worker: one per worker). Global batch 8, step 3: one pipeline
    # skips 24 of its 20 records, each of two pipelines 12 of its 10: both land in epoch 1.
    k, batches_per_step = 3, replicas // pipelines  # per-replica batches per pipeline
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(
            num_input_pipelines=pipelines, input_pipeline_id=pipeline, num_replicas_in_sync=replicas
        )
        kwargs = dict(batch_size=8, seed=1, shuffle_buffer=8, input_context=context)
        first = k * batches_per_step  # this pipeline's first per-replica batch of step k
        stream = _batches(two_view_dataset(_source(), cifar_augment(), **kwargs), first + 4)
        resumed = _batches(two_view_dataset(_source(), cifar_augment(), start_step=k, **kwargs), 4)
        # Record indices (label == index in _source) first: they name the records replayed.
        assert [b[2].tolist() for b in resumed] == [b[2].tolist() for b in stream[first:]]
        _assert_same_batches(stream[first:], resumed)  # the same epochs, hence the same views


def test_building_a_pipeline_leaves_the_global_seed_alone():
    tf.random.set_seed(7)
    expected = tf.random.uniform([3]).numpy()
    tf.random.set_seed(7)
    next(iter(two_view_dataset(_source(), cifar_augment(), batch_size=4, seed=0)))
    np.testing.assert_array_equal(tf.random.uniform([3]).numpy(), expected)


def test_start_step_without_repeat():
    kwargs = dict(batch_size=3, seed=1, repeat=False, drop_remainder=False)
    stream = _batches(two_view_dataset(_source(), cifar_augment(), **kwargs), 100)
    resumed = _batches(two_view_dataset(_source(), cifar_augment(), start_step=2, **kwargs), 100)
    _assert_same_batches(stream[2:], resumed)


def test_drop_remainder_keeps_batch_sizes_equal():
    kwargs = dict(batch_size=8, seed=0, repeat=False)
    kept = two_view_dataset(_source(), cifar_augment(), drop_remainder=True, **kwargs)
    assert kept.element_spec[0][0].shape == (8, 8, 8, 3)
    assert [len(b[2]) for b in _batches(kept, 100)] == [8, 8]
    ragged = two_view_dataset(_source(), cifar_augment(), drop_remainder=False, **kwargs)
    assert [len(b[2]) for b in _batches(ragged, 100)] == [8, 8, 4]


def test_input_context_shards_the_source():
    shards = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        dataset = two_view_dataset(
            _source(), cifar_augment(), batch_size=4, seed=0, repeat=False, input_context=context
        )
        batches = _batches(dataset, 100)
        assert all(len(labels) == 2 for _, _, labels in batches)  # per-replica batch
        shards.append(np.concatenate([labels for _, _, labels in batches]))
    assert set(shards[0]).isdisjoint(shards[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(N))


def test_view_transform_is_applied_after_augmentation():
    config = cifar_augment(jitter_prob=1.0, jitter_strength=1.0, blur=True, blur_prob=1.0)
    dataset = two_view_dataset(
        _source(), config, batch_size=4, seed=0, view_transform=AppendConstant()
    )
    (view1, view2), _ = next(iter(dataset))
    assert view1.shape == view2.shape == (4, 8, 8, 4)
    np.testing.assert_array_equal(view1[..., 3], 0.25)  # untouched by crop, jitter and blur
    np.testing.assert_array_equal(view2[..., 3], 0.25)
    plain = next(iter(two_view_dataset(_source(), config, batch_size=4, seed=0)))
    np.testing.assert_array_equal(view1[..., :3], plain[0][0])

    ((image, _),) = eval_dataset(_source(), batch_size=N, view_transform=AppendConstant()).take(1)
    assert image.shape == (N, 8, 8, 4)
    np.testing.assert_array_equal(image[..., 3], 0.25)


@pytest.mark.parametrize("mode", ["shared", "per_view"])
def test_first_view_only_is_view1_of_the_pairs(mode):
    # The single-view baselines' stream: the contrastive run's view 1, view 2 never augmented.
    transform = RandBit(3, mode=mode, seed=1)
    build = functools.partial(
        two_view_dataset, _source(), crop_augment(), batch_size=6, seed=2, view_transform=transform
    )
    pairs, singles = build(), build(first_view_only=True)
    for ((view1, _), labels), (view, single_labels) in zip(pairs.take(5), singles.take(5)):
        np.testing.assert_array_equal(view, view1)
        np.testing.assert_array_equal(single_labels["label"], labels["label"])


def test_eval_dataset_keeps_source_order():
    source = _source()
    batches = list(eval_dataset(source, batch_size=8))
    assert [len(labels["label"]) for _, labels in batches] == [8, 8, 4]
    images = np.concatenate([image.numpy() for image, _ in batches])
    expected = np.stack([r["image"] for r in source.as_numpy_iterator()])
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(
        np.concatenate([labels["label"] for _, labels in batches]), np.arange(N)
    )
    resized = eval_dataset(source, batch_size=4, preprocess=EvalPreprocess(output_size=4))
    assert next(iter(resized))[0].shape == (4, 4, 4, 3)


def test_input_context_gives_per_replica_batches(two_cpu_strategy):
    dataset = two_cpu_strategy.distribute_datasets_from_function(
        lambda context: two_view_dataset(
            _source(), cifar_augment(), batch_size=4, seed=0, input_context=context
        ),
    )
    (view1, _), labels = next(iter(dataset))
    local = two_cpu_strategy.experimental_local_results(view1)
    assert len(local) == 2 and all(v.shape == (2, 8, 8, 3) for v in local)
    assert all(
        local.shape == (2,)
        for local in two_cpu_strategy.experimental_local_results(labels["label"])
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -4}, "batch_size"),
        ({"seed": 1.5}, "seed"),
        ({"shuffle_buffer": 0}, "shuffle_buffer"),
        ({"start_step": -1}, "start_step"),
        (
            {"batch_size": 6, "input_context": tf.distribute.InputContext(2, 0, 3)},
            "3 replicas cannot be split evenly over 2 input pipelines",
        ),
    ],
)
def test_bad_pipeline_arguments_raise(kwargs, match):
    arguments = {"batch_size": 4, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        two_view_dataset(_source(), cifar_augment(), **arguments)


def test_bad_sources_and_configs_raise():
    with pytest.raises(ValueError, match="AugmentConfig"):
        two_view_dataset(_source(), {"crop": True}, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="image, labels, index"):
        two_view_dataset(tf.data.Dataset.range(4), cifar_augment(), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="empty"):
        two_view_dataset(_source().take(0), cifar_augment(), batch_size=4, seed=0)
    varying = tf.data.Dataset.from_generator(
        lambda: iter([]),
        output_signature={
            "image": tf.TensorSpec([None, None, 3], tf.float32),
            "labels": {"label": tf.TensorSpec([], tf.int32)},
            "index": tf.TensorSpec([], tf.int64),
        },
    )
    with pytest.raises(ValueError, match="output_size"):
        two_view_dataset(varying, cifar_augment(), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="output_size"):
        eval_dataset(varying, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        eval_dataset(_source(), batch_size=0)
