"""The dataset registry: every dataset by one name, loaded offline (TFDS under mock data), and
the channels a view transform reports adding."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from cl_properties.data import (
    DATASETS,
    GREY_SHAPES,
    SHAPE_NAMES,
    SOURCE_NAMES,
    AugmentConfig,
    RandBit,
    dataset_classes,
    default_splits,
    load_dataset,
    load_digits,
    load_source,
    make_shapes,
    register_dataset,
    registry,
    source_from_arrays,
    two_view_dataset,
    view_shape,
)

MOCK_EXAMPLES = 4
# name -> (image shape, None where it varies; (train, test) examples, None: MOCK_EXAMPLES).
EXPECTED = {
    "cifar10": ((32, 32, 3), None),
    "cifar100": ((32, 32, 3), None),
    "imagenet2012": ((None, None, 3), None),
    "mnist": ((28, 28, 1), None),
    "tf_flowers": ((None, None, 3), None),
    "shapes": ((32, 32, 3), (6, 5)),
    "grey_shapes": ((16, 16, 1), (1437, 360)),
    "digits": ((28, 28, 1), (1437, 360)),
    "sklearn": ((8, 8, 1), (1437, 360)),
}


def test_every_dataset_is_expected_and_every_tfds_source_registered():
    assert set(DATASETS) == set(EXPECTED)
    assert set(SOURCE_NAMES) <= set(DATASETS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_dataset_loads_both_default_splits_in_the_shared_format(name, tmp_path):
    shape, sizes = EXPECTED[name]
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        classes = dataset_classes(name, data_dir=str(tmp_path))
        for split, size in zip(default_splits(name), sizes or (MOCK_EXAMPLES,) * 2):
            source = load_dataset(name, split, data_dir=str(tmp_path), num_examples=size)
            spec = source.element_spec
            assert tuple(spec["image"].shape) == shape and spec["image"].dtype == tf.float32
            assert set(spec["labels"]) == set(classes)
            assert int(source.cardinality()) == size
            record = next(iter(source.take(1)))
            image = record["image"].numpy()
            assert image.min() >= 0.0 and image.max() <= 1.0 and image.shape[-1] == shape[-1]
            for key, count in classes.items():
                assert 0 <= int(record["labels"][key]) < count


def test_tfds_datasets_are_their_tfds_sources_and_split_strings_pass_through(tmp_path):
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        for split in ("test", "train[:50%]"):
            ours = load_dataset("cifar100", split, data_dir=str(tmp_path))
            theirs = load_source("cifar100", split, data_dir=str(tmp_path))
            for a, b in zip(ours.as_numpy_iterator(), theirs.as_numpy_iterator()):
                np.testing.assert_array_equal(a["image"], b["image"])
                assert a["labels"] == b["labels"] and a["index"] == b["index"]
        assert dataset_classes("cifar100") == {"label": 100, "coarse_label": 20}
    assert default_splits("imagenet2012") == ("train", "validation")
    assert default_splits("tf_flowers") == ("train[:90%]", "train[90%:]")


@pytest.mark.parametrize("name, size", [("digits", 28), ("sklearn", 8)])
def test_scikit_learn_digits_are_load_digits_at_their_preset_size_unless_told(name, size):
    for image_size in (None, 12):
        loaded = next(iter(load_dataset(name, "test", image_size=image_size).batch(400)))
        expected = load_digits("test", size=image_size or size)
        np.testing.assert_array_equal(loaded["image"].numpy(), expected.images)
        np.testing.assert_array_equal(loaded["labels"]["label"].numpy(), expected.labels)


def test_shapes_are_fixed_per_split_and_made_at_the_size_asked():
    def images(split, n=8, image_size=None):
        source = load_dataset("shapes", split, num_examples=n, image_size=image_size)
        return next(iter(source.batch(n)))["image"].numpy()

    np.testing.assert_array_equal(images("train"), images("train"))
    assert not np.array_equal(images("train"), images("test"))
    assert images("test", n=3, image_size=16).shape == (3, 16, 16, 3)
    with pytest.raises(ValueError, match="num_examples"):
        load_dataset("shapes", "train")
    with pytest.raises(ValueError, match="splits train, test, not 'validation'"):
        load_dataset("shapes", "validation", num_examples=4)


def test_grey_shapes_are_the_studies_testbed_at_the_digits_split_sizes():
    for split, count, seed in (("train", 1437, 1), ("test", 360, 2)):
        loaded = next(iter(load_dataset("grey_shapes", split).batch(2000)))
        expected = make_shapes(count, size=16, seed=seed, **GREY_SHAPES)
        np.testing.assert_array_equal(loaded["image"].numpy(), expected.images)
        np.testing.assert_array_equal(loaded["labels"]["label"].numpy(), expected.labels)
    assert dataset_classes("grey_shapes") == {"label": len(SHAPE_NAMES)}
    small = next(iter(load_dataset("grey_shapes", "test", image_size=12, num_examples=5).batch(5)))
    assert small["image"].shape == (5, 12, 12, 1)


def test_unknown_name_is_a_value_error_listing_the_registered_names():
    listed = "registered: " + ", ".join(DATASETS)
    for call in (
        lambda: load_dataset("cifar11", "train"),
        lambda: dataset_classes("cifar11"),
        lambda: default_splits("cifar11"),
    ):
        with pytest.raises(ValueError, match="unknown dataset 'cifar11'") as raised:
            call()
        assert listed in str(raised.value)


def test_a_new_dataset_is_one_register_dataset_line(monkeypatch):
    monkeypatch.setattr(registry, "DATASETS", dict(DATASETS))

    def constant(split, options, *, value):
        n = options.num_examples or 2
        images = np.full((n, 4, 4, 1), value, np.float32)
        return source_from_arrays(images, {"k": np.zeros(n, np.int32)})

    register_dataset(
        "grey", constant, "constant images", classes=lambda data_dir: {"k": 1}, value=0.5
    )
    source = load_dataset("grey", "train", num_examples=3)
    assert int(source.cardinality()) == 3
    assert float(next(iter(source))["image"][0, 0, 0]) == 0.5
    assert dataset_classes("grey") == {"k": 1} and default_splits("grey") == ("train", "test")
    with pytest.raises(ValueError, match="'grey' is registered already"):
        register_dataset("grey", constant, "again", classes=lambda data_dir: {}, value=0.0)


@pytest.mark.parametrize("bits", [0, 1, 7, 30])
def test_randbit_reports_the_channels_it_adds(bits):
    transform = RandBit(bits)
    assert transform.channels_added() == bits
    assert view_shape((28, 28, 1), transform) == (28, 28, 1 + bits)
    assert view_shape((32, 32, 3), transform) == (32, 32, 3 + bits)


def test_view_shape_is_the_shape_of_the_views_the_pipeline_makes():
    source = load_dataset("sklearn", "test")
    assert view_shape(source.element_spec["image"].shape) == (8, 8, 1)  # no transform
    for mode in ("shared", "per_view"):
        transform = RandBit(3, mode=mode)
        (view1, view2), _ = next(
            iter(
                two_view_dataset(
                    source, AugmentConfig(), batch_size=2, seed=0, view_transform=transform
                )
            )
        )
        expected = (2, *view_shape(source.element_spec["image"].shape, transform))
        assert view1.shape == view2.shape == expected == (2, 8, 8, 4)
