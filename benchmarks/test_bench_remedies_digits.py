"""Feature-suppression remedies where the shortcut is a digit (beyond the paper): DigitOnImages
and MultiDigits, where the suppressing digit lives in the same pixels as the suppressed
feature, so that every remedy is nuisance-agnostic there (reconstruction included).

Runs the remedies entry point as its users do, with its default flagfile (auxiliary weights
100, tau 0.1) on these two testbeds:

    python -m cl_properties.experiments.remedies --flagfile=experiments/remedies/default.flags
        --testbeds=digit_on_images,multidigits --models=ifm,recon_hybrid,rotation_aux,recon_rotation

The contrastive model (at both points) and the floor are the two testbeds' studies'
(`test_bench_digit_on_images.py`, `test_bench_multidigits.py`: their sweeps, run once for all
three files), the same configurations as the remedies entry point's with
`--models=contrastive,random_init` (a unit test compares the two programs' jobs; the six
recorded runs, measured with the remedies entry point, match the studies' to the last digit).
Run alone, this file trains those sweeps itself (with the studies' supervised references and
K = 10: ~320 s more on 2 cores). Its plot, the remedies entry point's, shows the remedies only.

Each testbed at its default training (ConvN, batch 256, 300 steps) at its most suppressed
point (DigitOnImages: K = 1000 unique digits, probe of the background object; MultiDigits: the
other digit at 24 px, probe of the 12 px fixed digit) with the contrastive model, each remedy
(`ifm` eps 0.1 alpha 1; `recon_hybrid`, `rotation_aux`, `recon_rotation`: lambda 100) and the
random-init floor; and the contrastive model at the unsuppressed point (K = 1; a 6 px other
digit), the level a remedy would restore.

Claims, per run (each holds on the six recorded runs of 2026-12-07):
- the testbeds show the suppression the remedies are measured against: the contrastive probe
  at the suppressed point is at least MIN_SUPPRESSION below the unsuppressed one
  (DigitOnImages 0.729-0.754 against 0.855-0.896; MultiDigits 0.322-0.391 against
  0.727-0.781);
- rotation prediction, whose task a digit's orientation solves, leaves the suppressed feature
  within FLOOR_GAP of the random-init floor (-0.025 to 0.025 from it on either testbed);
- reconstruction (agnostic here) lowers the object under the digits of DigitOnImages by at
  least MIN_RECON_HARM below contrastive (0.070-0.117; on MultiDigits 0.004-0.066, not
  asserted).
Failing on every recorded run, a strict xfail over them: the remedies issue's goal that one
agnostic remedy come within GOAL_GAP of the unsuppressed level on both testbeds (the best,
`ifm`, is 0.133-0.174 below it on DigitOnImages and 0.334-0.395 on MultiDigits, where it is
the only remedy above contrastive, by -0.004 to 0.070). IFM and `recon_rotation`
(0.469-0.553 / 0.277-0.293) are recorded, not asserted; docs/experiments.md ("Beyond the
paper") says what else was tried.

Points are compared with benchmarks/baselines/remedies_digits.json, seed 0, with per-point
bands sized by the spread over seeds and machines (`bands`); re-recording runs every spread
seed and seed 0 with other kernels.
"""

from __future__ import annotations

import pytest

from cl_properties.experiments import remedies

from suppression_runs import measured_fixture, point
from test_bench_digit_on_images import SWEEPS as DIGIT_ON_IMAGES_SWEEPS
from test_bench_multidigits import SWEEPS as MULTIDIGITS_SWEEPS

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test images of either testbed
MIN_SUPPRESSION = 0.10
GOAL_GAP = 0.05
FLOOR_GAP = 0.05
MIN_RECON_HARM = 0.05
TESTBEDS = ("digit_on_images", "multidigits")
REMEDIES = ("ifm", "recon_hybrid", "rotation_aux", "recon_rotation")
MODELS = ("contrastive", *REMEDIES, "random_init")
SWEEPS = {
    **DIGIT_ON_IMAGES_SWEEPS,  # contrastive and random_init at K = 1 / 10 / 1000 (and supervised)
    **MULTIDIGITS_SWEEPS,  # the same with the other digit at 6 and 24 px
    "remedies_digits": [
        "--flagfile=experiments/remedies/default.flags",
        f"--testbeds={','.join(TESTBEDS)}",
        f"--models={','.join(REMEDIES)}",
    ],
}
EXPERIMENTS = {
    "digit_on_images": "digit_on_images",
    "multidigits": "multidigits",
    "remedies_digits": "remedies",
}


def _points(rows: list[dict]) -> dict[str, float]:
    def remedy(testbed: str, model: str) -> float:
        return point(
            rows,
            "suppressed_probe",
            sweep="remedies_digits",
            testbed=testbed,
            model=model,
            setting="suppressed",
        )

    def study(testbed: str, model: str, suppressed: bool) -> float:
        # The study's row at the remedies' point (or reference) of its knob.
        bed = remedies.TESTBEDS[testbed]
        where = bed.point if suppressed else bed.reference
        return point(rows, f"linear_{bed.suppressed}", sweep=testbed, model=model, **where)

    return {
        **{
            f"{testbed}/{model}/suppressed": (
                remedy(testbed, model) if model in REMEDIES else study(testbed, model, True)
            )
            for testbed in TESTBEDS
            for model in MODELS
        },
        **{
            f"{testbed}/contrastive/unsuppressed": study(testbed, "contrastive", False)
            for testbed in TESTBEDS
        },
    }


measured = measured_fixture(
    "remedies_digits",
    EXPERIMENTS,
    SWEEPS,
    _points,
    spread_seeds=SPREAD_SEEDS,
    min_band=MIN_BAND,
    description=(
        "linear probe of the suppressed feature (DigitOnImages at K = 1000: the object; "
        "MultiDigits with the other digit at 24 px: the 12 px fixed digit) for contrastive, "
        "ifm, recon_hybrid, rotation_aux, recon_rotation (weights 100) and the random-init "
        "floor; contrastive unsuppressed (K = 1; 6 px); tau 0.1"
    ),
)


@pytest.mark.benchmark
def test_testbeds_show_the_suppression(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        for testbed in TESTBEDS:
            unsuppressed = per_run[f"{testbed}/contrastive/unsuppressed"][i]
            suppressed = per_run[f"{testbed}/contrastive/suppressed"][i]
            assert unsuppressed - suppressed >= MIN_SUPPRESSION, (
                f"{run.label}, {testbed}: contrastive {suppressed:.3f} suppressed, "
                f"{unsuppressed:.3f} unsuppressed (< {MIN_SUPPRESSION} apart)"
            )


@pytest.mark.benchmark
def test_rotation_prediction_leaves_the_suppressed_feature_at_the_floor(measured):
    # A digit's orientation solves the rotation task, so the rotation term adds nothing to
    # the suppressed feature (and takes away what the contrastive model kept).
    runs, per_run = measured
    for i, run in enumerate(runs):
        for testbed in TESTBEDS:
            rotation = per_run[f"{testbed}/rotation_aux/suppressed"][i]
            floor = per_run[f"{testbed}/random_init/suppressed"][i]
            assert rotation - floor <= FLOOR_GAP, (
                f"{run.label}, {testbed}: rotation_aux {rotation:.3f}, floor {floor:.3f}"
            )


@pytest.mark.benchmark
def test_reconstruction_lowers_the_object_under_the_digits(measured):
    # Agnostic there: reconstructing the view rewards encoding the digits too.
    runs, per_run = measured
    for i, run in enumerate(runs):
        contrastive = per_run["digit_on_images/contrastive/suppressed"][i]
        recon = per_run["digit_on_images/recon_hybrid/suppressed"][i]
        assert contrastive - recon >= MIN_RECON_HARM, (
            f"{run.label}: recon_hybrid {recon:.3f}, contrastive {contrastive:.3f}"
        )


@pytest.mark.benchmark
@pytest.mark.xfail(strict=True, reason="no remedy within GOAL_GAP of unsuppressed on any run")
def test_an_agnostic_remedy_reaches_the_unsuppressed_level_on_every_recorded_run(baseline):
    # The recorded runs (every spread seed and kernel set), which a comparing run does not
    # measure.
    labels, per_run = baseline.recorded_runs("remedies_digits")
    gaps = {
        model: [
            max(
                per_run[f"{testbed}/contrastive/unsuppressed"][i]
                - per_run[f"{testbed}/{model}/suppressed"][i]
                for testbed in TESTBEDS
            )
            for i in range(len(labels))
        ]
        for model in REMEDIES
    }
    best = min(REMEDIES, key=lambda model: max(gaps[model]))
    assert max(gaps[best]) <= GOAL_GAP, (
        f"the best remedy, {best}, is up to {max(gaps[best]):.3f} below the unsuppressed level "
        f"(per run {dict(zip(labels, (round(g, 3) for g in gaps[best])))})"
    )
