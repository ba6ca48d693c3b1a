"""What the `cifar` and `imagenet` entry points share: flags, data, the run, its results.

An entry point is an `Experiment`: a name and the flag defaults that make a run CIFAR-like
or ImageNet-like (paper-notes section 2). `launch(experiment)` applies those defaults,
parses the flags (flagfiles included) and runs `main`, which

1. builds the runtime (strategy, XLA, checkpoints; `cl_properties.experiments.runtime`)
   and starts it before any other TensorFlow work;
2. loads `--dataset` (a name in `cl_properties.data.DATASETS`: TFDS datasets prepared under
   `--data_dir`, or offline ones such as `shapes`, procedural coloured shapes, or `digits`,
   scikit-learn's) as a `DataSpec` with the augmentation and evaluation preprocessing that
   the flags describe;
3. pretrains and evaluates with `train_and_evaluate` (online probe, linear evaluation on
   frozen features, weighted kNN), resuming from `--output_dir`'s checkpoints;
4. writes results.json / results.csv to `--output_dir` and prints the table.

Flags are read only in `main`; `load_data` and `augment_config` take explicit arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from absl import flags

from cl_properties.data import (
    DATASETS,
    AugmentConfig,
    EvalPreprocess,
    dataset_classes,
    default_splits,
    load_dataset,
)
from cl_properties.distribute import is_chief
from cl_properties.experiments import cli, runtime
from cl_properties.results import RESULTS_JSON, format_table, write_results
from cl_properties.training import DataSpec, EvalConfig, PretrainConfig, train_and_evaluate

FLAGS = flags.FLAGS

EXPERIMENTS = ("cifar", "imagenet")


def define_flags() -> None:
    """Defines the flags of the cifar and imagenet entry points: the shared pretraining and
    runtime flags, data, augmentation and evaluation (once per process; importing this module
    defines none, so that other entry points can share a process with it)."""
    if "experiment" in FLAGS:
        return
    cli.define_pretrain_flags()
    runtime.define_runtime_flags()
    flags.DEFINE_enum(
        "experiment",
        None,
        EXPERIMENTS,
        "Entry point these flags are for (set by the entry point and by flagfiles; a mismatch is "
        "an error).",
    )
    # Data.
    flags.DEFINE_enum(
        "dataset",
        "cifar10",
        list(DATASETS),
        "Dataset, by its name in cl_properties.data.DATASETS (TFDS ones prepared under "
        "--data_dir): "
        + "; ".join(f"{name}: {entry.summary}" for name, entry in DATASETS.items())
        + ".",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "TFDS data_dir (default: TFDS_DATA_DIR or ~/tensorflow_datasets); nothing is downloaded.",
    )
    flags.DEFINE_string(
        "train_split",
        None,
        "Split to pretrain on (default: train; train[:90%] for tf_flowers).",
    )
    flags.DEFINE_string(
        "test_split",
        None,
        "Split to evaluate on (default: test; validation for imagenet2012; train[90%:] for "
        "tf_flowers).",
    )
    flags.DEFINE_integer(
        "image_size",
        None,
        "Side of the encoder's square input: views and evaluation images are resized to it "
        "(default: the dataset's own size; needed for datasets of varying size).",
        lower_bound=8,
    )
    flags.DEFINE_integer(
        "num_train",
        5000,
        "Training images of --dataset=shapes (other datasets: their split's size).",
        lower_bound=1,
    )
    flags.DEFINE_integer("num_test", 1000, "Test images of --dataset=shapes.", lower_bound=1)
    # Augmentation (SimCLR's; paper-notes section 2).
    flags.DEFINE_boolean("crop", True, "Random resized crop.")
    flags.DEFINE_float(
        "crop_area_min", 0.08, "Smallest crop area fraction.", lower_bound=0.0, upper_bound=1.0
    )
    flags.DEFINE_boolean("flip", True, "Random horizontal flip.")
    flags.DEFINE_boolean("color_jitter", True, "Colour jitter (p 0.8) and grayscale (p 0.2).")
    flags.DEFINE_float(
        "jitter_strength",
        0.5,
        "Colour jitter strength s (0.5 CIFAR, 1.0 ImageNet).",
        lower_bound=0.0,
    )
    flags.DEFINE_boolean("blur", False, "Gaussian blur with probability 0.5 (ImageNet).")
    flags.DEFINE_float(
        "eval_crop_proportion",
        1.0,
        "Central crop kept at evaluation (0.875 ImageNet, 1 CIFAR).",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    # Evaluation.
    flags.DEFINE_boolean(
        "offline_eval",
        True,
        "Linear evaluation and kNN on frozen features after pretraining (else online probes only).",
    )
    flags.DEFINE_integer(
        "linear_epochs", 100, "Epochs of the linear classifier on frozen features.", lower_bound=1
    )
    cli.define_linear_protocol_flag()
    flags.DEFINE_float(
        "linear_learning_rate",
        0.1,
        "Learning rate of the linear classifier (momentum SGD).",
        lower_bound=0.0,
    )
    flags.DEFINE_integer("knn_k", 200, "Neighbours of the weighted kNN.", lower_bound=1)
    flags.DEFINE_float("knn_temperature", 0.1, "Temperature of the kNN vote weights exp(s / T).")
    flags.DEFINE_integer(
        "eval_batch_size",
        256,
        "Batch size of feature extraction and linear evaluation.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "verbose",
        1,
        "Keras output: 0 silent, 1 progress bar, 2 one line per loop.",
        lower_bound=0,
        upper_bound=2,
    )
    flags.register_validator(
        "crop_area_min", lambda a: a > 0, message="--crop_area_min must be in (0, 1]"
    )
    flags.register_validator(
        "eval_crop_proportion", lambda p: p > 0, message="--eval_crop_proportion must be in (0, 1]"
    )
    flags.register_validator(
        "knn_temperature", lambda t: t > 0, message="--knn_temperature must be > 0"
    )


@dataclass(frozen=True)
class Experiment:
    """An entry point: its name ("cifar", "imagenet"), its flag defaults and its loss presets
    (loss name -> arguments replacing the registry's, e.g. CIFAR's NT-Xent tau 0.2: a
    --temperature default would also reach losses with another temperature, or none)."""

    name: str
    defaults: Mapping[str, Any]
    loss_presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.name not in EXPERIMENTS:
            raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {self.name!r}")


def augment_config(
    *,
    crop: bool,
    crop_area_min: float,
    flip: bool,
    color_jitter: bool,
    jitter_strength: float,
    blur: bool,
) -> AugmentConfig:
    """SimCLR's augmentation with these switches (crop area [crop_area_min, 1], ratio
    3/4-4/3, jitter p 0.8, grayscale p 0.2, blur p 0.5, bicubic resizing; `load_data` sets
    the output size)."""
    return AugmentConfig(
        crop=crop,
        crop_area=(crop_area_min, 1.0),
        flip=flip,
        color_jitter=color_jitter,
        jitter_strength=jitter_strength,
        blur=blur,
    )


def _native_size(source: tf.data.Dataset) -> tuple[tuple[int, int] | None, int]:
    """((height, width) or None when it varies, channels) of a source's images."""
    shape = source.element_spec["image"].shape
    height, width, channels = shape
    return ((height, width) if height is not None and width is not None else None), int(channels)


def load_data(
    dataset: str,
    *,
    augment: AugmentConfig,
    image_size: int | None = None,
    data_dir: str | None = None,
    train_split: str | None = None,
    test_split: str | None = None,
    num_train: int = 5000,
    num_test: int = 1000,
    eval_crop_proportion: float = 1.0,
) -> DataSpec:
    """The train and test sources of `dataset` and how to view them, as a DataSpec.

    The sources are `load_dataset(dataset, split, ...)` of the given splits (default: the
    dataset's `default_splits`); TFDS datasets are read from `data_dir` (never downloaded; a
    missing one raises DataNotFoundError), offline ones are rendered at `image_size` and
    shapes makes `num_train` / `num_test` images. One probe per label, with the dataset's
    class count (`dataset_classes`).

    The encoder input is image_size x image_size (default: the dataset's own size, which must
    then be fixed). `augment.output_size` is replaced by image_size where the images need
    resizing; evaluation takes a central crop of `eval_crop_proportion` resized to
    image_size (SimCLR's ImageNet protocol; the identity at 1.0 on images of that size).
    Raises ValueError for an unknown dataset or a varying-size one without image_size.
    """
    default_train, default_test = default_splits(dataset)

    def load(flag: str, split: str | None, default: str, n: int) -> tf.data.Dataset:
        try:
            return load_dataset(
                dataset, split or default, data_dir=data_dir, image_size=image_size, num_examples=n
            )
        except ValueError as error:
            if split is None:
                raise
            raise ValueError(f"--{flag}={split}: {error}") from None

    train = load("train_split", train_split, default_train, num_train)
    test = load("test_split", test_split, default_test, num_test)
    probes = dataset_classes(dataset, data_dir=data_dir)
    native, channels = _native_size(train)
    if native is None and image_size is None:
        raise ValueError(f"dataset {dataset!r} has images of varying size: give --image_size")
    size = (image_size, image_size) if image_size else native
    resize = None if size == native else image_size
    return DataSpec(
        train=train,
        test=test,
        input_shape=(*size, channels),
        probes=probes,
        augment=dataclasses.replace(augment, output_size=resize),
        eval_preprocess=EvalPreprocess(
            output_size=None if resize is None and eval_crop_proportion == 1.0 else size,
            crop_proportion=eval_crop_proportion,
        ),
    )


def default_output_dir(experiment: str, dataset: str, config: PretrainConfig, loss: str) -> str:
    """runs/<experiment>/<dataset>_<encoder>_<loss>_head<depth>_seed<seed>: a rerun of the
    same configuration finds (and resumes from) its checkpoints."""
    name = f"{dataset}_{config.encoder.name}_{loss}_head{config.head.depth}_seed{config.seed}"
    return os.path.join("runs", experiment, name)


def apply_defaults(experiment: Experiment) -> None:
    """Defines the flags if needed and makes `experiment`'s defaults theirs (before parsing)."""
    define_flags()
    unknown = sorted(set(experiment.defaults) - set(FLAGS))
    if unknown:
        raise ValueError(f"{experiment.name} sets defaults of undefined flags: {unknown}")
    FLAGS.set_default("experiment", experiment.name)
    for name, value in experiment.defaults.items():
        FLAGS.set_default(name, value)


def launch(experiment: Experiment, argv: Sequence[str] | None = None) -> None:
    """The program: `experiment`'s defaults, then flags parsed from `argv` (default
    sys.argv) and `main`, with errors as one line (`cli.run`)."""
    apply_defaults(experiment)
    cli.run(functools.partial(main, experiment), argv)


def _run_config(config: PretrainConfig, data: DataSpec, evaluation: EvalConfig) -> dict[str, Any]:
    """Everything that determines the run, for results.json."""
    return {
        "flags": cli.flag_values(cli.__name__, runtime.__name__, __name__),
        "pretrain": config.to_dict(),
        "evaluation": dataclasses.asdict(evaluation),
        "augment": dataclasses.asdict(data.augment),
        "eval_preprocess": dataclasses.asdict(data.eval_preprocess),
        "data": {
            "dataset": FLAGS.dataset,
            "train_examples": int(data.train.cardinality()),
            "test_examples": int(data.test.cardinality()),
            "input_shape": list(data.input_shape),
            "probes": dict(data.probes),
        },
    }


def main(experiment: Experiment, argv: Sequence[str]) -> None:
    """One pretraining run as the parsed flags describe it (see the module docstring)."""
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {list(argv[1:])}: every setting is a --flag")
    if FLAGS.experiment != experiment.name:
        raise ValueError(
            f"these flags are for --experiment={FLAGS.experiment}: run "
            f"python -m cl_properties.experiments.{FLAGS.experiment}"
        )
    started = time.perf_counter()
    loss = cli.loss_config_from_flags(experiment.loss_presets)
    run_time = runtime.runtime_from_flags()
    strategy = run_time.start()
    augment = augment_config(
        crop=FLAGS.crop,
        crop_area_min=FLAGS.crop_area_min,
        flip=FLAGS.flip,
        color_jitter=FLAGS.color_jitter,
        jitter_strength=FLAGS.jitter_strength,
        blur=FLAGS.blur,
    )
    data = load_data(
        FLAGS.dataset,
        augment=augment,
        image_size=FLAGS.image_size,
        data_dir=FLAGS.data_dir,
        train_split=FLAGS.train_split,
        test_split=FLAGS.test_split,
        num_train=FLAGS.num_train,
        num_test=FLAGS.num_test,
        eval_crop_proportion=FLAGS.eval_crop_proportion,
    )
    train_size = int(data.train.cardinality())
    config = run_time.configure(
        cli.pretrain_config_from_flags(
            num_train_examples=train_size if train_size > 0 else None, loss=loss
        )
    )
    if train_size > 0:
        cli.check_fits_training_set(train_size, knn_k=FLAGS.knn_k if FLAGS.offline_eval else None)
    evaluation = EvalConfig(
        linear_epochs=FLAGS.linear_epochs,
        linear_learning_rate=FLAGS.linear_learning_rate,
        knn_k=FLAGS.knn_k,
        knn_temperature=FLAGS.knn_temperature,
        batch_size=FLAGS.eval_batch_size,
        offline=FLAGS.offline_eval,
        linear_protocol=FLAGS.linear_protocol,
    )
    output_dir = FLAGS.output_dir or default_output_dir(
        experiment.name, FLAGS.dataset, config, FLAGS.loss
    )
    run_config = _run_config(config, data, evaluation)
    chief = is_chief(strategy)
    with runtime.output_run(
        output_dir,
        config=run_config,
        seed=config.seed,
        fresh=run_time.checkpoints.fresh,
        chief=chief,
    ):
        finished = runtime.start_run(output_dir, run_config, seed=config.seed, chief=chief)
        if finished:
            _print_table(finished["rows"][0], data.probes)
            print(
                f"{output_dir} holds this run, completed ({RESULTS_JSON}); pass --fresh to run it "
                "again",
                file=sys.stderr,
            )
            return
        result, metrics = train_and_evaluate(
            config,
            data,
            evaluation=evaluation,
            strategy=strategy,
            model_dir=output_dir,
            checkpoints=run_time.checkpoints,
            verbose=FLAGS.verbose,
        )
        row = {
            "experiment": experiment.name,
            "dataset": FLAGS.dataset,
            "encoder": config.encoder.name,
            "loss": FLAGS.loss,
            "head_depth": config.head.depth,
            "temperature": config.loss.resolved().get("temperature"),
            "lambda_weight": config.loss.resolved().get("lambda_weight"),
            "batch_size": config.batch_size,
            "train_steps": config.train_steps,
            "seed": config.seed,
            **({"linear_protocol": evaluation.linear_protocol} if evaluation.offline else {}),
            **metrics,
        }
        if not chief:
            return
        write_results(
            output_dir,
            rows=[row],
            config=run_config,
            seed=config.seed,
            wall_time_s=time.perf_counter() - started,
            extra={
                "distribution": result.distribution,
                "resumed_from_step": result.resumed_from_step,
                "history": result.history,
            },
        )
    _print_table(row, data.probes)
    print(f"wrote {os.path.join(output_dir, RESULTS_JSON)} and results.csv", file=sys.stderr)


def _print_table(row: Mapping[str, Any], probes: Mapping[str, int]) -> None:
    columns = ["dataset", "encoder", "loss", "head_depth"]
    for key in probes:
        columns += [c for c in (f"linear_{key}", f"knn_{key}", f"online_{key}") if c in row]
    print(format_table([row], [*columns, "train_loss", "pretrain_seconds"]))
