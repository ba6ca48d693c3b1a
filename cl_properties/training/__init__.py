"""Contrastive pretraining: explicit configuration, the Keras `fit` driver, checkpoints."""

from cl_properties.training.callbacks import Interrupted, NonFiniteLossError
from cl_properties.training.checkpoints import CheckpointError, CheckpointManager
from cl_properties.training.config import (
    AuxiliaryConfig,
    CheckpointConfig,
    EncoderConfig,
    HeadConfig,
    LossConfig,
    PretrainConfig,
)
from cl_properties.training.evaluate import DataSpec, EvalConfig, train_and_evaluate
from cl_properties.training.pretrain import (
    DatasetFn,
    PretrainResult,
    build_contrastive_model,
    loop_steps,
    pretrain,
)

__all__ = [
    "AuxiliaryConfig",
    "CheckpointConfig",
    "CheckpointError",
    "CheckpointManager",
    "DataSpec",
    "EvalConfig",
    "Interrupted",
    "NonFiniteLossError",
    "train_and_evaluate",
    "DatasetFn",
    "EncoderConfig",
    "HeadConfig",
    "LossConfig",
    "PretrainConfig",
    "PretrainResult",
    "build_contrastive_model",
    "loop_steps",
    "pretrain",
]
