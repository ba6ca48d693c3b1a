"""build_encoder: names, stem selection, defaults, errors."""

import keras
import pytest

from cl_properties.models import ENCODER_NAMES, build_encoder


def test_names():
    assert set(ENCODER_NAMES) == {"resnet18", "resnet34", "resnet50", "resnet_small", "convn"}


@pytest.mark.parametrize("size,stem_kernel", [(32, 3), (16, 3), (64, 7)])
def test_cifar_stem_auto(size, stem_kernel):
    enc = build_encoder("resnet_small", input_shape=(size, size, 3))
    assert enc.get_layer("stem_conv").kernel_size == (stem_kernel, stem_kernel)


def test_explicit_stem_and_bn_defaults():
    enc = build_encoder("resnet_small", input_shape=(64, 64, 3), cifar_stem=True, sync_bn=True)
    assert enc.get_layer("stem_conv").kernel_size == (3, 3)
    assert enc.output_shape == (None, 64)
    bn = enc.get_layer("stem_bn")
    assert (bn.momentum, bn.epsilon, bn.synchronized) == (0.9, 1e-5, True)
    conv = build_encoder("convn", input_shape=(28, 28, 4), width_multiplier=0.5, bn_momentum=0.9)
    assert conv.output_shape == (None, 64)
    assert (conv.get_layer("dense_bn").momentum, conv.get_layer("dense_bn").epsilon) == (0.9, 1e-3)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("vit", dict(input_shape=(32, 32, 3)), "unknown encoder"),
        ("convn", dict(input_shape=(28, 28, 1), cifar_stem=True), "cifar_stem"),
        ("resnet18", dict(input_shape=(32, 32, 3), width_multiplier=0), "width_multiplier"),
        ("resnet18", dict(input_shape=(32, 32)), "input_shape"),
        ("resnet18", dict(input_shape=(7, 7, 3)), "too small.*>= 8"),  # auto CIFAR stem
        ("resnet18", dict(input_shape=(24, 24, 3), cifar_stem=False), "too small.*>= 32"),
    ],
)
def test_bad_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder(name, **kwargs)


def test_returns_functional_model():
    enc = build_encoder("convn", input_shape=(28, 28, 1))
    assert isinstance(enc, keras.Model) and enc.name == "convn"
