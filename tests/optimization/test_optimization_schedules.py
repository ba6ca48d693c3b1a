"""WarmUpAndDecay against its closed form; batch-size learning-rate scaling."""

import math

import keras
import numpy as np
import pytest

from cl_properties.optimization import WarmUpAndDecay, scaled_learning_rate

PEAK, TOTAL, WARMUP = 1.6, 1000, 100


def closed_form(step, decay, power=1.0):
    if step < WARMUP:
        return PEAK * step / WARMUP
    p = min((step - WARMUP) / (TOTAL - WARMUP), 1.0)
    if decay == "cosine":
        return PEAK * 0.5 * (1 + math.cos(math.pi * p))
    if decay == "polynomial":
        return PEAK * (1 - p) ** power
    return PEAK


@pytest.mark.parametrize(
    "decay,power", [("cosine", 1.0), ("polynomial", 1.0), ("polynomial", 2.0), ("constant", 1.0)]
)
def test_values_match_closed_form(decay, power):
    schedule = WarmUpAndDecay(
        PEAK, total_steps=TOTAL, warmup_steps=WARMUP, decay=decay, power=power
    )
    midway = WARMUP + (TOTAL - WARMUP) // 2
    for step in [0, WARMUP // 2, WARMUP - 1, WARMUP, midway, TOTAL - 1, TOTAL, TOTAL + 50]:
        got = float(schedule(step))
        assert got == pytest.approx(closed_form(step, decay, power), rel=1e-6, abs=1e-6), step


def test_landmarks_of_warmup_cosine():
    schedule = WarmUpAndDecay(PEAK, total_steps=TOTAL, warmup_steps=WARMUP)
    assert float(schedule(0)) == 0.0
    assert float(schedule(WARMUP // 2)) == pytest.approx(PEAK / 2, rel=1e-6)
    assert float(schedule(WARMUP)) == pytest.approx(PEAK, rel=1e-6)
    assert float(schedule((WARMUP + TOTAL) // 2)) == pytest.approx(PEAK / 2, rel=1e-6)
    assert float(schedule(TOTAL)) == pytest.approx(0.0, abs=1e-7)


def test_no_warmup_polynomial_is_keras_polynomial_decay():
    ours = WarmUpAndDecay(1e-3, total_steps=600, decay="polynomial")
    keras_schedule = keras.optimizers.schedules.PolynomialDecay(1e-3, 600, end_learning_rate=0.0)
    steps = np.arange(0, 700, 37)
    np.testing.assert_allclose(
        [float(ours(s)) for s in steps],
        [float(keras_schedule(s)) for s in steps],
        rtol=1e-6,
        atol=1e-9,
    )


def test_get_config_round_trip():
    schedule = WarmUpAndDecay(0.3, total_steps=50, warmup_steps=5, decay="polynomial", power=2.0)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, WarmUpAndDecay)
    assert restored.get_config() == schedule.get_config()
    for step in [0, 3, 5, 20, 50]:
        assert float(restored(step)) == float(schedule(step))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_learning_rate": -0.1},
        {"total_steps": 0},
        {"warmup_steps": 11},
        {"warmup_steps": -1},
        {"decay": "step"},
        {"power": 0.0},
    ],
)
def test_bad_schedule_raises(kwargs):
    args = {"peak_learning_rate": 0.1, "total_steps": 10} | kwargs
    with pytest.raises(ValueError):
        WarmUpAndDecay(**args)


def test_scaled_learning_rate():
    assert scaled_learning_rate(0.3, 512, "linear") == pytest.approx(0.6)
    assert scaled_learning_rate(0.2, 128, "sqrt") == pytest.approx(0.2 * math.sqrt(128))
    assert scaled_learning_rate(1e-3, 1000, "none") == 1e-3
    with pytest.raises(ValueError, match="scaling"):
        scaled_learning_rate(0.1, 256, "quadratic")
    with pytest.raises(ValueError, match="batch_size"):
        scaled_learning_rate(0.1, 0, "linear")
