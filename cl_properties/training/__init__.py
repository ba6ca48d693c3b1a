"""Contrastive pretraining: explicit configuration and the Keras `fit` driver."""
from cl_properties.training.config import EncoderConfig, HeadConfig, LossConfig, PretrainConfig
from cl_properties.training.evaluate import DataSpec, EvalConfig, train_and_evaluate
from cl_properties.training.pretrain import DatasetFn, PretrainResult, build_contrastive_model, pretrain

__all__ = [
    "DataSpec",
    "EvalConfig",
    "train_and_evaluate",
    "DatasetFn",
    "EncoderConfig",
    "HeadConfig",
    "LossConfig",
    "PretrainConfig",
    "PretrainResult",
    "build_contrastive_model",
    "pretrain",
]
