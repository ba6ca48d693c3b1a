"""DigitOnImages (paper section 4) on offline grey shapes, with the embedded defaults.

Runs `python -m cl_properties.experiments.digit_on_images` as shipped (32 px grey shapes,
one of K unique 8 px digits on a 3x3 grid, ConvN, batch 256, 300 steps), tau 0.1, at
K = 1 / 10 / 1000.

Claim (paper): as the number of unique digits K grows, the digit becomes a feature that
tells images apart and suppresses the object feature: the object (shape) probe at K = 1 is
above the one at the largest K by more than the seed-to-seed spread (MIN_DROP). The digit
probe is recorded (it rises with K where the digit is learned).

Measured, seed 0: object probe 0.514 / 0.416 / 0.418 at K = 1 / 10 / 1000 (chance 0.25),
digit probe 1.0 (one digit class) / 0.785 / 0.471. The effect holds but the object probe is
low even at K = 1: on 32 px images the 8 px digits cover much of the shape, and the random
grey levels of shape and background are themselves an easy instance feature. The issue's
calibration on 64 px images reached 0.985 at K = 1 (4x the compute per run).

Points are compared with benchmarks/baselines/digit_on_images.json within TOLERANCE (seed 0
only; the seed-to-seed spread is not yet calibrated).
"""
from __future__ import annotations

import pytest

from suppression_runs import point, run_experiment

TOLERANCE = 0.10
MIN_DROP = 0.03
POOL_SIZES = (1, 10, 1000)
ARGS = ["--pool_sizes=1,10,1000", "--temperatures=0.1", "--models=contrastive"]


@pytest.mark.benchmark
def test_unique_digits_suppress_the_object_feature(baseline, results_dir, tmp_path):
    rows, command = run_experiment("digit_on_images", ARGS, str(tmp_path), results_dir, "digit_on_images")
    points = {
        f"K{k}/{probe}": point(rows, f"linear_{probe}", pool_size=k) for k in POOL_SIZES for probe in ("object", "digit")
    }
    baseline.check(
        "digit_on_images",
        points,
        tolerance=TOLERANCE,
        description="linear probe test accuracy of the object (shape, 4 classes) and the digit (10 classes) vs K, tau 0.1",
        command=command,
    )
    drop = points["K1/object"] - points[f"K{POOL_SIZES[-1]}/object"]
    assert drop >= MIN_DROP, f"object probe fell by {drop:.3f} from K=1 to K={POOL_SIZES[-1]} (< {MIN_DROP}): {points}"
