"""Encoders (ResNet, ConvN), the projection head and access to intermediate features."""

from cl_properties.models.convn import convn
from cl_properties.models.heads import ProjectionHead
from cl_properties.models.registry import ENCODER_NAMES, build_encoder
from cl_properties.models.resnet import RESNET_SPECS, ResNetSpec, resnet
from cl_properties.models.taps import FeatureTap, feature_taps, tap_names

__all__ = [
    "ENCODER_NAMES",
    "FeatureTap",
    "ProjectionHead",
    "RESNET_SPECS",
    "ResNetSpec",
    "build_encoder",
    "convn",
    "feature_taps",
    "resnet",
    "tap_names",
]
