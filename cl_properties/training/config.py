"""Explicit configuration of a contrastive pretraining run (no flags: experiments build these)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cl_properties.losses import build_loss, loss_arguments
from cl_properties.models.auxiliary import AUXILIARIES, auxiliary_arguments
from cl_properties.models.contrastive import BN_VIEWS, PROBE_VIEWS
from cl_properties.optimization import OptimizerConfig

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder: a name of `cl_properties.models.ENCODER_NAMES` and its options."""

    name: str = "resnet18"
    width_multiplier: float = 1.0
    cifar_stem: bool | None = None  # None: SimCLR's rule, CIFAR stem for images <= 32 px
    sync_bn: bool = False


@dataclass(frozen=True)
class HeadConfig:
    """The projection head: depth 0 (identity), 1 (linear) ... N (MLP)."""

    depth: int = 2
    hidden_dim: int | None = None  # None: the representation's width (SimCLR)
    output_dim: int = 128

    def __post_init__(self):
        if self.depth < 0:
            raise ValueError(f"head depth must be >= 0, got {self.depth}")


@dataclass(frozen=True)
class LossConfig:
    """A loss of the registry (`cl_properties.losses.LOSSES`) by name, and the constructor
    arguments that replace its paper preset (e.g. {"temperature": 0.2, "scale": 2.0}; the
    seed is the run's). Checked at construction: ValueError for an unknown name or argument."""

    name: str = "nt_xent"
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "arguments", dict(self.arguments))
        self.build(seed=0)

    def build(self, *, seed: int):
        """The configured loss, drawing its random numbers (SWD) from `seed`."""
        try:
            return build_loss(self.name, **self.arguments, seed=seed)
        except TypeError as error:  # an argument the loss class does not take
            raise ValueError(f"loss {self.name!r}: {error}") from None

    def resolved(self) -> dict[str, Any]:
        """Every constructor argument: the preset, replaced by `arguments`."""
        return loss_arguments(self.name, **self.arguments)


@dataclass(frozen=True)
class AuxiliaryConfig:
    """An auxiliary objective added to the loss (`cl_properties.models.AUXILIARIES`) by name,
    and the arguments that replace its preset (e.g. {"weight": 3.0}). ValueError at
    construction for an unknown name or argument."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "arguments", dict(self.arguments))
        self.resolved()

    def resolved(self) -> dict[str, Any]:
        """Every argument: the preset, replaced by `arguments`."""
        return auxiliary_arguments(self.name, **self.arguments)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pretraining run, given its data."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    auxiliary: AuxiliaryConfig | None = None  # a term added to the loss (None: the loss alone)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    batch_size: int = 256  # global batch, split across replicas
    train_steps: int = 1000
    steps_per_loop: int = 100  # one Keras "epoch": logging and checkpoint interval
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool | None = None  # None: Keras decides (off under MirroredStrategy on CPU)
    bn_views: str = "joint"  # BatchNorm over both views at once, or "separate" (the colab's)
    probe_views: str = "both"  # online probes train on both views, or the "first" (colab's)

    def __post_init__(self):
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (positives and negatives), got {self.batch_size}"
            )
        if self.train_steps < 1:
            raise ValueError(f"train_steps must be >= 1, got {self.train_steps}")
        if self.steps_per_loop < 1:
            raise ValueError(f"steps_per_loop must be >= 1, got {self.steps_per_loop}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.bn_views not in BN_VIEWS:
            raise ValueError(f"bn_views must be one of {BN_VIEWS}, got {self.bn_views!r}")
        if self.probe_views not in PROBE_VIEWS:
            raise ValueError(f"probe_views must be one of {PROBE_VIEWS}, got {self.probe_views!r}")
        if self.auxiliary is not None:  # before any run: e.g. bit_matched needs NT-Xent
            AUXILIARIES[self.auxiliary.name].model_class.check_loss(self.loss.build(seed=self.seed))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CheckpointConfig:
    """Checkpointing of a pretraining run in `model_dir` (not part of what the run computes).

    A checkpoint is written every `every_steps` steps (None: every `steps_per_loop`; must be
    a multiple of it) and at the end; the last `keep` are kept. A run resumes from the
    latest checkpoint in `model_dir` unless `fresh`, which deletes the checkpoints, history
    and logs there first.
    """

    every_steps: int | None = None
    keep: int = 3
    fresh: bool = False

    def __post_init__(self):
        if self.every_steps is not None and (
            isinstance(self.every_steps, bool) or self.every_steps < 1
        ):
            raise ValueError(
                f"checkpoint every_steps must be >= 1 (or None), got {self.every_steps!r}"
            )
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1:
            raise ValueError(f"keep must be an int >= 1 checkpoints, got {self.keep!r}")
