import time

import numpy as np
import pytest
import tensorflow as tf

from cl_properties.evaluation import LinearEvalResult, linear_eval, linear_eval_augmented


def _separable(n: int, d: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    means = rng.normal(size=(classes, d)) * 3.0
    return (means[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def test_separable_features_reach_full_accuracy_fast():
    x, y = _separable(3000, 128, 10, seed=0)
    start = time.perf_counter()
    result = linear_eval(x[:2000], y[:2000], x[2000:], y[2000:], epochs=20, seed=0)
    elapsed = time.perf_counter() - start
    assert isinstance(result, LinearEvalResult)
    assert result.train_accuracy == 1.0 and result.test_accuracy >= 0.99
    assert elapsed < 20.0  # a few seconds on a shared CPU


def test_random_labels_give_chance_test_accuracy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 32)).astype(np.float32)
    y = rng.integers(0, 4, 2000)
    result = linear_eval(x[:1000], y[:1000], x[1000:], y[1000:], epochs=10, seed=0)
    assert abs(result.test_accuracy - 0.25) < 0.06


def test_deterministic_given_seed_and_feature_scale_invariant_with_standardization():
    x, y = _separable(600, 16, 5, seed=2)
    x += np.random.default_rng(3).normal(size=x.shape).astype(np.float32) * 4.0  # not separable now

    def run(features, seed):
        return linear_eval(features[:400], y[:400], features[400:], y[400:], epochs=5, seed=seed)

    first = run(x, 7)
    assert first == run(x, 7)
    assert run(x * 1000.0, 7).test_accuracy == pytest.approx(first.test_accuracy, abs=0.02)


def test_strong_weight_decay_leaves_only_the_unregularized_bias():
    # A weak feature on imbalanced classes: with the kernel decayed to ~0 the bias predicts
    # the majority class everywhere.
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.3).astype(np.int64)
    x = (rng.normal(size=(2000, 1)) + 1.5 * y[:, None]).astype(np.float32)
    free = linear_eval(x[:1000], y[:1000], x[1000:], y[1000:], epochs=5)
    decayed = linear_eval(x[:1000], y[:1000], x[1000:], y[1000:], epochs=5, weight_decay=2.0)
    assert decayed.test_accuracy == np.mean(y[1000:] == 0)
    assert free.test_accuracy > decayed.test_accuracy + 0.05


def test_bad_inputs():
    x, y = _separable(20, 4, 2, seed=0)
    with pytest.raises(ValueError, match="labels"):
        linear_eval(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="dims"):
        linear_eval(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="rank"):
        linear_eval(x[:, :, None], y, x, y)
    with pytest.raises(ValueError, match="num_classes"):
        linear_eval(x, y, x, y, num_classes=1)
    with pytest.raises(ValueError, match="epochs"):
        linear_eval(x, y, x, y, epochs=0)
    with pytest.raises(ValueError, match="integers"):
        linear_eval(x, y.astype(np.float32), x, y)


def test_augmented_protocol_trains_a_zero_initialized_classifier_on_fresh_batches():
    x, y = _separable(1200, 16, 4, seed=2)

    def represent(images):  # the frozen "encoder"
        return images * 2.0

    # "Augmentation": every batch adds fresh noise to the training images.
    batches = tf.data.Dataset.from_tensor_slices((x[:1000], y[:1000])).repeat().batch(100)
    batches = batches.map(lambda a, b: (a + tf.random.normal(tf.shape(a), stddev=0.1), b))
    result = linear_eval_augmented(
        represent,
        batches,
        50,
        represent(x[:1000]),
        y[:1000],
        represent(x[1000:]),
        y[1000:],
        num_classes=4,
        batch_size=100,
    )
    assert result.train_accuracy >= 0.99 and result.test_accuracy >= 0.98
    with pytest.raises(ValueError, match="need steps"):
        linear_eval_augmented(represent, batches, 0, x, y, x, y, num_classes=4, batch_size=100)
