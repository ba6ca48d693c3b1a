import numpy as np
import pytest

from cl_properties.evaluation import knn_accuracy, knn_predict


def _reference_knn(train_x, train_y, test_x, k, temperature, num_classes):
    """Brute-force float64 weighted kNN."""
    train_x = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    test_x = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    similarity = test_x @ train_x.T
    predictions = []
    for row in similarity:
        top = np.argsort(-row, kind="stable")[:k]
        scores = np.zeros(num_classes)
        np.add.at(scores, train_y[top], np.exp(row[top] / temperature))
        predictions.append(np.argmax(scores))
    return np.array(predictions)


def test_well_separated_clusters_are_classified_perfectly():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 10
    y = rng.integers(0, 5, 600)
    x = centres[y] + rng.normal(size=(600, 16))
    assert knn_accuracy(x[:400], y[:400], x[400:], y[400:], k=20, batch_size=64) == 1.0


@pytest.mark.parametrize("k, temperature", [(1, 0.1), (7, 0.05), (50, 0.5)])
def test_matches_brute_force_reference_in_float64(k, temperature):
    rng = np.random.default_rng(k)
    train_x, test_x = rng.normal(size=(300, 8)), rng.normal(size=(97, 8))
    train_y, test_y = rng.integers(0, 6, 300), rng.integers(0, 6, 97)
    expected = _reference_knn(train_x, train_y, test_x, k, temperature, 6)
    predicted = knn_predict(train_x, train_y, test_x, k=k, temperature=temperature, batch_size=32)
    np.testing.assert_array_equal(predicted, expected)
    accuracy = knn_accuracy(
        train_x, train_y, test_x, test_y, k=k, temperature=temperature, batch_size=32
    )
    assert accuracy == np.mean(expected == test_y)


def test_k_larger_than_bank_is_clipped():
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    train_y = rng.integers(0, 3, 30)
    np.testing.assert_array_equal(
        knn_predict(train_x, train_y, test_x, k=1000),
        _reference_knn(train_x, train_y, test_x, 30, 0.1, 3),
    )


def test_bad_inputs():
    x, y = np.ones((5, 3)), np.zeros(5, np.int64)
    with pytest.raises(ValueError, match="k >= 1"):
        knn_accuracy(x, y, x, y, k=0)
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(x, y, x, y, temperature=0.0)
    with pytest.raises(ValueError, match="test features"):
        knn_accuracy(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="labels"):
        knn_accuracy(x, y[:3], x, y)
    # One NaN would make every vote NaN and every prediction class 0: an error instead.
    broken = x.copy()
    broken[1, 2] = np.nan
    with pytest.raises(ValueError, match="train features hold 1 NaN or Inf"):
        knn_accuracy(broken, y, x, y)
    with pytest.raises(ValueError, match="test features hold 1 NaN or Inf"):
        knn_predict(x, y, broken)
