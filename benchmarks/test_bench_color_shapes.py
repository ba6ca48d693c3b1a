"""Colour shapes: colour suppresses shape; colour jitter removes part of the shortcut.

Runs `python -m cl_properties.experiments.color_shapes` with the flags of a testbed where the
shape is learnable (`TESTBED`: 16 px light shapes on dark backgrounds, every channel's colours
random per image, the shape centred within +-0.2 of the image; ConvN, batch 256, 300 steps, tau
0.1) at colour-jitter strengths 0 and 1.0, with the shape's controls measured in the same run:
the encoder trained supervised on the shape (upper reference, at both strengths) and the
encoder at random initialization (floor); and the colour-free condition (grayscale views with
jitter 1.0: neither hue nor grey level tells the images apart), the unsuppressed reference of
the contrastive model.

Fitness, for every run: the supervised encoder >= MIN_SUPERVISED on the shape (0.97-0.98:
holds), the contrastive probe in the colour-free condition >= MIN_ABOVE_FLOOR above the floor:
does NOT hold on every recorded run (0.23-0.27 on seed 0's kernel sets, 0.18 / 0.19 on seeds 1
/ 2, whose floor is 0.60), so it is a strict xfail over the recorded runs and the testbed is
not yet fit. Claims, for every run (both hold on the six recorded): (1) colour suppresses
shape: without jitter the contrastive shape probe is at least MIN_SUPPRESSION below its
colour-free value (0.34-0.39 against 0.75-0.79); (2) jitter frees part of it: at strength 1.0 the
probe is at least MIN_RISE above strength 0 (0.53-0.63).

Calibration (seed 0, shape probe, chance 0.25; the experiment's defaults, 32 px shapes of
any colour anywhere, were not fit: supervised 0.60 / 0.52 at s = 0 / 1): with this testbed,
supervised 0.975 / 0.971, floor 0.521, contrastive 0.342 (s 0) / 0.539 (s 1) / 0.787
(colour-free); with every view's channels in a random order (`--channel_permutation_prob=1`)
0.494 (s 0) / 0.734 (s 1) / 0.652 (s 2); grayscale without jitter 0.471 (the grey levels
still identify an image). At 32 px (floor 0.588, supervised 1.000): 0.355 / 0.561, with the
channels permuted 0.412 / 0.777.

Points are compared with benchmarks/baselines/color_shapes.json, seed 0, with per-point
bands sized by the spread over seeds and machines (`bands`); re-recording runs every spread
seed and seed 0 with other kernels, and asserts fitness and claims for each run.
"""

from __future__ import annotations

import pytest

from bands import Run, runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test images
MIN_SUPERVISED = 0.90
MIN_ABOVE_FLOOR = 0.25
MIN_SUPPRESSION = 0.25
MIN_RISE = 0.15
STRENGTHS = (0.0, 1.0)
TESTBED = ["--image_size=16", "--shape_offset=0.2", "--light_on_dark", "--temperatures=0.1"]
SWEEPS = {
    "color_shapes": [
        *TESTBED,
        "--jitter_strengths=0,1.0",
        "--models=contrastive,supervised,random_init",
    ],
    "color_shapes_colour_free": [
        *TESTBED,
        "--jitter_strengths=1.0",
        "--grayscale_prob=1",
        "--models=contrastive",
    ],
}


def _points(rows: list[dict]) -> dict[str, float]:
    def shape(model: str, s: float, sweep: str = "color_shapes") -> float:
        return point(rows, "linear_shape", jitter_strength=s, model=model, sweep=sweep)

    return {
        **{
            f"{m}/s{s:g}/shape": shape(m, s)
            for m in ("contrastive", "supervised")
            for s in STRENGTHS
        },
        "contrastive/colour_free/shape": shape("contrastive", 1.0, "color_shapes_colour_free"),
        "random_init/shape": shape("random_init", 0.0),
    }


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
            "linear probe test accuracy of the shape (4 classes) vs colour-jitter strength (16 px, "
            "light shapes on dark, centred within +-0.2), contrastive tau 0.1, with the supervised "
            "reference, the random-init floor and the colour-free condition (grayscale, jitter 1)"
        ),
        output_dir=output_dir,
        results_dir=results_dir,
    )
    return runs, per_run


@pytest.mark.benchmark
@pytest.mark.xfail(
    strict=True,
    reason="colour-free contrastive 0.18-0.25 above the floor on seeds 1, 2 and two of seed 0's "
    "kernel sets (see docstring)",
)
def test_testbed_is_fit_on_every_recorded_run(baseline):
    # The recorded runs (every spread seed and kernel set), which a comparing run does not
    # measure: seed 0 alone is fit (0.27 above the floor).
    runs, per_run = baseline.recorded_runs("color_shapes")
    for i, label in enumerate(runs):
        supervised = per_run["supervised/s0/shape"][i]
        above_floor = per_run["contrastive/colour_free/shape"][i] - per_run["random_init/shape"][i]
        assert supervised >= MIN_SUPERVISED, (
            f"{label}: testbed not fit: supervised shape probe {supervised:.3f}"
        )
        assert above_floor >= MIN_ABOVE_FLOOR, (
            f"{label}: testbed not fit: colour-free contrastive probe only {above_floor:.3f} "
            "above the random-init floor"
        )


@pytest.mark.benchmark
def test_colour_suppresses_shape_without_jitter(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        free = per_run["contrastive/colour_free/shape"][i]
        coloured = per_run["contrastive/s0/shape"][i]
        assert free - coloured >= MIN_SUPPRESSION, (
            f"{run.label}: shape probe {coloured:.3f} with colour, {free:.3f} without"
        )


@pytest.mark.benchmark
def test_colour_jitter_lets_shape_be_learned(measured):
    runs, per_run = measured
    for run, low, high in zip(
        runs, per_run["contrastive/s0/shape"], per_run["contrastive/s1/shape"]
    ):
        assert high - low >= MIN_RISE, (
            f"{run.label}: shape probe did not rise with jitter: {low:.3f} -> {high:.3f}"
        )
