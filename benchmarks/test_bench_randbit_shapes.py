"""RandBit (paper section 4, Figure 5a) on a testbed that passes the studies' fitness rule.

On scikit-learn's digits (`test_bench_randbit.py`, the main job) an untrained ConvN probes the
class at ~0.94, so no model can be 0.25 above the floor there. Here the same study runs on the
registry's grey shapes (6 kinds at 16 px, where an untrained encoder probes ~0.57), as a user
would: `python -m cl_properties.experiments.randbit
--flagfile=experiments/suppression/randbit_grey_shapes.flags` (the main job's model and
optimizer, tau 0.1, the shapes' augmentation, 1200 steps of batch 128) as shipped: contrastive
and the random-init floor at 0 and 20 shared bits, per-view bits (the control) at 20; and the
same with `--bits=20 --models=ifm,recon_hybrid,rotation_aux` for the remedies.

Claims, per run:
- fit: without bits the contrastive probe (the unsuppressed condition, the upper reference)
  is >= FIT_REFERENCE and >= FIT_GAP above the floor;
- 20 shared bits suppress the shape: the contrastive probe falls to within SUPPRESSED_MARGIN
  of the untrained floor (training's gain of >= FIT_GAP is gone);
- per-view bits do not: the control stays >= FIT_GAP above the floor at 20 bits.

Beyond the paper, the remedies at 20 shared bits (their parameters as on RandBit's digits,
`test_bench_remedies.py`: eps 0.1, lambda WEIGHT): `ifm`, `recon_hybrid` (groups: knows the
bits' channel layout) and `rotation_aux` (agnostic; five of the six kinds of shape are
symmetric under quarter turns, so rotation prediction has little to hold on to). Claim, per
run: recon_hybrid lifts the shape above both the contrastive model and the floor. Failing,
a strict xfail: the remedies issue's goal that an agnostic remedy (ifm or rotation_aux) come
within AGNOSTIC_GOAL of the unsuppressed probe (seed 0: 0.139 / 0.267 against 0.975).

Why 20 bits and 1200 steps of batch 128 (the flagfile has the numbers): the control must
learn to ignore 20 noise planes, which 600 steps of batch 256 (the same images) do not give
it; and at 5 bits the suppression was partly training length (it eases with more steps), while
20 shared bits hold the shape at chance with twice the images too.

Points are compared with benchmarks/baselines/randbit_shapes.json, seed 0, with per-point bands
sized by the spread over seeds and machines (`bands`); re-recording runs every spread seed and
seed 0 with other kernels.
"""

from __future__ import annotations

import pytest

from bands import FIT_GAP, FIT_REFERENCE
from suppression_runs import measured_fixture, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 11 of the 360 test shapes
FLAGFILE = "experiments/suppression/randbit_grey_shapes.flags"
WEIGHT = 100  # both auxiliary weights, as on RandBit's digits (test_bench_remedies.py)
REMEDIES = ("ifm", "recon_hybrid", "rotation_aux")
SWEEPS = {
    "randbit_shapes": [f"--flagfile={FLAGFILE}"],
    "randbit_shapes_remedies": [
        f"--flagfile={FLAGFILE}",
        "--bits=20",
        "--control_bits=20",
        "--bit_mode=shared",
        f"--models={','.join(REMEDIES)}",
        f"--recon_weight={WEIGHT}",
        f"--rotation_weight={WEIGHT}",
    ],
}
BITS = (0, 20)
AGNOSTIC = ("ifm", "rotation_aux")
AGNOSTIC_GOAL = 0.05  # the remedies issue's: within 0.05 of the unsuppressed level
# The fitness rule (`bands.FIT_REFERENCE`, `FIT_GAP`) takes the unsuppressed condition as its
# upper reference here.
SUPPRESSED_MARGIN = 0.10  # 36 of the 360 test shapes: well under the FIT_GAP training adds


def _points(rows: list[dict]) -> dict[str, float]:
    points = {}
    for b in BITS:
        for model in ("contrastive", "random_init"):
            where = {"model": model, "bits": b, "bit_mode": "shared"}
            points[f"{model}/bits{b}/label"] = point(rows, "linear_label", **where)
    points["per_view/bits20/label"] = point(
        rows, "linear_label", model="contrastive", bit_mode="per_view", bits=20
    )
    for model in REMEDIES:
        points[f"{model}/bits20/label"] = point(
            rows, "linear_label", model=model, bit_mode="shared", bits=20
        )
    # How well the representation encodes the bits themselves (reported, not asserted).
    points["contrastive/bits20/bit0"] = point(
        rows, "linear_bit0", model="contrastive", bit_mode="shared", bits=20
    )
    return points


measured = measured_fixture(
    "randbit_shapes",
    "randbit",
    SWEEPS,
    _points,
    spread_seeds=SPREAD_SEEDS,
    min_band=MIN_BAND,
    description=(
        "linear probe test accuracy of the shape (label, 6 kinds) and of the first bit (bit0) on "
        "frozen features, grey shapes 16 px, 1200 steps of batch 128: contrastive tau 0.1 at 0 "
        f"and 20 shared bits, per-view bits at 20, random-init floor; ifm, recon_hybrid and "
        f"rotation_aux (weights {WEIGHT}) at 20 shared bits"
    ),
)


def _values(per_run: dict[str, list[float]], i: int) -> dict[str, float]:
    return {key: values[i] for key, values in per_run.items()}


@pytest.mark.benchmark
def test_randbit_on_a_fit_testbed_shared_bits_suppress_the_shape(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        value = _values(per_run, i)
        clean, floor = value["contrastive/bits0/label"], value["random_init/bits0/label"]
        assert clean >= FIT_REFERENCE and clean >= floor + FIT_GAP, (
            f"{run.label}: the testbed is not fit at 0 bits (contrastive {clean:.3f}, floor "
            f"{floor:.3f})"
        )
        shared, floor20 = value["contrastive/bits20/label"], value["random_init/bits20/label"]
        assert shared <= floor20 + SUPPRESSED_MARGIN, (
            f"{run.label}: 20 shared bits did not suppress the shape (contrastive {shared:.3f}, "
            f"floor {floor20:.3f})"
        )
        per_view = value["per_view/bits20/label"]
        assert per_view >= floor20 + FIT_GAP, (
            f"{run.label}: per-view bits suppressed the shape too (per-view {per_view:.3f}, "
            f"floor {floor20:.3f})"
        )


@pytest.mark.benchmark
def test_reconstruction_with_channel_groups_lifts_the_suppressed_shape(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        value = _values(per_run, i)
        recon = value["recon_hybrid/bits20/label"]
        contrastive, floor = value["contrastive/bits20/label"], value["random_init/bits20/label"]
        assert recon > max(contrastive, floor), (
            f"{run.label}, 20 bits: recon_hybrid {recon:.3f}, contrastive {contrastive:.3f}, "
            f"floor {floor:.3f}"
        )


@pytest.mark.benchmark
@pytest.mark.xfail(strict=True, reason="ifm and rotation_aux stay far below the goal (seed 0)")
def test_an_agnostic_remedy_restores_the_unsuppressed_shape(measured):
    runs, per_run = measured
    for i, run in enumerate(runs):
        value = _values(per_run, i)
        best = max(value[f"{model}/bits20/label"] for model in AGNOSTIC)
        unsuppressed = value["contrastive/bits0/label"]
        assert best >= unsuppressed - AGNOSTIC_GOAL, (
            f"{run.label}: best agnostic remedy {best:.3f}, unsuppressed {unsuppressed:.3f}"
        )
