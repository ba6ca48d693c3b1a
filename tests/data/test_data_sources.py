"""Sources: TFDS records under tfds.testing.mock_data, the missing-data error, numpy sources."""

import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from cl_properties.data import (
    SOURCE_NAMES,
    DataNotFoundError,
    load_source,
    source_arrays,
    source_from_arrays,
)

NUM_EXAMPLES = 7


def _collect(dataset):
    records = list(dataset.as_numpy_iterator())
    images = np.stack([r["image"] for r in records])
    labels = {k: np.array([r["labels"][k] for r in records]) for k in records[0]["labels"]}
    index = np.array([r["index"] for r in records])
    return images, labels, index


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection (Python sockets or TFDS's GCS checks) fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(gcs_utils, "exists", refuse)


@pytest.mark.parametrize(
    "name, shape, label_keys, num_classes",
    [
        ("cifar10", (32, 32, 3), {"label"}, {"label": 10}),
        ("mnist", (28, 28, 1), {"label"}, {"label": 10}),
        ("cifar100", (32, 32, 3), {"label", "coarse_label"}, {"label": 100, "coarse_label": 20}),
    ],
)
def test_tfds_source_records_have_the_shared_format(
    tmp_path, no_network, name, shape, label_keys, num_classes
):
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        dataset = load_source(name, "train", data_dir=tmp_path)
        spec = dataset.element_spec
        assert spec["image"] == tf.TensorSpec(shape, tf.float32)
        assert spec["index"] == tf.TensorSpec([], tf.int64)
        assert set(spec["labels"]) == label_keys
        assert all(s == tf.TensorSpec([], tf.int32) for s in spec["labels"].values())
        images, labels, index = _collect(dataset)
    assert images.shape == (NUM_EXAMPLES, *shape)
    assert images.min() >= 0.0 and images.max() <= 1.0
    # uint8 pixels divided by 255: every value is k / 255 for an integer k.
    np.testing.assert_allclose(images * 255.0, np.round(images * 255.0), atol=1e-4)
    np.testing.assert_array_equal(index, np.arange(NUM_EXAMPLES))
    for key, count in num_classes.items():
        assert labels[key].dtype == np.int32
        assert labels[key].min() >= 0 and labels[key].max() < count


def test_tfds_source_read_is_deterministic(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        first = _collect(load_source("cifar10", "test", data_dir=tmp_path))
        second = _collect(load_source("cifar10", "test", data_dir=tmp_path))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1]["label"], second[1]["label"])


def test_image_size_resizes_varying_size_images(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=3):
        dataset = load_source("tf_flowers", "train", data_dir=tmp_path, image_size=(12, 16))
        images, _, _ = _collect(dataset)
    assert dataset.element_spec["image"].shape == (12, 16, 3)
    assert images.shape == (3, 12, 16, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012"])
def test_missing_data_fails_at_once_with_instructions(tmp_path, no_network, name):
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as raised:
        load_source(name, "train", data_dir=tmp_path)
    assert time.monotonic() - start < 10.0
    message = str(raised.value)
    assert name in message
    assert str(tmp_path) in message
    assert f"tfds build {name} --data_dir={tmp_path}" in message
    assert "downloads/manual" in message
    if name == "imagenet2012":
        assert "ILSVRC2012_img_train.tar" in message
    assert isinstance(raised.value, FileNotFoundError)
    assert not (tmp_path / "downloads").exists()  # nothing was fetched or created


def test_unknown_dataset_name_raises():
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'"):
        load_source("cifar11", "train")
    assert "cifar10" in SOURCE_NAMES


def test_source_from_arrays_yields_the_arrays_in_order():
    rng = np.random.default_rng(0)
    images = rng.random((5, 4, 3, 2), dtype=np.float32)
    labels = {"label": np.arange(5) % 2, "other": np.arange(5, 10, dtype=np.int64)}
    got_images, got_labels, index = _collect(source_from_arrays(images, labels))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels["label"], labels["label"])
    np.testing.assert_array_equal(got_labels["other"], labels["other"])
    assert got_labels["other"].dtype == np.int32
    np.testing.assert_array_equal(index, np.arange(5))


def test_source_arrays_inverts_source_from_arrays():
    rng = np.random.default_rng(1)
    images = rng.random((5000, 2, 2, 1), dtype=np.float32)  # more than one batch of 4096
    labels = np.arange(5000) % 7
    got_images, got_labels = source_arrays(source_from_arrays(images, {"label": labels}))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert (got_images.dtype, got_labels.dtype) == (np.float32, np.int32)


def test_source_arrays_reads_tfds_records_in_index_order(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        source = load_source("cifar100", "test", data_dir=tmp_path)
        images, labels, _ = _collect(source)
        got_images, got_coarse = source_arrays(source, label="coarse_label")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_coarse, labels["coarse_label"])


def test_source_from_arrays_scales_uint8():
    images = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2, 1) * 30
    got, _, _ = _collect(source_from_arrays(images, {"label": np.zeros(2, np.int32)}))
    np.testing.assert_array_equal(got, images.astype(np.float32) / np.float32(255.0))


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((3, 4, 4), np.float32), {"label": np.zeros(3, int)}, r"\[N, H, W, C\]"),
        (np.full((3, 4, 4, 1), 2.0, np.float32), {"label": np.zeros(3, int)}, r"\[0, 1\]"),
        (np.zeros((3, 4, 4, 1), np.int32), {"label": np.zeros(3, int)}, "uint8 or floating"),
        (np.zeros((3, 4, 4, 1), np.float32), {"label": np.zeros(2, int)}, "shape"),
        (np.zeros((3, 4, 4, 1), np.float32), {"label": np.zeros(3, float)}, "integers"),
        (np.zeros((3, 4, 4, 1), np.float32), [np.zeros(3, int)], "dict"),
    ],
)
def test_source_from_arrays_rejects_bad_inputs(images, labels, match):
    with pytest.raises(ValueError, match=match):
        source_from_arrays(images, labels)
