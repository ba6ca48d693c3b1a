"""Flags shared by every experiment, and their translation into explicit configuration.

This package is the only place that reads absl flags; everything below it takes dataclasses.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import tensorflow as tf
from absl import app, flags
from absl import logging as absl_logging

from cl_properties.data import DataNotFoundError
from cl_properties.losses import CANDIDATES, LOSSES, loss_uses
from cl_properties.models import ENCODER_NAMES
from cl_properties.models.contrastive import BN_VIEWS, PROBE_VIEWS
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import (
    EncoderConfig,
    HeadConfig,
    Interrupted,
    LossConfig,
    NonFiniteLossError,
    PretrainConfig,
)
from cl_properties.training.config import PRECISIONS
from cl_properties.training.evaluate import LINEAR_PROTOCOLS

FLAGS = flags.FLAGS

# Exit status of a run stopped by a configuration or data error (absl's usage errors use 1).
USAGE_EXIT = 2


def define_pretrain_flags() -> None:
    """Defines the flags of a contrastive pretraining run (model, loss, optimizer, run length),
    once per process (a second call does nothing).

    Values outside their ranges fail at parsing, naming the flag (see `run`).
    """
    if "train_steps" in FLAGS and FLAGS.find_module_defining_flag("train_steps") == __name__:
        return
    flags.DEFINE_integer(
        "seed",
        0,
        "Seed of every random choice: weights, data order, augmentation, SWD projections.",
        lower_bound=0,
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Where results, logs and checkpoints go (default: runs/<experiment>/...).",
    )
    flags.DEFINE_alias("model_dir", "output_dir")
    flags.DEFINE_enum("encoder", "resnet18", list(ENCODER_NAMES), "Encoder architecture.")
    flags.DEFINE_float("width_multiplier", 1.0, "Encoder width multiplier.")
    flags.DEFINE_integer(
        "head_depth", 2, "Projection head layers: 0 identity, 1 linear, N MLP.", lower_bound=0
    )
    flags.DEFINE_integer(
        "head_hidden_dim",
        None,
        "Hidden width of the head (default: representation width).",
        lower_bound=1,
    )
    flags.DEFINE_integer("head_output_dim", 128, "Projection output dimension.", lower_bound=1)
    flags.DEFINE_enum(
        "loss",
        "nt_xent",
        list(LOSSES),
        "Loss, by its name in cl_properties.losses.LOSSES: "
        + "; ".join(f"{name}: {entry.summary}" for name, entry in LOSSES.items())
        + ".",
    )
    flags.DEFINE_float(
        "temperature",
        None,
        "Temperature tau (NT-Xent and the LogSumExp distribution term; SWD has none; default: "
        "the loss's own, the entry point's where it has one, e.g. cifar's NT-Xent 0.2).",
    )
    flags.DEFINE_float(
        "lambda_weight",
        None,
        "Weight lambda of the distribution term (generalized losses; NT-Xent has none; default: "
        "the loss's preset).",
        lower_bound=0.0,
    )
    flags.DEFINE_float(
        "ifm_epsilon",
        None,
        "IFM's perturbation eps of the cosine similarities (with --loss=ifm, or a suppression "
        "experiment's --models=ifm; default: its preset, 0.1).",
        lower_bound=0.0,
    )
    flags.DEFINE_float(
        "ifm_alpha",
        None,
        "IFM's weight alpha of the perturbed NT-Xent against the clean one (with --loss=ifm, or "
        "a suppression experiment's --models=ifm; default: its preset, 1).",
        lower_bound=0.0,
    )
    flags.DEFINE_enum(
        "loss_candidates",
        None,
        list(CANDIDATES),
        "NT-Xent's candidates per anchor: all (the other 2n - 1 embeddings, SimCLR's, the "
        "default) or cross_view (the other view's n, the official RandBit colab's).",
    )
    flags.DEFINE_enum(
        "bn_views",
        "joint",
        list(BN_VIEWS),
        "BatchNorm over both views in one batch (joint, SimCLR's) or over each view alone "
        "(separate, the official RandBit colab's).",
    )
    flags.DEFINE_enum(
        "probe_views",
        "both",
        list(PROBE_VIEWS),
        "Views the online probes train on: both, or the first (the official RandBit colab's).",
    )
    flags.DEFINE_float(
        "loss_scale",
        1.0,
        "Multiplies the loss and its terms; 2 with --loss=nt_xent reproduces the scale of "
        "SimCLR's add_contrastive_loss (the sum of the two views' mean cross-entropies).",
    )
    flags.DEFINE_enum("optimizer", "lars", ["lars", "adam", "sgd"], "Optimizer.")
    flags.DEFINE_float(
        "learning_rate", 0.3, "Base learning rate, before batch-size scaling.", lower_bound=0.0
    )
    flags.DEFINE_enum(
        "lr_scaling",
        "linear",
        ["linear", "sqrt", "none"],
        "lr*B/256 (linear), lr*sqrt(B) or as given.",
    )
    flags.DEFINE_enum(
        "lr_schedule", "cosine", ["cosine", "constant", "polynomial"], "Decay after warmup."
    )
    flags.DEFINE_float(
        "warmup_fraction",
        0.0,
        "Fraction of the training steps spent in linear warmup.",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    flags.DEFINE_float(
        "warmup_epochs",
        0.0,
        "Linear warmup in passes over the training set (needs its size; 0: --warmup_fraction).",
        lower_bound=0.0,
    )
    flags.DEFINE_float(
        "weight_decay", 1e-6, "Weight decay (BN and bias variables excluded).", lower_bound=0.0
    )
    flags.DEFINE_integer(
        "batch_size", 256, "Global batch size, split across replicas.", lower_bound=2
    )
    flags.DEFINE_integer(
        "train_steps", 300, "Training steps (ignored when --epochs > 0).", lower_bound=1
    )
    flags.DEFINE_float(
        "epochs",
        0.0,
        "Training length in passes over the training set: steps = epochs * size / batch, rounded "
        "up to a multiple of --steps_per_loop (0: --train_steps).",
        lower_bound=0.0,
    )
    flags.DEFINE_integer(
        "steps_per_loop", 100, "Steps between logs and checkpoints.", lower_bound=1
    )
    flags.DEFINE_enum(
        "precision",
        "float32",
        list(PRECISIONS),
        "Compute precision; losses and probes stay float32.",
    )
    flags.register_validator(
        "temperature", lambda t: t is None or t > 0, message="--temperature must be > 0"
    )
    flags.register_validator(
        "loss_scale",
        lambda s: math.isfinite(s) and s > 0,
        message="--loss_scale must be finite and > 0",
    )
    flags.register_validator(
        "width_multiplier", lambda w: w > 0, message="--width_multiplier must be > 0"
    )


def define_linear_protocol_flag() -> None:
    """Defines --linear_protocol, how the offline linear probe trains (`EvalConfig`)."""
    flags.DEFINE_enum(
        "linear_protocol",
        "frozen",
        list(LINEAR_PROTOCOLS),
        "Offline linear probe: frozen (on precomputed features of the plain training images, "
        "standardized; fast) or simclr (SimCLR's tf2/run.py: training images cropped and "
        "flipped anew every step, a zero-initialized classifier, batch 512).",
    )


# The datasets --digits takes the pasted digit images from (names in cl_properties.data.DATASETS).
DIGIT_DATASETS = ("sklearn", "mnist")


def define_digits_flag() -> None:
    """Defines --digits, the dataset of the digit images that DigitOnImages and MultiDigits
    paste (TFDS MNIST under --data_dir, which the experiment defines)."""
    flags.DEFINE_enum(
        "digits",
        "sklearn",
        list(DIGIT_DATASETS),
        "Digit images: scikit-learn 8x8 (offline) or TFDS MNIST.",
    )


# Flags that set a loss parameter: flag name -> the loss's argument.
LOSS_PARAMETER_FLAGS = {
    "temperature": "temperature",
    "lambda_weight": "lambda_weight",
    "ifm_epsilon": "epsilon",
    "ifm_alpha": "alpha",
    "loss_candidates": "candidates",
}


def check_loss_flags(losses: Mapping[str, str]) -> None:
    """ValueError naming the flag when a flag of `LOSS_PARAMETER_FLAGS` is given and none of
    the run's `losses` has its parameter (SWD has no temperature, NT-Xent no lambda, only IFM
    an epsilon and alpha). `losses`: what chose each loss -> its name in the registry, e.g.
    {"--loss=nt_xent": "nt_xent", "--models=ifm": "ifm"}."""
    for flag, argument in LOSS_PARAMETER_FLAGS.items():
        if FLAGS[flag].value is None or any(loss_uses(n, argument) for n in losses.values()):
            continue
        which = "which has" if len(losses) == 1 else "which have"
        raise ValueError(f"--{flag} does not apply to {' or '.join(losses)}, {which} no {argument}")


def loss_config_from_flags(
    entry_presets: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    name: str | None = None,
    run_losses: Mapping[str, str] | None = None,
) -> LossConfig:
    """The loss `name` (default --loss) with its arguments: the registry's preset, replaced by
    the entry point's own preset for that loss (`entry_presets`, loss name -> arguments, e.g.
    CIFAR's NT-Xent tau 0.2), replaced by those of --temperature / --lambda_weight /
    --ifm_epsilon / --ifm_alpha / --loss_candidates it has, when given; --loss_scale.
    ValueError naming the flag when it sets a parameter that none of the run's losses has
    (`check_loss_flags`): `run_losses`, by default --loss alone. A run of several losses (a
    suppression experiment's --models=ifm beside --loss) passes them all and a `name`."""
    name = name or FLAGS.loss
    check_loss_flags(run_losses or {f"--loss={FLAGS.loss}": FLAGS.loss})
    given = {
        argument: FLAGS[flag].value
        for flag, argument in LOSS_PARAMETER_FLAGS.items()
        if FLAGS[flag].value is not None and loss_uses(name, argument)
    }
    entry = dict((entry_presets or {}).get(name, {}))
    return LossConfig(name, {**entry, **given, "scale": FLAGS.loss_scale})


def _steps(epochs: float, num_examples: int, batch_size: int) -> int:
    return max(1, round(epochs * num_examples / batch_size))


def pretrain_config_from_flags(
    *, num_train_examples: int | None = None, **overrides
) -> PretrainConfig:
    """The PretrainConfig the flags describe; `overrides` replace fields (e.g. per sweep point).

    Run length: `--train_steps`, or with `--epochs` > 0, round(epochs * num_train_examples /
    batch_size) steps rounded up to a multiple of the loop length min(--steps_per_loop,
    steps) (at most one loop more than asked). Warmup: `--warmup_fraction` of the steps, or
    `--warmup_epochs` passes (round(warmup_epochs * num_train_examples / batch_size) steps).
    Raises ValueError when an epoch-based flag is given without `num_train_examples`, when
    both warmups are given, or when the warmup is longer than the run.
    """
    batch_size = FLAGS.batch_size
    by_epochs = [name for name in ("epochs", "warmup_epochs") if getattr(FLAGS, name) > 0]
    if by_epochs and not num_train_examples:
        raise ValueError(
            f"{', '.join(f'--{n}' for n in by_epochs)} needs the training-set size, which this "
            "experiment "
            "does not know: give --train_steps and --warmup_fraction instead"
        )
    if FLAGS.warmup_epochs > 0 and FLAGS.warmup_fraction > 0:
        raise ValueError("give --warmup_epochs or --warmup_fraction, not both")
    train_steps = FLAGS.train_steps
    if FLAGS.epochs > 0:
        train_steps = _steps(FLAGS.epochs, num_train_examples, batch_size)
    steps_per_loop = min(FLAGS.steps_per_loop, train_steps)
    if FLAGS.epochs > 0:  # an explicit --train_steps must itself be a multiple (pretrain checks)
        train_steps = math.ceil(train_steps / steps_per_loop) * steps_per_loop
    warmup = {"warmup_fraction": FLAGS.warmup_fraction}
    if FLAGS.warmup_epochs > 0:
        warmup = {"warmup_steps": _steps(FLAGS.warmup_epochs, num_train_examples, batch_size)}
        if warmup["warmup_steps"] > train_steps:
            raise ValueError(
                f"--warmup_epochs={FLAGS.warmup_epochs:g} is {warmup['warmup_steps']} steps, "
                "longer than the "
                f"run's {train_steps} steps"
            )
    fields = dict(
        encoder=EncoderConfig(name=FLAGS.encoder, width_multiplier=FLAGS.width_multiplier),
        head=HeadConfig(
            depth=FLAGS.head_depth,
            hidden_dim=FLAGS.head_hidden_dim,
            output_dim=FLAGS.head_output_dim,
        ),
        # A given loss may take flags --loss lacks (a suppression experiment's --models=ifm).
        loss=overrides["loss"] if "loss" in overrides else loss_config_from_flags(),
        optimizer=OptimizerConfig(
            name=FLAGS.optimizer,
            learning_rate=FLAGS.learning_rate,
            lr_scaling=FLAGS.lr_scaling,
            schedule=FLAGS.lr_schedule,
            weight_decay=FLAGS.weight_decay,
            **warmup,
        ),
        batch_size=batch_size,
        train_steps=train_steps,
        steps_per_loop=steps_per_loop,
        seed=FLAGS.seed,
        precision=FLAGS.precision,
        bn_views=FLAGS.bn_views,
        probe_views=FLAGS.probe_views,
    )
    fields.update(overrides)
    return PretrainConfig(**fields)


def list_flag(
    name: str,
    cast: Callable[[str], Any] = int,
    *,
    minimum: float | None = None,
    positive: bool = False,
) -> list:
    """The values of the list flag --name, cast (finite for floats), distinct, non-empty, at
    least `minimum` (and > 0 when `positive`); ValueError naming the flag otherwise."""
    raw = list(FLAGS[name].value or [])
    kind = "integers" if cast is int else "numbers"
    try:
        values = [cast(v) for v in raw]
    except ValueError:
        raise ValueError(f"--{name} must be a list of {kind}, got {','.join(raw)}") from None
    if not values or len(set(values)) != len(values):
        raise ValueError(f"--{name} must be distinct values, at least one, got {','.join(raw)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"--{name} must be finite numbers, got {','.join(raw)}")
    if (minimum is not None and min(values) < minimum) or (positive and min(values) <= 0):
        bound = f">= {minimum:g}" if minimum is not None else "> 0"
        raise ValueError(f"--{name} must be {bound}, got {','.join(raw)}")
    return values


def check_fits_training_set(size: int, *, knn_k: int | None) -> None:
    """ValueError naming the flag when --batch_size (or `knn_k`, the kNN probe's --knn_k)
    is larger than the training set of `size` images: a batch would hold an image twice
    (its own negative), a kNN vote more neighbours than there are."""
    if FLAGS.batch_size > size:
        raise ValueError(
            f"--batch_size={FLAGS.batch_size} is larger than the training set ({size} images)"
        )
    if knn_k is not None and knn_k > size:
        raise ValueError(f"--knn_k={knn_k} is larger than the training set ({size} images)")


def flag_values(*modules: str) -> dict:
    """{name: value} of the flags defined by `modules` (module names), for results.json."""
    return {f.name: f.value for module in modules for f in FLAGS.get_flags_for_module(module)}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _usage_error(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT)


def _program_flag_modules() -> list[str]:
    """The modules (names, or the __main__ module's file path) defining this program's flags."""
    return sorted(
        m for m in FLAGS.flags_by_module_dict() if "cl_properties" in m or m == sys.argv[0]
    )


def _help_text() -> str:
    """The program's docstring and every flag it defines, with its help and default."""
    main_doc = (getattr(sys.modules.get("__main__"), "__doc__", None) or "").strip()
    sections = [main_doc] if main_doc else []
    sections += [FLAGS.module_help(module) for module in _program_flag_modules()]
    sections.append("--helpfull also lists the flags of absl and TensorFlow.")
    return "\n\n".join(sections)


def _unreadable_flagfile(argv: Sequence[str]) -> str:
    """The first --flagfile of argv that is not UTF-8 text (the first given if a nested one is)."""
    named = [a.split("=", 1)[1] for a in argv if a.startswith(("--flagfile=", "-flagfile="))]
    for path in named:
        try:
            with open(path, encoding="utf-8") as f:
                f.read()
        except (OSError, UnicodeDecodeError):
            return path
    return f"{named[0]} (or a flagfile it includes)" if named else "a flagfile"


def _non_finite_floats() -> list[str]:
    """`--name=value` of every float flag of the program whose value is NaN or infinite."""
    found = []
    for module in _program_flag_modules():
        for flag in FLAGS.get_flags_for_module(module):
            if (
                isinstance(flag.parser, flags.FloatParser)
                and flag.value is not None
                and not math.isfinite(flag.value)
            ):
                found.append(f"--{flag.name}={flag.value}")
    return found


def _parse_flags(argv: Sequence[str]) -> list[str]:
    """absl's flag parsing, with every bad input reported as one line and exit status 2:
    bad values, unreadable flagfiles, non-finite floats. --help (-h) prints the program's own
    flags and exits 0."""
    if any(arg in ("--help", "-help", "-h", "--helpshort", "-helpshort", "-?") for arg in argv[1:]):
        print(_help_text())
        sys.exit(0)
    try:
        remaining = FLAGS(list(argv))
    except flags.Error as error:
        _usage_error(_one_line(error))
    except UnicodeDecodeError:
        _usage_error(f"flagfile {_unreadable_flagfile(argv)} is not a text file")
    bad = _non_finite_floats()
    if bad:
        _usage_error(f"flag {bad[0]}: must be a finite number")
    return remaining


def _raise_interrupted(signal_number: int, frame) -> None:
    raise Interrupted(
        f"interrupted by {signal.Signals(signal_number).name}; rerun the same command to resume",
        signal_number,
    )


def run(main: Callable[[list[str]], None], argv: Sequence[str] | None = None) -> None:
    """`app.run(main, argv)` (argv None: sys.argv) with errors reported as one line on stderr.

    Exit status 2: a bad flag value (at parsing), a ValueError (an inconsistent
    configuration, an unusable output folder) or DataNotFoundError (a TFDS dataset not
    prepared); 1: training stopped on a non-finite loss (results.json then says "failed");
    130 / 143: stopped by Ctrl-C / SIGTERM, with one line saying where (results.json then
    says "interrupted"; a rerun of the same command resumes). CL_PROPERTIES_TRACEBACK=1
    re-raises instead, with the traceback.
    """

    def guarded(args: list[str]) -> None:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, _raise_interrupted)
        # INFO lines of TensorFlow and TFDS (TPU initialization, dataset construction) would
        # drown a one-line error; --verbosity=0 shows them.
        if not FLAGS["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
            tf.get_logger().setLevel("WARNING")
        try:
            main(args)
        except KeyboardInterrupt as interrupt:
            if os.environ.get("CL_PROPERTIES_TRACEBACK"):
                raise
            message = str(interrupt) or "interrupted; rerun the same command to resume"
            print(_one_line(Exception(message)), file=sys.stderr)
            sys.exit(128 + getattr(interrupt, "signal_number", signal.SIGINT))
        except (ValueError, DataNotFoundError, NonFiniteLossError) as error:
            if os.environ.get("CL_PROPERTIES_TRACEBACK"):
                raise
            print(
                f"error: {_one_line(error)}  (set CL_PROPERTIES_TRACEBACK=1 for the traceback)",
                file=sys.stderr,
            )
            sys.exit(1 if isinstance(error, NonFiniteLossError) else USAGE_EXIT)

    app.run(guarded, argv=None if argv is None else list(argv), flags_parser=_parse_flags)
