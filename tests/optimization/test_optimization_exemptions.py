"""decay_exempt_variables: normalization gamma/beta and biases, found by layer type."""
import keras
import pytest

from cl_properties.optimization import decay_exempt_variables


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
    model = keras.Sequential([keras.Input((8, 8, 1)), conv, bn, keras.layers.Flatten(), dense,
                              no_bias])
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
    expected = [inner_dense.bias, inner_bn.gamma, custom.dense.bias, custom.bn.gamma,
                custom.bn.beta]
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
