"""Tolerance bands sized by the seed-to-seed spread, shared by the scientific benchmarks.

A comparing run (CI) measures seed 0 only: a run is deterministic given its seed, so the
stored seed-0 curve is what it must reproduce, within a band that allows for platform and
library drift. Re-recording (`--update-baselines`) also runs the spread seeds and sets each
point's band to SPREAD_FACTOR x its range over the seeds, at least a floor: a point that is
stable across seeds gets a tight band, an unstable one a wide band. The factor allows for a
few seeds underestimating the range.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

SPREAD_FACTOR = 1.5


def seeds_to_run(update: bool, spread_seeds: Sequence[int]) -> tuple[int, ...]:
    """All of `spread_seeds` when recording a baseline, else only the first (the recorded one)."""
    return tuple(spread_seeds) if update else tuple(spread_seeds[:1])


def spread_bands(per_seed: Mapping[str, Sequence[float]], min_band: float) -> dict[str, float]:
    """Per point: max(min_band, SPREAD_FACTOR x (max - min over the seeds)), rounded to 1e-3."""
    return {key: round(max(min_band, SPREAD_FACTOR * (max(v) - min(v))), 3) for key, v in per_seed.items()}


def band_rule(min_band: float, spread_seeds: Sequence[int]) -> str:
    """`spread_bands`' rule in words, stored with a baseline."""
    return f"max({min_band}, {SPREAD_FACTOR} x (max - min over seeds {tuple(spread_seeds)}))"
