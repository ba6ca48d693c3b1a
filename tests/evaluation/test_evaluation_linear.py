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
    # A class seen only in testing, or a NaN (which would predict class 0 for every image).
    with pytest.raises(ValueError, match="num_classes=2 but a test label equals 2"):
        linear_eval(x, y, x, np.where(y == 1, 2, y))
    broken = x.copy()
    broken[0, 0] = np.inf
    with pytest.raises(ValueError, match="train features hold 1 NaN or Inf"):
        linear_eval(broken, y, x, y)


def _noisy_batches(x: np.ndarray, labels: dict) -> tf.data.Dataset:
    """An "augmentation": every batch of 100 adds fresh noise (seeded by the batch number)."""
    batches = tf.data.Dataset.from_tensor_slices((x, labels)).repeat().batch(100).enumerate()
    return batches.map(
        lambda i, batch: (
            batch[0]
            + tf.random.stateless_normal(
                tf.shape(batch[0]), seed=tf.stack([tf.constant(0, tf.int64), i]), stddev=0.1
            ),
            batch[1],
        )
    )


def _double(images):  # the frozen "encoder"
    return images * 2.0


def _augmented_eval(represent, steps, num_classes):
    x, y = _separable(1200, 16, 4, seed=2)
    labels = {"class": y, "parity": y % 2}
    train = {key: value[:1000] for key, value in labels.items()}
    test = {key: value[1000:] for key, value in labels.items()}
    return linear_eval_augmented(
        represent,
        _noisy_batches(x[:1000], train),
        steps,
        _double(x[:1000]),
        train,
        _double(x[1000:]),
        test,
        num_classes=num_classes,
        batch_size=100,
    )


def test_augmented_protocol_trains_zero_initialized_classifiers_on_fresh_batches():
    results = _augmented_eval(_double, 50, {"class": 4, "parity": 2})
    assert set(results) == {"class", "parity"}
    for result in results.values():
        assert isinstance(result, LinearEvalResult)
        assert result.train_accuracy >= 0.99 and result.test_accuracy >= 0.98


def test_augmented_protocol_runs_the_encoder_once_per_batch_for_every_key():
    passes = tf.Variable(0)

    def counted(images):
        passes.assign_add(1)
        return _double(images)

    num_classes = {"class": 4, "parity": 2}
    together = _augmented_eval(counted, 20, num_classes)
    assert int(passes.numpy()) == 20
    for key, classes in num_classes.items():  # each key's classifier is the one it gets alone
        assert _augmented_eval(_double, 20, {key: classes}) == {key: together[key]}


def test_augmented_protocol_bad_inputs():
    x, y = _separable(20, 4, 2, seed=0)
    batches = _noisy_batches(x, {"label": y})
    labels = {"label": y}
    with pytest.raises(ValueError, match="need steps"):
        linear_eval_augmented(
            _double, batches, 0, x, labels, x, labels, num_classes={"label": 2}, batch_size=10
        )
    with pytest.raises(ValueError, match="lack the keys"):
        linear_eval_augmented(
            _double, batches, 1, x, labels, x, labels, num_classes={"other": 2}, batch_size=10
        )
    with pytest.raises(ValueError, match="at least one"):
        linear_eval_augmented(
            _double, batches, 1, x, labels, x, labels, num_classes={}, batch_size=10
        )
    with pytest.raises(ValueError, match="num_classes=2 but a test 'label' label equals 8"):
        linear_eval_augmented(
            _double,
            batches,
            1,
            x,
            labels,
            x,
            {"label": y + 7 * (y == 1)},
            num_classes={"label": 2},
            batch_size=10,
        )
    with pytest.raises(ValueError, match="'label' labels"):
        linear_eval_augmented(
            _double,
            batches,
            1,
            x,
            {"label": y[:-1]},
            x,
            labels,
            num_classes={"label": 2},
            batch_size=10,
        )
