"""RandBit (paper section 4, Figure 5a) on the offline digits, with the embedded defaults.

Runs `python -m cl_properties.experiments.randbit` as shipped (ConvN, head 256 -> 64, Adam
1e-3 with polynomial decay, batch 256, 300 steps), restricted to what the claims need:

- contrastive, tau 0.1, bits 0 / 5 / 10 / 20;
- per-view bits (the control), tau 0.1, 20 bits;
- the VAE (same encoder, posterior mean probed; bit planes weighted as one group, the
  experiment's default) at 10 and 20 bits.

Claims (paper): the class probe is >= 0.95 without bits, falls strictly with every added
bit count, is <= 0.45 at 10 bits and <= 0.20 at 20 bits; bits that are not shared between
the views (per_view) do not suppress it (>= 0.90 at 20 bits); the VAE is less affected than
the contrastive model (above it at 10 and 20 bits).

The points (probe accuracies) are compared with benchmarks/baselines/randbit.json within
TOLERANCE. Only seed 0 was measured with this code, so the band is not yet calibrated by a
seed-to-seed spread; the issue's earlier calibration of the same setup (0.977 / 0.872 /
0.259 / 0.111 at 0 / 5 / 10 / 20 bits) differs from ours by up to 0.10 (10 bits), so the
band is 0.10 and the 10-bit point is the one most likely to need a wider band.
"""
from __future__ import annotations

import pytest

from suppression_runs import point, run_experiment

TOLERANCE = 0.10
CONTRASTIVE_BITS = (0, 5, 10, 20)
VAE_BITS = (10, 20)
RUNS = {
    "contrastive": ["--bits=0,5,10,20", "--temperatures=0.1", "--models=contrastive"],
    "per_view": ["--bits=20", "--temperatures=0.1", "--models=per_view"],
    "vae": ["--bits=10,20", "--models=vae"],
}


@pytest.mark.benchmark
def test_randbit_bits_suppress_the_class_feature(baseline, results_dir, tmp_path):
    rows, commands = [], []
    for name, args in RUNS.items():
        found, command = run_experiment("randbit", args, str(tmp_path / name), results_dir, f"randbit_{name}")
        rows += found
        commands.append(command)
    points = {f"contrastive/bits{b}/label": point(rows, "linear_label", model="contrastive", bits=b) for b in CONTRASTIVE_BITS}
    points["per_view/bits20/label"] = point(rows, "linear_label", model="per_view", bits=20)
    points.update({f"vae/bits{b}/label": point(rows, "linear_label", model="vae", bits=b) for b in VAE_BITS})
    # How well the representation encodes the bits themselves (reported, not asserted).
    points["contrastive/bits20/bit0"] = point(rows, "linear_bit0", model="contrastive", bits=20)
    points["vae/bits20/bit0"] = point(rows, "linear_bit0", model="vae", bits=20)
    baseline.check(
        "randbit",
        points,
        tolerance=TOLERANCE,
        description=(
            "linear probe test accuracy of the digit class (label) and of the first bit (bit0) on "
            "frozen features: contrastive tau 0.1 vs shared bits, per-view bits, VAE"
        ),
        command=" ; ".join(commands),
    )

    c = {b: points[f"contrastive/bits{b}/label"] for b in CONTRASTIVE_BITS}
    assert c[0] >= 0.95, f"no bits: {c[0]:.3f} < 0.95"
    for fewer, more in zip(CONTRASTIVE_BITS, CONTRASTIVE_BITS[1:]):
        assert c[more] < c[fewer], f"accuracy did not fall from {fewer} to {more} bits: {c}"
    assert c[10] <= 0.45 and c[20] <= 0.20, f"bits did not suppress the class enough: {c}"
    assert points["per_view/bits20/label"] >= 0.90, "unshared (per-view) bits suppressed the class"
    for b in VAE_BITS:
        assert points[f"vae/bits{b}/label"] > c[b], f"VAE not above contrastive at {b} bits"
