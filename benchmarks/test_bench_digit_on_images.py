"""DigitOnImages (paper section 4) on offline shapes, with the embedded defaults.

Runs `python -m cl_properties.experiments.digit_on_images` as shipped (32 px light shapes of
6 kinds on dark backgrounds, object-centred within +-0.175 of the image; one of K unique 8 px
digits on a 3x3 grid; crops of >= 0.8 of the image; ConvN, batch 256, 300 steps), tau 0.1, at
K = 1 / 10 / 1000, with both controls of the object's curve measured in the same run: the
encoder trained supervised on the object label (upper reference) and the encoder at random
initialization (floor).

Testbed fitness (asserted for every run, in the unsuppressed condition K = 1): the
supervised encoder reaches >= FIT_REFERENCE on the object, the contrastive object probe
reaches >= MIN_OBJECT (the studies issue's goal) and is >= FIT_GAP above the floor.
The previous backgrounds (4 kinds anywhere in the image, random grey levels either way round)
were not fit: contrastive 0.494, supervised 0.744, floor 0.381 at K = 1 (seed 0), and the
object fell by 0.006-0.096 with K over seeds. The backgrounds centred within +-0.2 with crops
of >= 0.3 learned the object to only 0.78-0.85 (calibration: `digit_on_images.BACKGROUND_SHAPES`).

Claim (paper): as the number of unique digits K grows, the digit becomes a feature that
tells images apart and suppresses the object feature: the contrastive object probe at the
largest K is below its K = 1 value by at least MIN_DROP, on every run. The digits also hide
part of the shape (8 px digits on the 3x3 grid cover 56% of the 32 px image), so the
supervised reference falls too; suppression is the part of the contrastive fall beyond that:
the contrastive drop must exceed the supervised drop. Recorded (six runs): the contrastive
object probe 0.855-0.896 at K = 1, 0.729-0.754 at K = 1000 (drops 0.109-0.168), the supervised
reference's drops 0.020-0.041, the floor 0.557-0.561 at K = 1 (0.30-0.34 below the
contrastive probe). On the previous testbed (+-0.2, crops >= 0.3) the drops were 0.158 /
0.191 / 0.113 against 0.079 / 0.104 / 0.050 on seeds 0-2: the larger crops cut less of the
shape, so occlusion costs the supervised reference less.
The digit probe is recorded (trivially 1.0 at K = 1, where every image carries the same
digit image; its chance level is each point's `chance_digit`).

Departure from the colab: its 28 px digits cover 14% of a 224 px image (3x3 grid); 8 px
digits on 32 px cover 56% here (scikit-learn's digits are 8x8; 64 px canvases cost 4x).

Points are compared with benchmarks/baselines/digit_on_images.json, seed 0, with per-point
bands sized by the spread over seeds and machines (`bands`); re-recording runs every spread
seed and seed 0 with other kernels, and asserts fitness and claim for each run.
"""

from __future__ import annotations

import pytest

from bands import FIT_GAP, FIT_REFERENCE, runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 15 of the 512 test images
MIN_OBJECT = 0.85
MIN_DROP = 0.05  # 26 of the 512 test images
POOL_SIZES = (1, 10, 1000)
MODELS = ("contrastive", "supervised", "random_init")
SWEEPS = {
    "digit_on_images": [
        f"--pool_sizes={','.join(map(str, POOL_SIZES))}",
        "--temperatures=0.1",
        f"--models={','.join(MODELS)}",
    ]
}


def _points(rows: list[dict]) -> dict[str, float]:
    return {
        f"{model}/K{k}/{probe}": point(rows, f"linear_{probe}", pool_size=k, model=model)
        for model in MODELS
        for k in POOL_SIZES
        for probe in ("object", "digit")
    }


@pytest.mark.benchmark
def test_unique_digits_suppress_the_object_feature(baseline, results_dir, tmp_path):
    runs = runs_to_measure(baseline.update, SPREAD_SEEDS)
    per_run = measure_against_baseline(
        baseline,
        "digit_on_images",
        "digit_on_images",
        SWEEPS,
        runs,
        _points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the object (shape, 6 classes) and the digit "
            "(10 classes) vs K, for the contrastive model (tau 0.1), the supervised upper "
            "reference (trained on the object) and the random-init floor"
        ),
        output_dir=str(tmp_path),
        results_dir=results_dir,
    )
    first, last = POOL_SIZES[0], POOL_SIZES[-1]
    for i, run in enumerate(runs):
        supervised = per_run[f"supervised/K{first}/object"][i]
        contrastive = per_run[f"contrastive/K{first}/object"][i]
        above_floor = contrastive - per_run[f"random_init/K{first}/object"][i]
        drop = contrastive - per_run[f"contrastive/K{last}/object"][i]
        supervised_drop = supervised - per_run[f"supervised/K{last}/object"][i]
        assert supervised >= FIT_REFERENCE, (
            f"{run.label}: testbed not fit: supervised object probe {supervised:.3f} "
            f"(< {FIT_REFERENCE})"
        )
        assert contrastive >= MIN_OBJECT, (
            f"{run.label}: testbed not fit: contrastive object probe {contrastive:.3f} at "
            f"K={first} (< {MIN_OBJECT})"
        )
        assert above_floor >= FIT_GAP, (
            f"{run.label}: testbed not fit: contrastive object probe only {above_floor:.3f} "
            f"above the random-init floor (< {FIT_GAP})"
        )
        assert drop >= MIN_DROP, (
            f"{run.label}: object probe fell by {drop:.3f} from K={first} to K={last} "
            f"(< {MIN_DROP})"
        )
        assert drop > supervised_drop, (
            f"{run.label}: the contrastive object probe fell by {drop:.3f}, no more than the "
            f"supervised reference's {supervised_drop:.3f} (occlusion by the digits, not "
            "suppression)"
        )
