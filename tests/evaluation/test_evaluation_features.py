import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.evaluation import extract_features


def _eval_dataset(n: int = 10, batch: int = 4) -> tf.data.Dataset:
    images = np.arange(n * 2 * 2 * 1, dtype=np.float32).reshape(n, 2, 2, 1)
    labels = {"label": np.arange(n, dtype=np.int32), "digit": np.arange(n, dtype=np.int32) % 3}
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def test_all_rows_with_partial_last_batch_in_order():
    features, labels = extract_features(lambda x: tf.reshape(x, [-1, 4]), _eval_dataset(10, 4))
    assert features.shape == (10, 4)
    np.testing.assert_array_equal(features[:, 0], np.arange(10) * 4)
    np.testing.assert_array_equal(labels["label"], np.arange(10))
    np.testing.assert_array_equal(labels["digit"], np.arange(10) % 3)


def test_keras_model_called_with_training_false_and_label_keys():
    inputs = keras.Input((2, 2, 1))
    # Dropout(1.0 - eps) would zero (almost) everything if training were True.
    outputs = keras.layers.Dropout(0.999)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    features, labels = extract_features(model, _eval_dataset(10, 3), label_keys=["digit"])
    np.testing.assert_allclose(features, np.arange(40, dtype=np.float32).reshape(10, 4))
    assert list(labels) == ["digit"]


def test_callable_with_training_keyword_receives_false():
    seen = []

    def fn(x, training=True):
        seen.append(training)
        return tf.reduce_mean(x, axis=[1, 2])

    features, _ = extract_features(fn, _eval_dataset(5, 2))
    assert features.shape == (5, 1) and seen == [False, False, False]


def test_feature_maps_keep_their_shape():
    features, _ = extract_features(lambda x: x, _eval_dataset(7, 3))
    assert features.shape == (7, 2, 2, 1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="label_keys"):
        extract_features(lambda x: x, _eval_dataset(), label_keys=["missing"])
    with pytest.raises(ValueError, match="empty"):
        extract_features(lambda x: x, _eval_dataset().take(0))
    with pytest.raises(ValueError, match="callable"):
        extract_features(3, _eval_dataset())
    with pytest.raises(ValueError, match="eval batches"):
        extract_features(
            lambda x: x, tf.data.Dataset.from_tensor_slices(np.zeros((4, 2), np.float32)).batch(2)
        )
