"""Every dataset by one name, loaded as a source in the shared record format (`sources`).

    train = load_dataset("cifar10", "train", data_dir="/data/tfds")  # TFDS, never downloads
    test = load_dataset("shapes", "test", image_size=24, num_examples=512)  # procedural
    dataset_classes("cifar100")  # {"label": 100, "coarse_label": 20}

A name maps to a loader and the preset arguments that make it that dataset: scikit-learn's
digits are "digits" at MNIST's 28 px (an offline MNIST) and "sklearn" at their own 8 px (the
digit images that DigitOnImages and MultiDigits paste). The experiments' dataset flags
(--dataset, --digits) take these names and every experiment loads its data here: adding a
dataset is one loader (or preset) and one `register_dataset` line.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from cl_properties.data.digits import load_digits
from cl_properties.data.shapes import DEFAULT_CLASSES, GREY_SHAPES, make_shapes
from cl_properties.data.sources import TFDS_LABELS, load_source, source_from_arrays


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """What a caller may ask of any dataset; each dataset uses those that apply to it.

    data_dir: where TFDS datasets are prepared (None: TFDS's default); offline ones ignore it.
    image_size: the side offline datasets render their images at (None: the dataset's
      default). TFDS images keep their stored size: the input pipeline crops them first and
      then resizes (`AugmentConfig.output_size`, `EvalPreprocess`), as SimCLR does.
    num_examples: how many images a procedural dataset (shapes) makes; the others have
      their own number.
    """

    data_dir: str | None = None
    image_size: int | None = None
    num_examples: int | None = None


@dataclasses.dataclass(frozen=True)
class RegisteredDataset:
    """A loader and its preset arguments, the classes of each label, the default splits."""

    loader: Callable[..., tf.data.Dataset]  # loader(split, options, **preset)
    preset: Mapping[str, Any]
    classes: Callable[[str | None], Mapping[str, int]]  # data_dir -> label name -> classes
    splits: tuple[str, str]  # (train, test)
    summary: str


DATASETS: dict[str, RegisteredDataset] = {}


def register_dataset(
    name: str,
    loader: Callable[..., tf.data.Dataset],
    summary: str,
    *,
    classes: Callable[[str | None], Mapping[str, int]],
    splits: tuple[str, str] = ("train", "test"),
    **preset: Any,
) -> None:
    """Adds `name` -> `loader(split, options, **preset)` to `DATASETS`. `classes(data_dir)`
    gives each label's number of classes; `splits` the (train, test) splits experiments use
    unless told. ValueError for a name taken."""
    if name in DATASETS:
        raise ValueError(f"a dataset named {name!r} is registered already")
    DATASETS[name] = RegisteredDataset(
        loader, types.MappingProxyType(dict(preset)), classes, tuple(splits), summary
    )


def _entry(name: str) -> RegisteredDataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    num_examples: int | None = None,
) -> tf.data.Dataset:
    """Split `split` of dataset `name` as a source of shared-format records (image float32
    [H, W, C] in [0, 1], labels name -> int32, index). `split` is one of the dataset's own
    splits (TFDS split strings such as "train[:10%]" for TFDS datasets); `default_splits`
    tells which ones experiments train and evaluate on. See `LoadOptions` for the options.

    ValueError for an unknown name or split; `DataNotFoundError` for a TFDS dataset that is
    not prepared under `data_dir` (nothing is ever downloaded).
    """
    entry = _entry(name)
    options = LoadOptions(data_dir=data_dir, image_size=image_size, num_examples=num_examples)
    return entry.loader(split, options, **entry.preset)


def dataset_classes(name: str, *, data_dir: str | None = None) -> dict[str, int]:
    """Label name -> number of classes of dataset `name` (TFDS: from its metadata)."""
    return dict(_entry(name).classes(data_dir))


def default_splits(name: str) -> tuple[str, str]:
    """The (train, test) splits of dataset `name` that experiments use unless told."""
    return _entry(name).splits


def _load_tfds(split: str, options: LoadOptions, *, tfds_name: str) -> tf.data.Dataset:
    return load_source(tfds_name, split, data_dir=options.data_dir)


def _tfds_classes(tfds_name: str, data_dir: str | None) -> dict[str, int]:
    # Read from the builder's metadata: the class counts are static per dataset.
    features = tfds.builder(tfds_name, data_dir=data_dir).info.features
    labels = TFDS_LABELS[tfds_name]
    return {key: int(features[feature].num_classes) for key, feature in labels.items()}


def _load_digits(split: str, options: LoadOptions, *, default_size: int) -> tf.data.Dataset:
    digits = load_digits(split, size=options.image_size or default_size)
    return source_from_arrays(digits.images, {"label": digits.labels})


# Generation seeds of the shapes splits: fixed, so that a run's seed varies the run, not the
# data, and distinct, so that the test images are not the training images.
_SHAPES_SEEDS = {"train": 0, "test": 1}


def _load_shapes(
    split: str,
    options: LoadOptions,
    *,
    default_size: int,
    split_seeds: Mapping[str, int] = _SHAPES_SEEDS,
    split_sizes: Mapping[str, int] | None = None,
    shape_options: Mapping[str, Any],
) -> tf.data.Dataset:
    """`make_shapes(**shape_options)` at the split's generation seed; the number of images
    is `options.num_examples`, else the split's preset size (`split_sizes`)."""
    if split not in split_seeds:
        raise ValueError(f"shapes has the splits {', '.join(split_seeds)}, not {split!r}")
    count = options.num_examples or (split_sizes or {}).get(split)
    if count is None:
        raise ValueError("shapes is procedural: give the number of images (num_examples)")
    shapes = make_shapes(
        count, size=options.image_size or default_size, seed=split_seeds[split], **shape_options
    )
    return source_from_arrays(shapes.images, {"label": shapes.labels})


def _fixed_classes(**classes: int) -> Callable[[str | None], Mapping[str, int]]:
    """The classes of an offline dataset, which do not depend on data_dir."""
    return lambda data_dir: classes


def _register_tfds(name: str, summary: str, splits: tuple[str, str] = ("train", "test")) -> None:
    classes = functools.partial(_tfds_classes, name)
    register_dataset(name, _load_tfds, summary, classes=classes, splits=splits, tfds_name=name)


_register_tfds("cifar10", "CIFAR-10 (TFDS), 32 px, 10 classes")
_register_tfds("cifar100", "CIFAR-100 (TFDS), 32 px, 100 classes and 20 coarse ones")
_register_tfds(
    "imagenet2012",
    "ImageNet ILSVRC-2012 (TFDS, manual download), varying size, 1000 classes, tested on "
    "validation",
    ("train", "validation"),
)
_register_tfds("mnist", "MNIST (TFDS), 28 px grey digits")
_register_tfds(
    "tf_flowers",
    "TF flowers (TFDS), varying size, 5 classes, its one split cut 90% / 10% into train / test",
    ("train[:90%]", "train[90%:]"),
)
register_dataset(
    "shapes",
    _load_shapes,
    "procedural coloured shapes (offline), 32 px unless told, 4 classes",
    classes=_fixed_classes(label=len(DEFAULT_CLASSES)),
    default_size=32,
    shape_options={"colored": True},
)
# The studies' testbed where the digits are too easy (`shapes.GREY_SHAPES`), at the digits'
# split sizes.
register_dataset(
    "grey_shapes",
    _load_shapes,
    "procedural grey shapes (offline): a light shape on a dark background, centred within "
    "+-0.2, 16 px unless told, 6 classes, 1,437 / 360 images",
    classes=_fixed_classes(label=len(GREY_SHAPES["classes"])),
    default_size=16,
    split_seeds={"train": 1, "test": 2},
    split_sizes={"train": 1437, "test": 360},
    shape_options=GREY_SHAPES,
)
register_dataset(
    "digits",
    _load_digits,
    "scikit-learn's digits (offline) at MNIST's 28 px unless told, grey, 1,437 / 360 images",
    classes=_fixed_classes(label=10),
    default_size=28,
)
register_dataset(
    "sklearn",
    _load_digits,
    "scikit-learn's digits (offline) at their own 8 px unless told, grey",
    classes=_fixed_classes(label=10),
    default_size=8,
)
