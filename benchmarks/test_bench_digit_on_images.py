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
seed 0: 0.494 / 0.451 / 0.430, digit 0.781 / 0.475; seed 1: 0.439 / 0.393 / 0.373; seed 2:
0.432 / 0.438 / 0.420, i.e. drops 0.064 / 0.066 / 0.012 (mean 0.048; 0.047-0.055 under the
other kernel sets): seed 2 alone shows no suppression. What else was tried (seed 0,
K = 1 / 10 / 1000 unless said; measured before NT-Xent's per-anchor computation, which
moved seed 0's points by up to 0.035):
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
bands sized by the spread over seeds and machines (`bands`); re-recording runs every seed
with each kernel set and asserts the claim (the mean drop) for each kernel set.
"""

from __future__ import annotations

import pytest

from bands import NUMERICS, runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)  # also the seeds the claim averages over
MIN_BAND = 0.03  # 15 of the 512 test images
MIN_DROP = 0.03
POOL_SIZES = (1, 10, 1000)
SWEEPS = {
    "digit_on_images": ["--pool_sizes=1,10,1000", "--temperatures=0.1", "--models=contrastive"]
}


def _points(rows: list[dict]) -> dict[str, float]:
    return {
        f"K{k}/{probe}": point(rows, f"linear_{probe}", pool_size=k)
        for k in POOL_SIZES
        for probe in ("object", "digit")
    }


@pytest.mark.benchmark
def test_unique_digits_suppress_the_object_feature(baseline, results_dir, tmp_path):
    runs = runs_to_measure(
        baseline.update, SPREAD_SEEDS, every_seed=True
    )  # the claim is on the seeds' mean
    per_run = measure_against_baseline(
        baseline,
        "digit_on_images",
        "digit_on_images",
        SWEEPS,
        runs,
        _points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the object (shape, 4 classes) and the digit "
            "(10 classes) vs K, tau 0.1"
        ),
        output_dir=str(tmp_path),
        results_dir=results_dir,
    )
    drops = {
        run: k1 - kmax
        for run, k1, kmax in zip(runs, per_run["K1/object"], per_run[f"K{POOL_SIZES[-1]}/object"])
    }
    failed = {}
    for numerics in NUMERICS:
        seed_drops = [drop for run, drop in drops.items() if run.numerics == numerics]
        if not seed_drops:
            continue
        mean_drop = sum(seed_drops) / len(seed_drops)
        print(
            f"object probe drop K=1 -> K={POOL_SIZES[-1]}, {numerics} kernels, seeds "
            f"{SPREAD_SEEDS}: "
            f"{[round(d, 3) for d in seed_drops]}, mean {mean_drop:.3f}"
        )
        if mean_drop < MIN_DROP:
            failed[numerics] = round(mean_drop, 3)
    assert not failed, (
        f"mean object-probe drop from K=1 to K={POOL_SIZES[-1]} below {MIN_DROP} with these "
        f"kernels: {failed}"
    )
