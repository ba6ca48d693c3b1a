"""Modified MultiDigits (paper section 4): a growing digit suppresses the other one.

Runs `python -m cl_properties.experiments.multidigits` as shipped (4096 training canvases
of 42 px; a 12 px digit at the left edge, jittered by 4 px, and a second digit of 6 / 24 px
at a random position to its right; crops of 80-100% of the canvas, ConvN, batch 256, 300
steps, tau 0.1), with both controls of the fixed digit's curve measured in the same run: the
encoder trained supervised on the fixed digit (upper reference) and the encoder at random
initialization (floor).

Testbed fitness (asserted for every run, in the unsuppressed condition, the other digit at
6 px): the supervised encoder reaches >= FIT_REFERENCE on the fixed digit, the contrastive
probe is >= FIT_GAP above the floor. The studies issue also asks that the fixed
digit be learned alone (contrastive probe >= MIN_ALONE with the other digit at 6 px, on every
recorded run): it is not, so it is a strict xfail over the recorded runs: 0.73-0.78 at 300
steps on 4096 canvases (the default), 0.70-0.72 on 2048 canvases; 600 steps on 4096 canvases
reached 0.80-0.82 on seed 0 but 0.771 / 0.781 on seeds 1 / 2 and cost twice the CI time
(calibration, seed 0: `multidigits.define_flags`); 600 steps of batch 128 (the same images,
the same cost) gave 0.746-0.764 over seeds 0-2. Less jitter of the fixed digit lifts it
(0.906 without jitter) but lifts the floor more (0.877), and the other digit is not what holds
it back (at 4 / 3 px, barely a blob: 0.781 / 0.793, seed 0): docs/experiments.md. The
paper's layout (both digits at random positions) is not fit at this scale: ConvN flattens its
last feature map, so a digit that moves is barely learned even supervised (0.44 for an 8 px
digit on a 32 px canvas).

Claim (paper): the fixed digit's probe falls as the other digit grows: at 24 px it is below
its 6 px value by at least MIN_DROP.

Points are compared with benchmarks/baselines/multidigits.json, seed 0, with per-point bands
sized by the spread over seeds and machines (`bands`); re-recording runs every spread seed and
seed 0 with other kernels, and asserts fitness and claim for each run.
"""

from __future__ import annotations

import pytest

from bands import FIT_GAP, FIT_REFERENCE, runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test canvases
MIN_ALONE = 0.80
MIN_DROP = 0.10
SIZES = (6, 24)
MODELS = ("contrastive", "supervised", "random_init")
SWEEPS = {
    "multidigits": [
        "--variable_sizes=6,24",
        "--temperatures=0.1",
        f"--models={','.join(MODELS)}",
    ]
}


def _points(rows: list[dict]) -> dict[str, float]:
    return {
        f"{model}/size{s}/{probe}": point(rows, f"linear_{probe}", variable_size=s, model=model)
        for model in MODELS
        for s in SIZES
        for probe in ("fixed", "variable")
    }


@pytest.mark.benchmark
def test_growing_digit_suppresses_the_fixed_size_one(baseline, results_dir, tmp_path):
    runs = runs_to_measure(baseline.update, SPREAD_SEEDS)
    per_run = measure_against_baseline(
        baseline,
        "multidigits",
        "multidigits",
        SWEEPS,
        runs,
        _points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the 12 px fixed digit and of the other digit vs the "
            "other's size, for the contrastive model (tau 0.1), the supervised upper reference "
            "(trained on the fixed digit) and the random-init floor"
        ),
        output_dir=str(tmp_path),
        results_dir=results_dir,
    )
    small, large = SIZES[0], SIZES[-1]
    for i, run in enumerate(runs):
        supervised = per_run[f"supervised/size{small}/fixed"][i]
        above_floor = (
            per_run[f"contrastive/size{small}/fixed"][i]
            - per_run[f"random_init/size{small}/fixed"][i]
        )
        drop = (
            per_run[f"contrastive/size{small}/fixed"][i]
            - per_run[f"contrastive/size{large}/fixed"][i]
        )
        assert supervised >= FIT_REFERENCE, (
            f"{run.label}: testbed not fit: supervised fixed-digit probe {supervised:.3f} "
            f"(< {FIT_REFERENCE})"
        )
        assert above_floor >= FIT_GAP, (
            f"{run.label}: testbed not fit: contrastive fixed-digit probe only "
            f"{above_floor:.3f} above the random-init floor (< {FIT_GAP})"
        )
        assert drop >= MIN_DROP, (
            f"{run.label}: fixed digit's probe fell by {drop:.3f} (< {MIN_DROP})"
        )


@pytest.mark.benchmark
@pytest.mark.xfail(
    strict=True, reason="the recorded runs learn the fixed digit alone to 0.73-0.78 (see docstring)"
)
def test_fixed_digit_is_learned_alone_on_every_recorded_run(baseline):
    # The recorded runs (every spread seed and kernel set), which a comparing run does not
    # measure.
    runs, per_run = baseline.recorded_runs("multidigits")
    for label, alone in zip(runs, per_run[f"contrastive/size{SIZES[0]}/fixed"]):
        assert alone >= MIN_ALONE, (
            f"{label}: the fixed digit is not learned alone: contrastive probe {alone:.3f} with "
            f"the other digit at {SIZES[0]} px (< {MIN_ALONE})"
        )
