r"""RandBit (paper section 4, Figure 5a): easy shared bits suppress the digit features.

Each image gets b extra constant channels holding a b-bit code fixed per image
(`cl_properties.data.RandBit`, shared by both views). The sweep trains the contrastive model
at each number of bits and temperature and probes the digit class linearly on the frozen
representation: with more bits the contrastive task is solved by the bits and the digit
accuracy falls towards chance. The control is a data mode, --bit_mode=per_view (bits drawn
independently per view, which cannot help the task; run for the contrastive models, the
remedies included); the references come through --models: `vae` (a convolutional VAE with the
same encoder, trained on the same inputs, probed on its posterior mean), `supervised` and
`random_init` (the encoder untrained: the floor); the remedy candidates train beside it:
`ifm` (the contrastive model with the IFM loss), `recon_hybrid` (+ reconstruction of each
augmented view) and `rotation_aux` (+ rotation prediction), and the oracle `bit_matched`
(NT-Xent + negatives with the anchor's own bits on other images' pixels). The controls that
train a model of their own (per-view bits, the VAE, supervised) run only at --control_bits
(default: the largest bit count). The default (bits 0/5/10/20, tau 0.1, the contrastive model
at every bit count, per-view bits and the VAE at 20 bits, the floor at every count: 6 trained
runs and 4 untrained ones; 14 px digits, 250 steps) is the main job; the paper's full figure is
a flagfile away.

    python -m cl_properties.experiments.randbit                  # offline digits, ~4 minutes
    python -m cl_properties.experiments.randbit \
        --flagfile=experiments/suppression/randbit_figure5a.flags  # 3 temperatures
    python -m cl_properties.experiments.randbit \
        --flagfile=experiments/suppression/randbit_mnist.flags
    python -m cl_properties.experiments.randbit \
        --flagfile=experiments/suppression/randbit_grey_shapes.flags  # a testbed fit for it

Writes to --output_dir (default runs/randbit): results.json / results.csv (one row per bits x
bit mode x model x temperature), randbit.png (accuracy vs bits, one line per bit mode, model
and temperature) and examples/ (two augmented views of a few images at every point).
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import tensorflow as tf
from absl import flags

from cl_properties.data import (
    RandBit,
    cifar_augment,
    crop_augment,
    dataset_classes,
    grey_shapes_augment,
    load_dataset,
    view_shape,
)
from cl_properties.data.randbit import MODES as BIT_MODES
from cl_properties.experiments import cli, suppression
from cl_properties.experiments.job_runner import CONTRASTIVE_FAMILY, Experiment, Job
from cl_properties.training import DataSpec

FLAGS = flags.FLAGS
# --dataset's choices (names in cl_properties.data.DATASETS) and the views' augmentation of each:
# the colab's crop (digits, MNIST), SimCLR's CIFAR one, the grey shapes' own (with colour jitter:
# crops alone let the grey levels identify an image).
AUGMENTATIONS = {
    "digits": crop_augment,
    "grey_shapes": grey_shapes_augment,
    "mnist": crop_augment,
    "cifar10": cifar_augment,
}
DATASET_CHOICES = tuple(AUGMENTATIONS)
# Offline datasets, rendered at --image_size.
OFFLINE_DATASETS = ("digits", "grey_shapes")


@dataclasses.dataclass(frozen=True)
class RandBitOptions:
    """The data of a RandBit run besides the knob (bits) and the variant (bit mode)."""

    dataset: str = "digits"  # a name in cl_properties.data.DATASETS, among DATASET_CHOICES
    data_dir: str | None = None
    num_train: int | None = None  # only the first N training images
    image_size: int | None = None  # offline images' side in pixels (None: the dataset's own)


@functools.lru_cache(maxsize=4)
def _sources(options: RandBitOptions):
    """(train, test) sources of the options' dataset, the first `num_train` training images."""
    load = functools.partial(
        load_dataset, options.dataset, data_dir=options.data_dir, image_size=options.image_size
    )
    train = load("train")
    if options.num_train:
        train = train.take(options.num_train)
    return train, load("test")


def _with_first_bit(source, transform: RandBit):
    """Adds the label "bit0": the first bit plane's value that evaluation shows with the image."""

    def add(record):
        image = record["image"]
        bit = transform.single(record, image)[0, 0, image.shape[-1]]  # first channel after C
        return {**record, "labels": {**record["labels"], "bit0": tf.cast(bit, tf.int32)}}

    return source.map(add, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def build_data(job: Job) -> DataSpec:
    """The RandBit data of a job: point {"bits": b}, variant {"bit_mode": "shared" or
    "per_view"}; the dataset's augmentation (`AUGMENTATIONS`). Probes: the class ("label")
    and, with bits, the first bit ("bit0": does the representation encode the bits?)."""
    options: RandBitOptions = job.options
    train, test = _sources(options)
    bits = job.point["bits"]
    transform = RandBit(bits, mode=job.variant["bit_mode"], seed=job.pretrain.seed)
    probes = {"label": dataset_classes(options.dataset, data_dir=options.data_dir)["label"]}
    if bits:
        train, test = (_with_first_bit(s, transform) for s in (train, test))
        probes["bit0"] = 2
    return DataSpec(
        train=train,
        test=test,
        input_shape=view_shape(train.element_spec["image"].shape, transform),
        probes=probes,
        augment=AUGMENTATIONS[options.dataset](),
        view_transform=transform,
    )


EXPERIMENT = Experiment(
    name="randbit",
    build_data=build_data,
    x="bits",
    points_flag="bits",
    x_label="shared random bits",
    probe_titles={"label": "class probe", "bit0": "first-bit probe"},
    variant_flags=("bit_mode",),
    title="RandBit: class accuracy vs extra bits (paper Figure 5a)",
)


# The main job's scale: the 8 px digits at 14 px (a quarter of MNIST's pixels), 250 steps of
# batch 256 (at 150 the per-view control is still learning to ignore 20 noise planes: 0.83);
# docs/development.md has the calibration. The VAE trains twice the steps (one view per step:
# as many images as the contrastive model's two views) at KL weight 0.1: its summed BCE covers
# 4x fewer pixels than at 28 px, and with beta 1 it collapses on the bits.
MAIN_JOB_IMAGE_SIZE = 14
MAIN_JOB_DEFAULTS = {"train_steps": 250, "vae_kl_weight": 0.1}
# The grey shapes' scale (experiments/suppression/randbit_grey_shapes.flags, which says why):
# 1200 steps of batch 128, at which the per-view control holds at 20 bits.
GREY_SHAPES_DEFAULTS = {"train_steps": 1200, "batch_size": 128}
# The remedies' RandBit testbed (`remedies.TESTBEDS["randbit"]`, test_bench_remedies.py): the
# main job's images in twice the updates (500 steps of batch 128 see what 250 of 256 see), at
# which rotation prediction keeps the class at 20 bits (seeds 0-2: 0.875 / 0.889 / 0.875,
# against 0.839 / 0.794 / 0.819 at 250 x 256) and contrastive stays suppressed (0.08-0.11).
REMEDIES_DEFAULTS = {"train_steps": 500, "batch_size": 128}


def define_flags() -> None:
    # The main job: the effect with its controls, tau 0.1 (6 trained runs, 4 floors). The paper's
    # full figure (3 temperatures, bits 0..20) is experiments/suppression/randbit_figure5a.flags.
    suppression.define_flags(
        temperatures=(0.1,), models=("contrastive", "vae", "random_init"), **MAIN_JOB_DEFAULTS
    )
    flags.DEFINE_list("bits", ["0", "5", "10", "20"], "Numbers of random bits (0..30).")
    flags.DEFINE_list(
        "bit_mode",
        ["shared", "per_view"],
        "Bit modes: shared (one code per image, in both views: the study) and/or per_view (a "
        "code drawn per view, which cannot help the two-view task: the control; it runs the "
        "contrastive models only (contrastive and the remedies), as the VAE and supervised "
        "references see one view).",
    )
    flags.DEFINE_list(
        "control_bits",
        None,
        "Bit counts, among --bits, at which the controls that cost a training run each are "
        "measured: the per-view bit mode and the trained references (vae, supervised). Default: "
        "the largest of --bits, where suppression is strongest. The contrastive models in shared "
        "mode and the random-init floor (seconds each) run at every bit count.",
    )
    flags.DEFINE_enum(
        "dataset",
        "digits",
        list(DATASET_CHOICES),
        "digits: scikit-learn's (offline); grey_shapes: procedural (offline; 6 kinds of shape, "
        "a testbed where training matters: an untrained encoder probes the digits at ~0.94); "
        "mnist, cifar10: TFDS (prepared under --data_dir).",
    )
    flags.DEFINE_integer("num_train", None, "Use only the first N training images.", lower_bound=1)
    flags.DEFINE_integer(
        "image_size",
        None,
        f"Side in pixels the offline datasets are rendered at (default: digits "
        f"{MAIN_JOB_IMAGE_SIZE}, the main job's scale, MNIST's is 28; grey_shapes 16); TFDS "
        "datasets keep their stored size.",
        lower_bound=8,
    )


# The references of --models that train a model of their own (random_init trains nothing).
TRAINED_REFERENCES = ("vae", "supervised")
# --models=per_view: the control before it became --bit_mode (a data mode, not a model).
_DEPRECATED_PER_VIEW_MODEL = "per_view"


def main(argv: list[str]) -> None:
    del argv
    bits = cli.list_flag("bits", minimum=0)
    for b in bits:  # bad values fail before any training
        try:
            RandBit(b)
        except ValueError as error:
            raise ValueError(f"--bits: {error}") from None
    control_bits = cli.list_flag("control_bits", minimum=0) if FLAGS.control_bits else [max(bits)]
    if not set(control_bits) <= set(bits):
        raise ValueError(
            f"--control_bits must be among --bits ({','.join(map(str, bits))}), got "
            f"{','.join(FLAGS.control_bits)}"
        )
    modes = list(FLAGS.bit_mode)
    if not modes or any(m not in BIT_MODES for m in modes) or len(set(modes)) < len(modes):
        raise ValueError(f"--bit_mode must be distinct values among {', '.join(BIT_MODES)}")
    models = list(FLAGS.models)
    per_view_alias = _DEPRECATED_PER_VIEW_MODEL in models
    if per_view_alias:
        print(
            "--models=per_view is deprecated: it runs the contrastive model with "
            "--bit_mode=per_view; use that flag",
            file=sys.stderr,
        )
        models.remove(_DEPRECATED_PER_VIEW_MODEL)
    # Per-view bits are a control of the two-view objective: the contrastive family only.
    per_view = [m for m in models if m in CONTRASTIVE_FAMILY] if "per_view" in modes else []
    if per_view_alias and "contrastive" not in per_view:
        per_view.insert(0, "contrastive")
    models_of = {"shared": models if "shared" in modes else [], "per_view": per_view}
    if not any(models_of.values()):
        raise ValueError(
            f"--models={','.join(FLAGS.models)} with --bit_mode={','.join(modes)} runs nothing "
            f"(per_view runs the contrastive models only: {', '.join(CONTRASTIVE_FAMILY)})"
        )
    if FLAGS.image_size is not None and FLAGS.dataset not in OFFLINE_DATASETS:
        raise ValueError(
            f"--image_size applies to the offline datasets ({', '.join(OFFLINE_DATASETS)}) only, "
            f"not --dataset={FLAGS.dataset}"
        )
    image_size = FLAGS.image_size or (MAIN_JOB_IMAGE_SIZE if FLAGS.dataset == "digits" else None)
    options = RandBitOptions(FLAGS.dataset, FLAGS.data_dir, FLAGS.num_train, image_size)
    points = [{"bits": b} for b in bits]
    jobs = [
        job
        for mode in BIT_MODES
        if models_of[mode]
        for job in suppression.jobs_from_flags(
            EXPERIMENT, points, options, variants=[{"bit_mode": mode}], models=models_of[mode]
        )
    ]
    # Without bits the two modes are the same data: a model's shared run is its per-view one.
    jobs = [
        j
        for j in jobs
        if j.variant["bit_mode"] == "shared"
        or j.point["bits"]
        or j.model not in models_of["shared"]
    ]
    # The controls that train a model cost as much as the study: only at --control_bits.
    jobs = [
        j
        for j in jobs
        if j.point["bits"] in control_bits
        or (j.variant["bit_mode"] == "shared" and j.model not in TRAINED_REFERENCES)
    ]
    jobs.sort(key=lambda job: bits.index(job.point["bits"]))  # stable: point by point
    suppression.main(EXPERIMENT, jobs, __name__)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
