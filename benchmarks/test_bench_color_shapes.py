"""Colour shapes: colour suppresses shape; colour jitter should remove the shortcut.

Runs `python -m cl_properties.experiments.color_shapes` as shipped (32 px shapes with random
foreground and background colours, ConvN, batch 256, 300 steps, tau 0.1) at colour-jitter
strengths 0 and 1.0 (what the claims compare; the experiment's default sweep adds 0.5).

Claims: (1) without jitter the contrastive task is solved by colour and the shape probe is
near chance (<= chance + NEAR_CHANCE): holds. (2) With jitter the shape is learned (strength
1.0 at least MIN_RISE above strength 0): does NOT hold at this scale, so it is a strict
xfail (it fails CI the day it starts to hold, so that this file is updated).

Measured, shape probe at s = 0 / 0.5 / 1.0 (chance 0.25): seed 0 0.316 / 0.314 / 0.320,
seed 1 0.328 / 0.330 / 0.324, seed 2 0.293 / 0.334 / 0.328 (rise 0.00 / -0.00 / 0.04).
Also tried (seed 0, before NT-Xent's per-anchor computation): stronger jitter s = 2 / 3:
0.299 / 0.326; SimCLR's grayscale (p 0.2) with crops of 50-100%: 0.340 (s 0) / 0.338 (s 1);
8192 training images: 0.330 / 0.365 (s 0 / 1). Reference, the same encoder trained
supervised on the shape: 0.604 (s 0) / 0.521 (s 1). So the ceiling at this scale is low:
ConvN on 2,048 coloured 32 px shapes does not learn shape well even with labels, and jitter
cannot free a feature the encoder barely extracts. The issue's own calibration saw the same
(0.31 with coloured shapes and SimCLR jitter on 64 px canvases).

Toward a fit testbed (seed 0, 300 steps, shape probe at s = 0 / 1): the shape centred within
+-0.2 of the image (`--shape_offset=0.2`): supervised 0.787 / 0.627, contrastive 0.303 /
0.359, floor 0.291; centred light shapes on dark backgrounds, colours still random per
channel (`--light_on_dark`): supervised 1.000 (s 0), floor 0.588, contrastive 0.355 / 0.561.
So shape becomes learnable and colour suppresses it below the floor, but jitter s = 1 does
not yet bring the contrastive probe 0.25 above the floor; the colour-destroying
`--channel_permutation_prob` is not yet measured. The defaults stay until a setting passes.

Points are compared with benchmarks/baselines/color_shapes.json, seed 0, with per-point
bands sized by the spread over seeds and machines (`bands`); re-recording runs every spread
seed and seed 0 with other kernels, and asserts the claims for each run.
"""

from __future__ import annotations

import pytest

from bands import Run, runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test images
CHANCE = 0.25
NEAR_CHANCE = 0.15
MIN_RISE = 0.15
STRENGTHS = (0.0, 1.0)
SWEEPS = {
    "color_shapes": ["--jitter_strengths=0,1.0", "--temperatures=0.1", "--models=contrastive"]
}


def _points(rows: list[dict]) -> dict[str, float]:
    return {f"s{s:g}/shape": point(rows, "linear_shape", jitter_strength=s) for s in STRENGTHS}


@pytest.fixture(scope="module")
def measured(
    baseline, results_dir, tmp_path_factory
) -> tuple[tuple[Run, ...], dict[str, list[float]]]:
    """(runs, {point: [value per run]}), checked against the baseline."""
    runs = runs_to_measure(baseline.update, SPREAD_SEEDS)
    output_dir = str(tmp_path_factory.mktemp("color_shapes"))
    per_run = measure_against_baseline(
        baseline,
        "color_shapes",
        "color_shapes",
        SWEEPS,
        runs,
        _points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the shape (4 classes) vs colour-jitter strength, tau 0.1"
        ),
        output_dir=output_dir,
        results_dir=results_dir,
    )
    return runs, per_run


@pytest.mark.benchmark
def test_colour_suppresses_shape_without_jitter(measured):
    runs, per_run = measured
    for run, value in zip(runs, per_run["s0/shape"]):
        assert value <= CHANCE + NEAR_CHANCE, (
            f"{run.label}: shape probe without jitter is not near chance: {value:.3f}"
        )


@pytest.mark.benchmark
@pytest.mark.xfail(
    strict=True, reason="jitter does not free the shape feature at CI scale (see module docstring)"
)
def test_colour_jitter_lets_shape_be_learned(measured):
    runs, per_run = measured
    for run, low, high in zip(runs, per_run["s0/shape"], per_run["s1/shape"]):
        assert high - low >= MIN_RISE, (
            f"{run.label}: shape probe did not rise with jitter: {low:.3f} -> {high:.3f}"
        )
