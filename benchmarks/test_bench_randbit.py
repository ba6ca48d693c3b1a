"""RandBit (paper section 4, Figure 5a) on the offline digits, with the embedded defaults.

Runs `python -m cl_properties.experiments.randbit` as shipped, the main job's scale (ConvN,
head 256 -> 64, Adam 1e-3 with polynomial decay, batch 256, 250 steps, the digits at 14 px;
the VAE 500 steps at KL weight 0.1), restricted to what the claims need:

- contrastive, tau 0.1, bits 0 / 5 / 10 / 20;
- per-view bits (the control), tau 0.1, 20 bits;
- the VAE (same encoder, posterior mean probed; bit planes weighted as one group, the
  experiment's default) at 10 and 20 bits;
- the random-init floor (the encoder untrained) at 0, 10 and 20 bits.

Claims (paper): the class probe is >= 0.95 without bits, falls strictly with every added
bit count, is <= 0.45 at 10 bits and <= 0.20 at 20 bits; bits that are not shared between
the views (per_view) do not suppress it (>= 0.90 at 20 bits); the VAE is less affected than
the contrastive model (above it at 10 and 20 bits). Ours, beyond the paper: at 20 bits the
contrastive probe is below the floor (training removed class information an untrained
encoder keeps). The testbed fails the studies' fitness rule at 0 bits (the floor probes
about 0.94 on these easy digits, so no model can be 0.25 above it): recorded, not asserted.

The points (probe accuracies) are compared with benchmarks/baselines/randbit.json, seed 0,
with per-point bands sized by the spread over seeds and machines (`bands`); re-recording
(`--update-baselines`) runs every spread seed and seed 0 with other kernels, and asserts the
claims for each run.
"""

from __future__ import annotations

import pytest

from bands import runs_to_measure
from suppression_runs import measure_against_baseline, point

SPREAD_SEEDS = (0, 1, 2)
MIN_BAND = 0.03  # 11 of the 360 test digits
CONTRASTIVE_BITS = (0, 5, 10, 20)
VAE_BITS = (10, 20)
SWEEPS = {
    "randbit_contrastive": [
        "--bits=0,5,10,20",
        "--temperatures=0.1",
        "--models=contrastive",
        "--bit_mode=shared",
    ],
    "randbit_per_view": [
        "--bits=20",
        "--temperatures=0.1",
        "--models=contrastive",
        "--bit_mode=per_view",
    ],
    "randbit_vae": ["--bits=10,20", "--control_bits=10,20", "--models=vae", "--bit_mode=shared"],
    "randbit_floor": ["--bits=0,10,20", "--models=random_init", "--bit_mode=shared"],
}
FLOOR_BITS = (0, 10, 20)


def _points(rows: list[dict]) -> dict[str, float]:
    shared = {"model": "contrastive", "bit_mode": "shared"}
    points = {
        f"contrastive/bits{b}/label": point(rows, "linear_label", bits=b, **shared)
        for b in CONTRASTIVE_BITS
    }
    points["per_view/bits20/label"] = point(
        rows, "linear_label", model="contrastive", bit_mode="per_view", bits=20
    )
    points.update(
        {f"vae/bits{b}/label": point(rows, "linear_label", model="vae", bits=b) for b in VAE_BITS}
    )
    points.update(
        {
            f"random_init/bits{b}/label": point(rows, "linear_label", model="random_init", bits=b)
            for b in FLOOR_BITS
        }
    )
    # How well the representation encodes the bits themselves (reported, not asserted).
    points["contrastive/bits20/bit0"] = point(rows, "linear_bit0", bits=20, **shared)
    points["vae/bits20/bit0"] = point(rows, "linear_bit0", model="vae", bits=20)
    return points


@pytest.mark.benchmark
def test_randbit_bits_suppress_the_class_feature(baseline, results_dir, tmp_path):
    runs = runs_to_measure(baseline.update, SPREAD_SEEDS)
    per_run = measure_against_baseline(
        baseline,
        "randbit",
        "randbit",
        SWEEPS,
        runs,
        _points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the digit class (label) and of the first bit (bit0) on "
            "frozen features: contrastive tau 0.1 vs shared bits, per-view bits, VAE, random-init "
            "floor"
        ),
        output_dir=str(tmp_path),
        results_dir=results_dir,
    )

    for i, run in enumerate(runs):
        c = {b: per_run[f"contrastive/bits{b}/label"][i] for b in CONTRASTIVE_BITS}
        assert c[0] >= 0.95, f"{run.label}, no bits: {c[0]:.3f} < 0.95"
        for fewer, more in zip(CONTRASTIVE_BITS, CONTRASTIVE_BITS[1:]):
            assert c[more] < c[fewer], (
                f"{run.label}: accuracy did not fall from {fewer} to {more} bits: {c}"
            )
        assert c[10] <= 0.45 and c[20] <= 0.20, (
            f"{run.label}: bits did not suppress the class enough: {c}"
        )
        assert per_run["per_view/bits20/label"][i] >= 0.90, (
            f"{run.label}: unshared (per-view) bits suppressed the class"
        )
        for b in VAE_BITS:
            assert per_run[f"vae/bits{b}/label"][i] > c[b], (
                f"{run.label}: VAE not above contrastive at {b} bits"
            )
        floor = per_run["random_init/bits20/label"][i]
        assert c[20] < floor, f"{run.label}: 20 bits: contrastive {c[20]:.3f} >= floor {floor:.3f}"


# The VAE's reconstruction weight of the bit planes (`--vae_bit_weighting`): "group" (the
# default, measured above) weighs all planes together as much as the image; "bit" counts each
# bit once; "pixel" is the plain summed BCE, where b planes of H x W copies of one bit
# outweigh the image b times.
VAE_WEIGHTING_SWEEPS = {
    f"randbit_vae_{weighting}": [
        "--bits=20",
        "--models=vae",
        "--bit_mode=shared",
        f"--vae_bit_weighting={weighting}",
    ]
    for weighting in ("bit", "pixel")
}
PLAIN_ELBO_MAX = 0.30  # the class probe of a suppressed VAE: near chance (0.1), far below group's


def _weighting_points(rows: list[dict]) -> dict[str, float]:
    return {
        f"vae_{weighting}/bits20/label": point(
            rows, "linear_label", model="vae", bits=20, vae_bit_weighting=weighting
        )
        for weighting in ("bit", "pixel")
    }


@pytest.mark.benchmark
def test_randbit_vae_advantage_depends_on_how_the_bit_planes_are_weighted(
    baseline, results_dir, tmp_path
):
    """The VAE's class probe at 20 shared bits under the other two weightings (the default,
    group, is in the test above). Claim: with the plain ELBO (pixel) the bits dominate the
    reconstruction and the VAE is suppressed too (<= 0.30: recorded 0.100-0.111 over the six
    runs), so "a VAE suffers much less" depends on the weighting; bit, where each bit counts
    once, protects the class as group does (recorded 0.953-0.964)."""
    runs = runs_to_measure(baseline.update, SPREAD_SEEDS)
    per_run = measure_against_baseline(
        baseline,
        "randbit_vae_weightings",
        "randbit",
        VAE_WEIGHTING_SWEEPS,
        runs,
        _weighting_points,
        min_band=MIN_BAND,
        description=(
            "linear probe test accuracy of the digit class on the VAE's posterior mean at 20 "
            "shared bits, bit planes weighted per bit and per pixel (plain ELBO)"
        ),
        output_dir=str(tmp_path),
        results_dir=results_dir,
    )
    for i, run in enumerate(runs):
        plain = per_run["vae_pixel/bits20/label"][i]
        assert plain <= PLAIN_ELBO_MAX, f"{run.label}: plain-ELBO VAE not suppressed: {plain:.3f}"
