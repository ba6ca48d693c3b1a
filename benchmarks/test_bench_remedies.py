"""Feature-suppression remedies on RandBit (beyond the paper), on the main job's images.

Runs `python -m cl_properties.experiments.randbit` (14 px digits, ConvN, tau 0.1, shared bits)
at the remedies' scale (`randbit.REMEDIES_DEFAULTS`: 500 steps of batch 128, the images of the
main job's 250 steps of batch 256 in twice the updates) at 0 and 20 bits with the contrastive
model, each remedy and the random-init floor:

- `ifm`: implicit feature modification (Robinson et al., NeurIPS 2021), eps 0.1, alpha 1;
- `recon_hybrid`: + reconstruction of each augmented view, the image's channels and the
  bit planes weighted as two groups (knows the nuisance's channel layout); also recorded
  with every channel weighted alike (`uniform`, knows nothing), at 20 bits;
- `rotation_aux`: + rotation prediction (E-SSL, Dangovski et al., ICLR 2022; knows nothing
  of the nuisance).

Both auxiliary weights are 100 here (`WEIGHT`): the presets (10) were calibrated at 28 px
and 300 steps; at the main job's scale (250 steps of batch 256; seed 0, class probe at 20
bits) lambda 10 / 30 / 100 gave recon_hybrid 0.792 / 0.892 / 0.919 and rotation_aux 0.669 /
0.808 / 0.839, and at 0 bits lambda 100 gave 0.978 / 0.967 (contrastive 0.978). At that scale
rotation_aux stayed below ROTATION_MIN on every recorded run (0.794-0.844); the same images in
twice the updates lift it to 0.875 / 0.889 / 0.875 (seeds 0-2), hence the remedies' scale.

Claims, per run (each holds on the six recorded runs of 2026-12-07): recon_hybrid (groups)
is >= RECON_MIN at 20 bits (0.917-0.950) and costs no more than MAX_COST at 0 bits (0.000-0.006
below contrastive); rotation_aux is above the floor at 20 bits, where contrastive is below it,
and reaches the remedies issue's agnostic goal, >= ROTATION_MIN (0.875-0.903). Failing, a
strict xfail over the recorded runs: that rotation_aux cost no more than MAX_COST at 0 bits
(0.961-0.978 against contrastive 0.975-0.986: 0.011-0.017 below it on five of the six runs,
0.008 on seed 2). IFM (0.078-0.094 at 20 bits) and the uniform reconstruction (0.103-0.167)
do not resist suppression: recorded, not asserted.

Points are compared with benchmarks/baselines/remedies.json, seed 0, with per-point bands
sized by the spread over seeds and machines (`bands`); re-recording runs every spread seed
and seed 0 with other kernels.
"""

from __future__ import annotations

import pytest

from cl_properties.experiments.randbit import REMEDIES_DEFAULTS

from suppression_runs import measured_fixture, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 11 of the 360 test digits
WEIGHT = 100
RECON_MIN = 0.90
ROTATION_MIN = 0.85
MAX_COST = 0.01
BITS = (0, 20)
MODELS = ("contrastive", "ifm", "recon_hybrid", "rotation_aux", "random_init")
_COMMON = [
    "--bit_mode=shared",
    "--temperatures=0.1",
    f"--recon_weight={WEIGHT}",
    *(f"--{name}={value}" for name, value in REMEDIES_DEFAULTS.items()),
]
SWEEPS = {
    "remedies": [
        "--bits=0,20",
        f"--models={','.join(MODELS)}",
        *_COMMON,
        f"--rotation_weight={WEIGHT}",
    ],
    "remedies_uniform": [
        "--bits=20",
        "--models=recon_hybrid",
        *_COMMON,
        "--recon_weighting=uniform",
    ],
}


def _points(rows: list[dict]) -> dict[str, float]:
    points = {}
    for model in MODELS:
        for b in BITS:
            where = {"model": model, "bits": b}
            if model == "recon_hybrid":
                where["recon_weighting"] = "groups"
            points[f"{model}/bits{b}/label"] = point(rows, "linear_label", **where)
    points["recon_hybrid_uniform/bits20/label"] = point(
        rows, "linear_label", model="recon_hybrid", recon_weighting="uniform", bits=20
    )
    return points


measured = measured_fixture(
    "remedies",
    "randbit",
    SWEEPS,
    _points,
    spread_seeds=SPREAD_SEEDS,
    min_band=MIN_BAND,
    description=(
        "RandBit class probe (linear, frozen features) at 0 and 20 shared bits: "
        f"contrastive, ifm, recon_hybrid (groups; uniform at 20 bits) and rotation_aux "
        f"(weights {WEIGHT}), random-init floor; tau 0.1"
    ),
)


@pytest.mark.benchmark
def test_reconstruction_with_channel_groups_resists_suppression(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        at20 = per_run["recon_hybrid/bits20/label"][i]
        assert at20 >= RECON_MIN, f"{run.label}: recon_hybrid at 20 bits {at20:.3f}"


@pytest.mark.benchmark
def test_rotation_prediction_keeps_class_information(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        rotation = per_run["rotation_aux/bits20/label"][i]
        floor = per_run["random_init/bits20/label"][i]
        contrastive = per_run["contrastive/bits20/label"][i]
        assert contrastive < floor < rotation, (
            f"{run.label}, 20 bits: contrastive {contrastive:.3f}, floor {floor:.3f}, "
            f"rotation_aux {rotation:.3f}"
        )


def _costs_at_0_bits(
    model: str, labels: list[str], per_run: dict[str, list[float]]
) -> dict[str, float]:
    """{run: contrastive minus `model`, class probe at 0 bits} of the runs where it exceeds
    MAX_COST."""
    costs = {
        label: per_run["contrastive/bits0/label"][i] - per_run[f"{model}/bits0/label"][i]
        for i, label in enumerate(labels)
    }
    return {label: round(cost, 3) for label, cost in costs.items() if cost > MAX_COST}


@pytest.mark.benchmark
def test_reconstruction_costs_nothing_without_bits(measured):
    runs, per_run = measured
    costly = _costs_at_0_bits("recon_hybrid", [run.label for run in runs], per_run)
    assert not costly, f"recon_hybrid below contrastive at 0 bits by more than {MAX_COST}: {costly}"


@pytest.mark.benchmark
@pytest.mark.xfail(strict=True, reason="0.011-0.017 below contrastive on five of six runs")
def test_rotation_prediction_costs_nothing_without_bits_on_every_recorded_run(baseline):
    # The recorded runs (every spread seed and kernel set), which a comparing run does not
    # measure: strict over them, whatever this machine's kernels give.
    labels, per_run = baseline.recorded_runs("remedies")
    costly = _costs_at_0_bits("rotation_aux", labels, per_run)
    assert not costly, f"rotation_aux below contrastive at 0 bits by more than {MAX_COST}: {costly}"


@pytest.mark.benchmark
def test_rotation_prediction_meets_the_agnostic_goal(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        at20 = per_run["rotation_aux/bits20/label"][i]
        assert at20 >= ROTATION_MIN, f"{run.label}: rotation_aux at 20 bits {at20:.3f}"
