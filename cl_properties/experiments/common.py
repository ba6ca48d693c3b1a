"""Flags shared by every experiment, and their translation into explicit configuration.

This package is the only place that reads absl flags; everything below it takes dataclasses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from absl import app, flags

from cl_properties.models import ENCODER_NAMES
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import EncoderConfig, HeadConfig, LossConfig, PretrainConfig
from cl_properties.training.config import PRECISIONS

FLAGS = flags.FLAGS

# The paper's five members of the loss family, by one name each (paper-notes section 1).
LOSSES = {
    "nt_xent": ("nt_xent", "hypersphere"),
    "decoupled": ("decoupled", "hypersphere"),
    "swd_hypersphere": ("swd", "hypersphere"),
    "swd_hypercube": ("swd", "hypercube"),
    "swd_normal": ("swd", "normal"),
}


def define_pretrain_flags() -> None:
    """Defines the flags of a contrastive pretraining run (model, loss, optimizer, run)."""
    flags.DEFINE_integer("seed", 0, "Seed of every random choice: weights, data order, augmentation, SWD projections.")
    flags.DEFINE_string("output_dir", None, "Where results, logs and checkpoints go (default: runs/<experiment>).")
    flags.DEFINE_enum("encoder", "resnet18", list(ENCODER_NAMES), "Encoder architecture.")
    flags.DEFINE_float("width_multiplier", 1.0, "Encoder width multiplier.")
    flags.DEFINE_integer("head_depth", 2, "Projection head layers: 0 identity, 1 linear, N MLP.")
    flags.DEFINE_integer("head_hidden_dim", None, "Hidden width of the head (default: representation width).")
    flags.DEFINE_integer("head_output_dim", 128, "Projection output dimension.")
    flags.DEFINE_enum("loss", "nt_xent", list(LOSSES), "Member of the generalized contrastive loss family.")
    flags.DEFINE_float("temperature", 0.1, "Temperature tau (NT-Xent and the LogSumExp distribution term).")
    flags.DEFINE_float("lambda_weight", 1.0, "Weight lambda of the distribution term (generalized losses).")
    flags.DEFINE_enum("optimizer", "lars", ["lars", "adam", "sgd"], "Optimizer.")
    flags.DEFINE_float("learning_rate", 0.3, "Base learning rate, before batch-size scaling.")
    flags.DEFINE_enum("lr_scaling", "linear", ["linear", "sqrt", "none"], "lr*B/256 (linear), lr*sqrt(B) or as given.")
    flags.DEFINE_enum("lr_schedule", "cosine", ["cosine", "constant", "polynomial"], "Decay after warmup.")
    flags.DEFINE_float("warmup_fraction", 0.0, "Fraction of the training steps spent in linear warmup.")
    flags.DEFINE_float("weight_decay", 1e-6, "Weight decay (BN and bias variables excluded).")
    flags.DEFINE_integer("batch_size", 256, "Global batch size, split across replicas.")
    flags.DEFINE_integer("train_steps", 300, "Training steps.")
    flags.DEFINE_integer("steps_per_loop", 100, "Steps between logs and checkpoints.")
    flags.DEFINE_enum("precision", "float32", list(PRECISIONS), "Compute precision; losses and probes stay float32.")


def loss_config_from_flags() -> LossConfig:
    method, prior = LOSSES[FLAGS.loss]
    return LossConfig(method=method, prior=prior, temperature=FLAGS.temperature, lambda_weight=FLAGS.lambda_weight)


def pretrain_config_from_flags(**overrides) -> PretrainConfig:
    """The PretrainConfig the flags describe; `overrides` replace fields (e.g. per sweep point)."""
    fields = dict(
        encoder=EncoderConfig(name=FLAGS.encoder, width_multiplier=FLAGS.width_multiplier),
        head=HeadConfig(depth=FLAGS.head_depth, hidden_dim=FLAGS.head_hidden_dim, output_dim=FLAGS.head_output_dim),
        loss=loss_config_from_flags(),
        optimizer=OptimizerConfig(
            name=FLAGS.optimizer,
            learning_rate=FLAGS.learning_rate,
            lr_scaling=FLAGS.lr_scaling,
            schedule=FLAGS.lr_schedule,
            warmup_fraction=FLAGS.warmup_fraction,
            weight_decay=FLAGS.weight_decay,
        ),
        batch_size=FLAGS.batch_size,
        train_steps=FLAGS.train_steps,
        steps_per_loop=min(FLAGS.steps_per_loop, FLAGS.train_steps),
        seed=FLAGS.seed,
        precision=FLAGS.precision,
    )
    fields.update(overrides)
    return PretrainConfig(**fields)


def run(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)`, with configuration errors reported as one line and exit status 2."""

    def guarded(argv: list[str]) -> None:
        try:
            main(argv)
        except ValueError as error:
            if os.environ.get("CL_PROPERTIES_TRACEBACK"):
                raise
            print(f"error: {error}  (set CL_PROPERTIES_TRACEBACK=1 for the traceback)", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)
