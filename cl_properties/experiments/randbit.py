r"""RandBit (paper section 4, Figure 5a): easy shared bits suppress the digit features.

Each image gets b extra constant channels holding a b-bit code fixed per image
(`cl_properties.data.RandBit`, shared by both views). The sweep trains the contrastive model
at each number of bits and temperature and probes the digit class linearly on the frozen
representation: with more bits the contrastive task is solved by the bits and the digit
accuracy falls towards chance. Also, via --models: `per_view` (bits drawn independently per
view, which cannot help the task: the control), `vae` (a convolutional VAE with the same
encoder, trained on the same inputs, probed on its posterior mean) and `supervised`.

    python -m cl_properties.experiments.randbit                  # offline digits, ~minutes
    python -m cl_properties.experiments.randbit \
        --flagfile=experiments/suppression/randbit_mnist.flags

Writes to --output_dir (default runs/randbit): results.json / results.csv (one row per bits x
model x temperature) and randbit.png (accuracy vs bits, one line per model and temperature).
"""

from __future__ import annotations

import functools

import tensorflow as tf
from absl import flags

from cl_properties.data import (
    RandBit,
    cifar_augment,
    load_digits,
    load_mnist,
    load_source,
    randbit_augment,
    source_from_arrays,
)
from cl_properties.experiments import common, suppression
from cl_properties.training import DataSpec

FLAGS = flags.FLAGS
DATASETS = ("digits", "mnist", "cifar10")
NUM_CLASSES = 10


@functools.lru_cache(maxsize=4)
def _sources(dataset: str, data_dir: str | None, num_train: int | None):
    """(train, test, image shape) of `dataset`, the first `num_train` training images."""
    if dataset == "cifar10":
        train = load_source("cifar10", "train", data_dir=data_dir)
        if num_train:
            train = train.take(num_train)
        return train, load_source("cifar10", "test", data_dir=data_dir), (32, 32, 3)
    if dataset == "mnist":
        train, test = load_mnist("train", data_dir=data_dir), load_mnist("test", data_dir=data_dir)
    elif dataset == "digits":
        train, test = load_digits("train"), load_digits("test")
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    images, labels = train.images[:num_train], train.labels[:num_train]
    return (
        source_from_arrays(images, {"label": labels}),
        source_from_arrays(test.images, {"label": test.labels}),
        images.shape[1:],
    )


def _with_first_bit(source, transform: RandBit, channels: int):
    """Adds the label "bit0": the first bit plane's value that evaluation shows with the image."""

    def add(record):
        bit = transform.single(record, record["image"])[0, 0, channels]
        return {**record, "labels": {**record["labels"], "bit0": tf.cast(bit, tf.int32)}}

    return source.map(add, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def build_data(job: suppression.Job) -> DataSpec:
    """The RandBit data of a job: point {"bits": b}; shared bits, or per-view bits for the
    per_view model; the colab's crop augmentation (SimCLR's CIFAR one for cifar10). Probes:
    the class ("label") and, with bits, the first bit ("bit0": does the representation
    encode the bits?)."""
    options = job.data
    train, test, (height, width, channels) = _sources(
        options["dataset"], options.get("data_dir"), options.get("num_train")
    )
    bits = job.point["bits"]
    mode = "per_view" if job.model == "per_view" else "shared"
    transform = RandBit(bits, mode=mode, seed=job.pretrain.seed)
    probes = {"label": NUM_CLASSES}
    if bits:
        train, test = (_with_first_bit(s, transform, channels) for s in (train, test))
        probes["bit0"] = 2
    return DataSpec(
        train=train,
        test=test,
        input_shape=(height, width, channels + bits),
        probes=probes,
        augment=cifar_augment() if options["dataset"] == "cifar10" else randbit_augment(),
        view_transform=transform,
    )


EXPERIMENT = suppression.Experiment(
    name="randbit",
    build_data=build_data,
    x="bits",
    points_flag="bits",
    x_label="shared random bits",
    probe_titles={"label": "class probe", "bit0": "first-bit probe"},
    models=suppression.MODELS,
    chance={"label": 1 / NUM_CLASSES, "bit0": 0.5},
    title="RandBit: class accuracy vs extra bits (paper Figure 5a)",
)


def define_flags() -> None:
    suppression.define_flags(temperatures=(0.05, 0.1, 0.2), models=("contrastive", "vae"))
    flags.DEFINE_list("bits", ["0", "5", "10", "15", "20"], "Numbers of random bits (0..30).")
    flags.DEFINE_enum(
        "dataset",
        "digits",
        list(DATASETS),
        "digits: scikit-learn's (offline); mnist, cifar10: TFDS (prepared under --data_dir).",
    )
    flags.DEFINE_integer("num_train", None, "Use only the first N training images.", lower_bound=1)


def main(argv: list[str]) -> None:
    del argv
    bits = common.list_flag("bits", minimum=0)
    points = [{"bits": b} for b in bits]
    data = {"dataset": FLAGS.dataset, "data_dir": FLAGS.data_dir, "num_train": FLAGS.num_train}
    for b in bits:  # bad values fail before any training
        try:
            RandBit(b)
        except ValueError as error:
            raise ValueError(f"--bits: {error}") from None
    suppression.main(EXPERIMENT, points, data, __name__)


if __name__ == "__main__":
    define_flags()
    common.run(main)
