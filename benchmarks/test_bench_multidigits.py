"""Modified MultiDigits (paper section 4): a growing digit suppresses the other one.

Runs `python -m cl_properties.experiments.multidigits` as shipped (32 px canvas, a 16 px
digit and a second digit of 8 / 16 px at random disjoint positions, crops of 80-100% of the
canvas, ConvN, batch 256, 300 steps, tau 0.1).

Claim (paper): the fixed-size digit's probe accuracy falls as the other digit grows: at the
largest size it is below the smallest size's by at least MIN_DROP.

Points are compared with benchmarks/baselines/multidigits.json within TOLERANCE. Only seed 0
was measured (seed-to-seed spread not yet calibrated); the band matches the other
suppression benchmarks. The smaller-digit probe (`size8/variable`) sits near chance: an
8 px digit is not learned at this scale even when the other digit is 16 px.
"""
from __future__ import annotations

import pytest

from suppression_runs import point, run_experiment

TOLERANCE = 0.10
MIN_DROP = 0.05
SIZES = (8, 16)
ARGS = ["--variable_sizes=8,16", "--temperatures=0.1", "--models=contrastive"]


@pytest.mark.benchmark
def test_growing_digit_suppresses_the_fixed_size_one(baseline, results_dir, tmp_path):
    rows, command = run_experiment("multidigits", ARGS, str(tmp_path), results_dir, "multidigits")
    points = {
        f"size{s}/{probe}": point(rows, f"linear_{probe}", variable_size=s) for s in SIZES for probe in ("fixed", "variable")
    }
    baseline.check(
        "multidigits",
        points,
        tolerance=TOLERANCE,
        description="linear probe test accuracy of the 16 px fixed-size digit and of the other digit vs the other's size, tau 0.1",
        command=command,
    )
    drop = points[f"size{SIZES[0]}/fixed"] - points[f"size{SIZES[-1]}/fixed"]
    assert drop >= MIN_DROP, f"fixed-size digit's probe fell by {drop:.3f} (< {MIN_DROP}): {points}"
