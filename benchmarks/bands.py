"""Tolerance bands that cover seed-to-seed and machine-to-machine variation, shared by the
scientific benchmarks.

A comparing run (CI) measures seed 0 on whichever machine it gets. Training is
deterministic on one machine, but another CPU runs other kernels (oneDNN picks AVX-512, AMX
or AVX2 code by the CPU; Eigen blocks its loops by the cache sizes), whose float rounding
training amplifies: RandBit's class probe at 10 bits measured 0.358 here and 0.400 on
another machine of the same kind, more than the spread over three seeds here (one thread
per op instead of two gave 0.419 here; all before NT-Xent was computed per anchor). So
recording (`--update-baselines`) emulates other machines on this one by forcing other kernels
(`NUMERICS`, environment variables TensorFlow reads at start-up): it measures every spread
seed with the machine's own kernels and seed 0 with each other kernel set, asserts the
claims for every one of these runs, and sets each point's band to max(floor, SPREAD_FACTOR
x its range over all of them). A comparing run measures only seed 0 (a
benchmark whose claim averages seeds measures all of them) with its machine's own kernels.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

# Kernel sets a run can be forced to, by the environment variables that select them.
NUMERICS: dict[str, dict[str, str]] = {
    "native": {},  # what this CPU gets by default
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},  # oneDNN as on a CPU without AVX-512
    "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},  # TensorFlow's own (Eigen) kernels, no oneDNN
    # One thread per op: other work splits, hence other summation orders (as other cores give).
    "one_thread": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
}
# The range of a handful of runs underestimates the spread of all machines and seeds.
SPREAD_FACTOR = 2.0
# The studies' fitness rule (issue 12), which every study's testbed must pass before its claims
# mean anything: the upper reference >= FIT_REFERENCE and the contrastive probe >= FIT_GAP above
# the random-init floor, in the unsuppressed condition.
FIT_REFERENCE, FIT_GAP = 0.90, 0.25


@dataclasses.dataclass(frozen=True)
class Run:
    """One measurement of a benchmark: a seed and the kernels it runs with."""

    seed: int
    numerics: str = "native"

    def __post_init__(self):
        if self.numerics not in NUMERICS:
            raise ValueError(f"numerics must be one of {sorted(NUMERICS)}, got {self.numerics!r}")

    @property
    def label(self) -> str:
        return f"seed{self.seed}" + ("" if self.numerics == "native" else f"_{self.numerics}")

    def env(self) -> dict[str, str]:
        """The environment of a process measuring this run."""
        return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **NUMERICS[self.numerics]}


def runs_to_measure(
    update: bool, seeds: Sequence[int], *, every_seed: bool = False
) -> tuple[Run, ...]:
    """Comparing: seed `seeds[0]` (every seed with `every_seed`) with the native kernels.
    Recording: every seed with the native kernels, then the first seed (every seed with
    `every_seed`) with each other kernel set."""
    if not update:
        return tuple(Run(s) for s in (seeds if every_seed else seeds[:1]))
    varied = seeds if every_seed else seeds[:1]
    return (
        *(Run(s) for s in seeds),
        *(Run(s, n) for n in NUMERICS if n != "native" for s in varied),
    )


def spread_bands(per_run: Mapping[str, Sequence[float]], min_band: float) -> dict[str, float]:
    """Per point: max(min_band, SPREAD_FACTOR x (max - min over the runs)), rounded to 1e-3."""
    return {
        key: round(max(min_band, SPREAD_FACTOR * (max(v) - min(v))), 3)
        for key, v in per_run.items()
    }


def band_rule(min_band: float, runs: Sequence[Run]) -> str:
    """`spread_bands`' rule in words, stored with a baseline."""
    return f"max({min_band}, {SPREAD_FACTOR} x (max - min over runs {[r.label for r in runs]}))"


def record_extra(
    runs: Sequence[Run], min_band: float, per_run: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """What a baseline stores beside its points: the runs, the band rule, every run's values."""
    return {
        "runs": [r.label for r in runs],
        "band_rule": band_rule(min_band, runs),
        "per_run": dict(per_run),
    }


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def call_in(run: Run, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` measured with `run`'s kernels: here for the native ones, else in a
    fresh process started with their environment (TensorFlow reads it when it starts).
    `function` must be importable by name (a module-level function)."""
    if run.numerics == "native":
        return function(*args)
    # A spawned process starts from the environment of the moment it is started (on submit).
    with _environment(run.env()):
        with concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            return pool.submit(function, *args).result()
