"""Colour shapes: colour suppresses shape; colour jitter should remove the shortcut.

Runs `python -m cl_properties.experiments.color_shapes` as shipped (32 px shapes with random
foreground and background colours, ConvN, batch 256, 300 steps, tau 0.1) at colour-jitter
strengths 0 / 0.5 / 1.0.

Claims: (1) without jitter the contrastive task is solved by colour and the shape probe is
near chance (<= chance + NEAR_CHANCE): holds. (2) With jitter the shape is learned (strength
1.0 at least MIN_RISE above strength 0): does NOT hold at this scale, so it is a strict
xfail (it fails CI the day it starts to hold, so that this file is updated). Measured, seed 0:
shape probe 0.293 / 0.297 / 0.334 at s = 0 / 0.5 / 1.0; with SimCLR's grayscale (p 0.2) and
crops of 50-100% instead of 30-100%: 0.340 (s 0) / 0.338 (s 1.0). The issue's own
calibration saw the same (0.31 with coloured shapes and SimCLR jitter on 64 px canvases).
Jitter does not yet make colour useless for telling images apart in 300 steps; longer
training or stronger hue/saturation ranges are the next things to try.

Points are compared with benchmarks/baselines/color_shapes.json within TOLERANCE (seed 0
only; seed-to-seed spread not yet calibrated).
"""
from __future__ import annotations

import pytest

from suppression_runs import point, run_experiment

TOLERANCE = 0.10
CHANCE = 0.25
NEAR_CHANCE = 0.15
MIN_RISE = 0.15
STRENGTHS = (0.0, 0.5, 1.0)
ARGS = ["--jitter_strengths=0,0.5,1.0", "--temperatures=0.1", "--models=contrastive"]


@pytest.fixture(scope="module")
def measured(results_dir, tmp_path_factory) -> tuple[dict[str, float], str]:
    output_dir = str(tmp_path_factory.mktemp("color_shapes"))
    rows, command = run_experiment("color_shapes", ARGS, output_dir, results_dir, "color_shapes")
    return {f"s{s:g}/shape": point(rows, "linear_shape", jitter_strength=s) for s in STRENGTHS}, command


@pytest.mark.benchmark
def test_colour_suppresses_shape_without_jitter(baseline, measured):
    points, command = measured
    baseline.check(
        "color_shapes",
        points,
        tolerance=TOLERANCE,
        description="linear probe test accuracy of the shape (4 classes) vs colour-jitter strength, tau 0.1",
        command=command,
    )
    assert points["s0/shape"] <= CHANCE + NEAR_CHANCE, f"shape probe without jitter is not near chance: {points}"


@pytest.mark.benchmark
@pytest.mark.xfail(strict=True, reason="jitter does not free the shape feature at CI scale (see module docstring)")
def test_colour_jitter_lets_shape_be_learned(measured):
    points, _ = measured
    assert points["s1/shape"] - points["s0/shape"] >= MIN_RISE, f"shape probe did not rise with jitter: {points}"
