"""DigitOnImages (paper section 4) on offline grey shapes, with the embedded defaults.

Runs `python -m cl_properties.experiments.digit_on_images` as shipped (32 px grey shapes,
one of K unique 8 px digits on a 3x3 grid, ConvN, batch 256, 300 steps), tau 0.1, at
K = 1 / 10 / 1000.

Claim (paper): as the number of unique digits K grows, the digit becomes a feature that
tells images apart and suppresses the object feature: the object (shape) probe falls from
K = 1 to the largest K. At this scale the drop is small next to the seed-to-seed spread, so
every run (comparing too) trains SPREAD_SEEDS and the claim is asserted on the mean drop
over them (>= MIN_DROP); seed 0's points are compared with the baseline. The digit probe is
recorded (trivially 1.0 at K = 1, where every image carries the same digit image).

Measured (object probe at K = 1 / 10 / 1000, chance 0.25; digit probe at K = 10 / 1000):
seed 0: 0.514 / 0.416 / 0.418, digit 0.785 / 0.471; seed 1: 0.475 / 0.426 / 0.395; seed 2:
0.426 / 0.451 / 0.420, i.e. drops 0.096 / 0.080 / 0.006 (mean 0.061): seed 2 alone shows no
suppression. What else was tried (seed 0, K = 1 / 10 / 1000 unless said):
- tau 0.05: 0.439 / 0.398 / 0.361 (drop 0.078); tau 0.2: 0.496 / 0.436 / 0.438 (0.058);
- 600 steps: 0.521 / 0.533 / 0.518: no drop; longer training catches the object up;
- 64 px canvas (4x compute): 0.498 / 0.479 / 0.436 (0.062), digit 0.719 / 0.396;
- colour jitter 1.0 instead of 0.5: 0.457 (K 1) / 0.385 (K 1000); 8192 training images:
  0.531 / 0.428; resnet_small: 0.375 at K = 1;
- reference, supervised on the object label: 0.744 (K 1) / 0.607 (K 1000).
The object is poorly learned even at K = 1 (the issue's calibration reached 0.985 on 64 px
images): the random grey levels of shape and background are an easy instance feature of
their own (the grey version of colour suppressing shape), and even supervised training
reaches only 0.74. So the digit has little object feature left to suppress.

Points are compared with benchmarks/baselines/digit_on_images.json (seed 0) with per-point
bands sized by the spread over SPREAD_SEEDS (`seed_bands`).
"""
from __future__ import annotations

import pytest

from seed_bands import band_rule, spread_bands
from suppression_runs import measure, point

SPREAD_SEEDS = (0, 1, 2)  # also the seeds the claim averages over
MIN_BAND = 0.03  # 15 of the 512 test images
MIN_DROP = 0.03
POOL_SIZES = (1, 10, 1000)
RUNS = {"digit_on_images": ["--pool_sizes=1,10,1000", "--temperatures=0.1", "--models=contrastive"]}


def _points(rows: list[dict]) -> dict[str, float]:
    return {f"K{k}/{probe}": point(rows, f"linear_{probe}", pool_size=k) for k in POOL_SIZES for probe in ("object", "digit")}


@pytest.mark.benchmark
def test_unique_digits_suppress_the_object_feature(baseline, results_dir, tmp_path):
    seeds = SPREAD_SEEDS  # comparing too: the claim is on their mean
    per_seed, command = measure("digit_on_images", RUNS, seeds, _points, str(tmp_path), results_dir)
    baseline.check(
        "digit_on_images",
        {key: values[0] for key, values in per_seed.items()},
        tolerance=spread_bands(per_seed, MIN_BAND),
        description="linear probe test accuracy of the object (shape, 4 classes) and the digit (10 classes) vs K, tau 0.1",
        command=command,
        extra={"seeds": list(seeds), "band_rule": band_rule(MIN_BAND, SPREAD_SEEDS), "per_seed": per_seed},
    )
    drops = [k1 - kmax for k1, kmax in zip(per_seed["K1/object"], per_seed[f"K{POOL_SIZES[-1]}/object"])]
    mean_drop = sum(drops) / len(drops)
    print(f"object probe drop K=1 -> K={POOL_SIZES[-1]} per seed {seeds}: {[round(d, 3) for d in drops]}, mean {mean_drop:.3f}")
    assert mean_drop >= MIN_DROP, f"object probe fell by {mean_drop:.3f} on average from K=1 to K={POOL_SIZES[-1]} (< {MIN_DROP}): {drops}"
