"""Feature-suppression remedies on colour shapes (beyond the paper), where colour lives in the
same pixels as the suppressed shape, so that no remedy can know the nuisance's channels.

Runs `python -m cl_properties.experiments.color_shapes` at its default testbed (16 px light
shapes of six kinds on dark, every channel's colours random per image; ConvN, 600 steps of
batch 128, tau 0.1) without colour jitter (the suppressed point) with the contrastive model,
`ifm` (eps 0.1, alpha 1), `recon_hybrid` (reconstruction of each augmented view; the image
has no appended channels, so its `groups` weighting is uniform) and `rotation_aux` (rotation
prediction), both auxiliary weights 100 as in the remedies' flagfile, with the random-init
floor; and the contrastive model at jitter 1.0 (the unsuppressed level a remedy would restore).

The contrastive model and the floor are the colour-shapes study's (`test_bench_color_shapes.py`,
its sweep run once for both files when they share a worker; run alone, this file trains
that sweep itself, supervised references included).

Claim, per run (holds on the six recorded): both agnostic remedies lift the shape probe at
least MIN_LIFT above the contrastive model's (recon_hybrid 0.72-0.77, rotation_aux 0.74-0.79,
against 0.39-0.44; floor 0.51-0.61). Failing on every recorded run, a strict xfail over them:
the remedies issue's goal that a remedy come within GOAL_GAP of the unsuppressed level
(0.88-0.94; the best remedy is 0.09-0.17 below it). IFM (0.38-0.45) is recorded, not
asserted.

Points are compared with benchmarks/baselines/remedies_color_shapes.json, seed 0, with
per-point bands sized by the spread over seeds and machines (`bands`); re-recording runs
every spread seed and seed 0 with other kernels.
"""

from __future__ import annotations

import pytest

from suppression_runs import measured_fixture, point
from test_bench_color_shapes import SWEEPS as STUDY_SWEEPS
from test_bench_color_shapes import TESTBED

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test images
WEIGHT = 100
MIN_LIFT = 0.15
GOAL_GAP = 0.05
REMEDIES = ("ifm", "recon_hybrid", "rotation_aux")
AGNOSTIC = ("recon_hybrid", "rotation_aux")
SWEEPS = {
    # contrastive and random_init at jitter 0 and 1.0 (and the supervised reference)
    "color_shapes": STUDY_SWEEPS["color_shapes"],
    "remedies_color_shapes": [
        *TESTBED,
        "--jitter_strengths=0",
        f"--models={','.join(REMEDIES)}",
        f"--recon_weight={WEIGHT}",
        f"--rotation_weight={WEIGHT}",
    ],
}


def _points(rows: list[dict]) -> dict[str, float]:
    def shape(model: str, sweep: str, jitter: float = 0.0) -> float:
        return point(rows, "linear_shape", model=model, sweep=sweep, jitter_strength=jitter)

    return {
        "contrastive/s0/shape": shape("contrastive", "color_shapes"),
        **{f"{m}/s0/shape": shape(m, "remedies_color_shapes") for m in REMEDIES},
        "random_init/s0/shape": shape("random_init", "color_shapes"),
        "contrastive/s1/shape": shape("contrastive", "color_shapes", 1.0),
    }


measured = measured_fixture(
    "remedies_color_shapes",
    "color_shapes",
    SWEEPS,
    _points,
    spread_seeds=SPREAD_SEEDS,
    min_band=MIN_BAND,
    description=(
        "colour shapes, shape probe (6 classes) without colour jitter: contrastive, ifm, "
        f"recon_hybrid and rotation_aux (weights {WEIGHT}), random-init floor; contrastive "
        "at jitter 1.0 (unsuppressed); tau 0.1"
    ),
)


@pytest.mark.benchmark
def test_agnostic_remedies_lift_the_suppressed_shape(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        contrastive = per_run["contrastive/s0/shape"][i]
        for model in AGNOSTIC:
            remedy = per_run[f"{model}/s0/shape"][i]
            assert remedy - contrastive >= MIN_LIFT, (
                f"{run.label}: {model} {remedy:.3f} against contrastive {contrastive:.3f}"
            )


@pytest.mark.benchmark
@pytest.mark.xfail(strict=True, reason="no remedy within GOAL_GAP of jitter 1.0 on any run")
def test_a_remedy_reaches_the_unsuppressed_level_on_every_recorded_run(baseline):
    # The recorded runs (every spread seed and kernel set), which a comparing run does not
    # measure.
    runs, per_run = baseline.recorded_runs("remedies_color_shapes")
    for i, label in enumerate(runs):
        unsuppressed = per_run["contrastive/s1/shape"][i]
        best = max(per_run[f"{model}/s0/shape"][i] for model in AGNOSTIC)
        assert unsuppressed - best <= GOAL_GAP, (
            f"{label}: best agnostic remedy {best:.3f}, unsuppressed {unsuppressed:.3f}"
        )
