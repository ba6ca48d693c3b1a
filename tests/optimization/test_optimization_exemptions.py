"""decay_exempt_variables: normalization gamma/beta and biases, found by layer type;
adaptation_exempt_variables: those plus what layers declare (the online probes)."""

import keras
import pytest

from cl_properties.losses import ContrastiveLoss
from cl_properties.models import ProjectionHead
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.optimization import adaptation_exempt_variables, decay_exempt_variables


class DenseBN(keras.layers.Layer):
    """A custom layer holding Dense (with bias) + BN as attributes."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(units)
        self.bn = keras.layers.BatchNormalization()

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.bn.build(self.dense.compute_output_shape(input_shape))

    def call(self, x, training=False):
        return self.bn(self.dense(x), training=training)


def ids(variables):
    return sorted(id(v) for v in variables)


def test_flat_model_returns_exactly_bn_and_biases():
    conv = keras.layers.Conv2D(4, 3, name="weights_not_named_bias")
    bn = keras.layers.BatchNormalization(name="kernel_like_name")
    dense = keras.layers.Dense(3, name="bias_free_looking_name")
    no_bias = keras.layers.Dense(2, use_bias=False)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), conv, bn, keras.layers.Flatten(), dense, no_bias]
    )
    expected = [conv.bias, bn.gamma, bn.beta, dense.bias]
    assert ids(decay_exempt_variables(model)) == ids(expected)
    kernels = {id(conv.kernel), id(dense.kernel), id(no_bias.kernel)}
    assert not kernels & set(ids(decay_exempt_variables(model)))


def test_nested_layers_and_models_are_walked():
    inner_in = keras.Input((5,))
    inner_dense = keras.layers.Dense(4)
    inner_bn = keras.layers.BatchNormalization(center=False)  # gamma only
    inner = keras.Model(inner_in, inner_bn(inner_dense(inner_in)), name="inner")
    custom = DenseBN(3)
    inputs = keras.Input((5,))
    outputs = custom(inner(inputs))
    model = keras.Model(inputs, outputs)
    expected = [
        inner_dense.bias,
        inner_bn.gamma,
        custom.dense.bias,
        custom.bn.gamma,
        custom.bn.beta,
    ]
    got = decay_exempt_variables(model)
    assert ids(got) == ids(expected)
    trainable = {id(v) for v in model.trainable_variables}
    assert set(ids(got)) <= trainable


def test_layer_norm_and_einsum_dense_are_included():
    layer_norm = keras.layers.LayerNormalization()
    einsum = keras.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c")
    model = keras.Sequential([keras.Input((4,)), einsum, layer_norm])
    assert ids(decay_exempt_variables(model)) == ids(
        [einsum.bias, layer_norm.gamma, layer_norm.beta]
    )


def test_unbuilt_model_raises():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        decay_exempt_variables(model)


class DeclaringDense(keras.layers.Layer):
    """A custom layer that declares its Dense's kernel (not its bias) exempt from adaptation."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x)

    def layer_adaptation_exempt_variables(self):
        return [self.dense.kernel]


def test_declared_variables_are_exempt_from_adaptation_only():
    declaring = DeclaringDense(3)
    plain = keras.layers.Dense(2)
    inputs = keras.Input((5,))
    inner = keras.Model(inputs, declaring(inputs))  # nested: the walk must find it
    model = keras.Sequential([keras.Input((5,)), inner, plain])
    decay = [declaring.dense.bias, plain.bias]
    assert ids(decay_exempt_variables(model)) == ids(decay)
    # De-duplicated: a declared variable that is also decay-exempt is listed once.
    assert ids(adaptation_exempt_variables(model)) == ids([*decay, declaring.dense.kernel])


def test_contrastive_model_declares_its_probes():
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
    model = ContrastiveModel(
        encoder, ProjectionHead(1, None, 4), ContrastiveLoss(), probes={"a": 3, "b": 2}
    )
    probes = [v for probe in model.probes.values() for v in (probe.kernel, probe.bias)]
    assert ids(model.layer_adaptation_exempt_variables()) == ids(probes)
    head_gamma = model.head.bn_layers[0].gamma
    encoder_dense = encoder.layers[-1]
    assert ids(decay_exempt_variables(model)) == ids(
        [encoder_dense.bias, head_gamma, model.probes["a"].bias, model.probes["b"].bias]
    )
    assert ids(adaptation_exempt_variables(model)) == ids([encoder_dense.bias, head_gamma, *probes])
