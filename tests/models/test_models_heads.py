"""ProjectionHead: depths, per-layer outputs, serialization."""

import keras
import numpy as np
import pytest

from cl_properties.models import ProjectionHead


def _h(n=6, d=16, seed=0):
    return np.random.RandomState(seed).randn(n, d).astype("float32")


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_depths_dims_and_return_all(depth):
    head = ProjectionHead(depth, hidden_dim=24, output_dim=8)
    h = _h()
    outs = head(h, training=True, return_all=True)
    assert len(outs) == depth + 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outs[0]), h)
    expected = [16] + [24] * max(depth - 1, 0) + ([8] if depth else [])
    assert [int(o.shape[-1]) for o in outs] == expected
    final = head(h, training=True)
    np.testing.assert_allclose(final, outs[-1], rtol=1e-6, atol=1e-6)
    dense = head.dense_layers
    bns = head.bn_layers
    assert len(dense) == len(bns) == depth
    assert all(not d.use_bias for d in dense)
    if depth:
        assert not bns[-1].center and all(b.center for b in bns[:-1])


def test_depth0_is_identity():
    head = ProjectionHead(0, output_dim=3)
    h = _h()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(head(h, training=True)), h)
    assert head.weights == []


def test_hidden_layers_relu_and_final_bn_statistics():
    head = ProjectionHead(3, hidden_dim=32, output_dim=8)
    outs = [keras.ops.convert_to_numpy(o) for o in head(_h(64), training=True, return_all=True)]
    assert outs[1].min() >= 0 and outs[2].min() >= 0
    # Last layer: BN without center, gamma = 1: (d - mean) / sqrt(var + eps) over the batch.
    d = keras.ops.convert_to_numpy(head.dense_layers[-1](outs[2])).astype("float64")
    expected = (d - d.mean(0)) / np.sqrt(d.var(0) + 1e-5)
    np.testing.assert_allclose(outs[3], expected, rtol=1e-4, atol=1e-4)


def test_hidden_dim_none_uses_input_dim_and_final_bn_false():
    head = ProjectionHead(2, hidden_dim=None, output_dim=4, final_bn=False)
    outs = head(_h(d=10), return_all=True)
    assert [int(o.shape[-1]) for o in outs] == [10, 10, 4]
    assert len(head.bn_layers) == 1 and len(head.dense_layers) == 2


def test_building_again_keeps_the_layers():
    head = ProjectionHead(2, 8, 4)
    head(_h(d=6))
    weights = [id(w) for w in head.weights]
    head.build((None, 6))
    assert [id(w) for w in head.weights] == weights


def test_sync_bn_flag():
    head = ProjectionHead(2, 8, 4, sync_bn=True)
    head.build((None, 6))
    bns = head.bn_layers
    assert len(bns) == 2 and all(b.synchronized for b in bns)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_config_round_trip(depth, tmp_path):
    head = ProjectionHead(depth, hidden_dim=12, output_dim=5, bn_momentum=0.8, name="proj")
    h = _h()
    head(h, training=True)  # build and move the BN statistics
    clone = ProjectionHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    clone.build((None, 16))
    clone.set_weights(head.get_weights())
    for training in (False, True):
        np.testing.assert_allclose(
            clone(h, training=training), head(h, training=training), rtol=1e-6, atol=1e-6
        )
    # Through Keras serialization of a model holding the head.
    inp = keras.Input((16,))
    model = keras.Model(inp, head(inp))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded(h, training=False), model(h, training=False), rtol=1e-6, atol=1e-6
    )


def test_functional_return_all():
    head = ProjectionHead(2, 8, 4)
    inp = keras.Input((6,))
    outs = head(inp, return_all=True)
    assert [tuple(o.shape) for o in outs] == [(None, 6), (None, 8), (None, 4)]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=-1), "depth"),
        (dict(depth=1.5), "depth"),
        (dict(depth=2, output_dim=0), "output_dim"),
        (dict(depth=2, hidden_dim=0), "hidden_dim"),
        (dict(depth=2, bn_momentum=-0.1), "bn_momentum"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectionHead(**kwargs)
