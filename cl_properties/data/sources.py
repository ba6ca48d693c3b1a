"""Image sources in the shared record format, from TFDS or from numpy arrays.

A source is a `tf.data.Dataset` of records
`{"image": float32 [H, W, C] in [0, 1], "labels": {name: int32}, "index": int64}`, read in a
fixed order (no shuffling), `index` being the position in that order. Nothing here
downloads: TFDS data must already be prepared under `data_dir`.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from cl_properties.data.augment import center_crop

# TFDS name -> the label features kept, as {record label name: TFDS feature name}.
# The main class is always "label".
TFDS_LABELS = {
    "cifar10": {"label": "label"},
    "cifar100": {"label": "label", "coarse_label": "coarse_label"},
    "imagenet2012": {"label": "label"},
    "mnist": {"label": "label"},
    "tf_flowers": {"label": "label"},
}
SOURCE_NAMES = tuple(TFDS_LABELS)

# Files TFDS looks for in <data_dir>/downloads/manual/ instead of downloading them.
_MANUAL_FILES = {
    "cifar10": ("cifar-10-binary.tar.gz",),
    "cifar100": ("cifar-100-binary.tar.gz",),
    "imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
    "mnist": (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
    "tf_flowers": ("flower_photos.tgz",),
}


class DataNotFoundError(FileNotFoundError):
    """A TFDS dataset is not prepared under the given data_dir (this library never downloads)."""


def _not_prepared_message(name: str, data_dir_root: str) -> str:
    manual = os.path.join(data_dir_root, "downloads", "manual")
    files = ", ".join(_MANUAL_FILES[name])
    if name == "imagenet2012":
        how = (
            f"ImageNet cannot be downloaded by TFDS: get {files} from "
            f"https://image-net.org/download-images, put them in {manual}/ and run "
            f"`tfds build imagenet2012 --data_dir={data_dir_root}`."
        )
    else:
        how = (
            f"On a machine with network access run `tfds build {name} --data_dir={data_dir_root}` "
            f"and copy {os.path.join(data_dir_root, name)} here; or place the original "
            f"archive(s) ({files}) in {manual}/ and run the same command here."
        )
    return (
        f"TFDS dataset {name!r} is not prepared in data_dir={data_dir_root!r}; "
        f"cl_properties never downloads data. {how}"
    )


def _image_to_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 pixels v -> float32 v / 255 (exact, matching numpy's division)."""
    return tf.cast(image, tf.float32) / 255.0


def load_source(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """A TFDS dataset, already prepared under `data_dir`, as a source of shared-format records.

    Records: image = uint8 pixels / 255 as float32 [H, W, C]; labels = the dataset's class
    features as int32 (`TFDS_LABELS`: always "label", plus "coarse_label" for cifar100);
    index = position in the split, read in file order (`shuffle_files=False`, one file at a
    time), so it is stable across runs. `image_size` (int or (height, width)), if given,
    takes the largest central crop of that aspect ratio and resizes it bilinearly
    (antialiased), for datasets of varying image size such as tf_flowers and imagenet2012.

    `split` takes any TFDS split string ("train", "test[:10%]", ...). `data_dir` None means
    the TFDS default (TFDS_DATA_DIR or ~/tensorflow_datasets).

    Raises ValueError for an unknown name, DataNotFoundError (a FileNotFoundError) naming
    the dataset, the data_dir and how to prepare it when the data is absent. Never touches
    the network.
    """
    if name not in TFDS_LABELS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(SOURCE_NAMES)}")
    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    try:
        dataset = builder.as_dataset(
            split=split,
            shuffle_files=False,
            # One file at a time: the record order, hence `index`, is the split's order.
            read_config=tfds.ReadConfig(interleave_cycle_length=1),
        )
    except AssertionError as error:
        # TFDS signals a missing dataset with an AssertionError before reading anything.
        if builder.data_path.exists():
            raise
        raise DataNotFoundError(_not_prepared_message(name, str(builder.data_dir_root))) from error

    label_features = TFDS_LABELS[name]

    def to_record(index: tf.Tensor, example: dict) -> dict:
        image = _image_to_float(example["image"])
        if image_size is not None:
            image = center_crop(image, image_size, 1.0, method="bilinear", antialias=True)
        labels = {
            key: tf.cast(example[feature], tf.int32) for key, feature in label_features.items()
        }
        return {"image": image, "labels": labels, "index": index}

    return dataset.enumerate().map(
        to_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def source_from_arrays(images: np.ndarray, labels: dict[str, np.ndarray]) -> tf.data.Dataset:
    """An in-memory source: record i = {image: images[i], labels: {k: labels[k][i]}, index: i}.

    `images` [N, H, W, C]: uint8 (divided by 255) or floating point in [0, 1] (cast to
    float32). `labels`: name -> integer array [N] (cast to int32). Raises ValueError for
    other shapes, dtypes, values outside [0, 1] or label lengths different from N.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(images.dtype, np.floating):
        if images.size and not (images.min() >= 0.0 and images.max() <= 1.0):
            raise ValueError(
                f"float images must lie in [0, 1], got values in [{images.min()}, {images.max()}]"
            )
        images = images.astype(np.float32)
    else:
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    if not isinstance(labels, dict):
        raise ValueError(f"labels must be a dict name -> array [N], got {type(labels).__name__}")
    n = len(images)
    columns = {}
    for key, values in labels.items():
        values = np.asarray(values)
        if not isinstance(key, str):
            raise ValueError(f"label names must be str, got {key!r}")
        if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"labels[{key!r}] must be integers of shape ({n},), got {values.dtype} "
                f"{values.shape}"
            )
        columns[key] = values.astype(np.int32)
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, "labels": columns, "index": np.arange(n, dtype=np.int64)}
    )


def source_arrays(source: tf.data.Dataset, label: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """The images float32 [N, H, W, C] and the `label` classes int32 [N] of a source of
    fixed-size images, in its order: for the builders that take arrays (e.g. the digit
    images of `make_digit_on_images` and `make_multidigits`)."""
    images, labels = [], []
    for batch in source.batch(4096):
        images.append(batch["image"].numpy())
        labels.append(batch["labels"][label].numpy())
    return np.concatenate(images), np.concatenate(labels)
