"""Encoders (ResNet, ConvN), the projection head, intermediate features, and the trained
models: the two-view `ContrastiveModel`, its subclasses with an auxiliary objective (view
reconstruction, rotation prediction, both together, the bit-matched negatives oracle:
`AUXILIARIES`) and the VAE baseline."""

from cl_properties.models.auxiliary import (
    AUXILIARIES,
    AuxiliaryContrastiveModel,
    BitMatchedContrastiveModel,
    ReconstructionContrastiveModel,
    ReconstructionRotationContrastiveModel,
    RotationContrastiveModel,
    auxiliary_arguments,
    build_auxiliary_model,
)
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.models.convn import convn
from cl_properties.models.heads import ProjectionHead
from cl_properties.models.loading import load_encoder, with_input_shape
from cl_properties.models.registry import ENCODER_NAMES, build_encoder
from cl_properties.models.resnet import RESNET_SPECS, ResNetSpec, resnet
from cl_properties.models.taps import FeatureTap, feature_taps, tap_names
from cl_properties.models.vae import ConvVAE, build_conv_vae, conv_decoder

__all__ = [
    "AUXILIARIES",
    "AuxiliaryContrastiveModel",
    "BitMatchedContrastiveModel",
    "ContrastiveModel",
    "ConvVAE",
    "ENCODER_NAMES",
    "FeatureTap",
    "ProjectionHead",
    "RESNET_SPECS",
    "ReconstructionContrastiveModel",
    "ReconstructionRotationContrastiveModel",
    "ResNetSpec",
    "RotationContrastiveModel",
    "auxiliary_arguments",
    "build_auxiliary_model",
    "build_conv_vae",
    "build_encoder",
    "conv_decoder",
    "convn",
    "feature_taps",
    "load_encoder",
    "resnet",
    "tap_names",
    "with_input_shape",
]
