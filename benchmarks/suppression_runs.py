"""Runs a feature-suppression experiment as its users do (`python -m ...` with the embedded
defaults, a sweep restricted by flags) for the benchmarks, and reads its rows back; per seed
(`measure`), so that re-recording a baseline sizes its bands by the seed-to-seed spread."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from cl_properties.results import read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_experiment(
    experiment: str, args: Sequence[str], output_dir: str, results_dir: str | None, tag: str
) -> tuple[list[dict[str, Any]], str]:
    """Runs `python -m cl_properties.experiments.<experiment> <args> --output_dir=...`, prints
    its table and timing, copies its plot to `results_dir/<tag>.png` (unless results_dir is
    None); returns (rows, command)."""
    command = [sys.executable, "-m", f"cl_properties.experiments.{experiment}", *args]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, f"--output_dir={output_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=3600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if result.returncode:
        pytest.fail(f"{experiment} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    print(f"\n$ {shlex.join(command[1:])}   ({time.perf_counter() - started:.0f} s)\n{result.stdout}")
    if results_dir is not None:
        shutil.copyfile(os.path.join(output_dir, f"{experiment}.png"), os.path.join(results_dir, f"{tag}.png"))
    return read_results(output_dir)["rows"], shlex.join(["python", *command[1:]])


def measure(
    experiment: str,
    runs: Mapping[str, Sequence[str]],
    seeds: Sequence[int],
    points_of: Callable[[list[dict[str, Any]]], dict[str, float]],
    output_dir: str,
    results_dir: str,
) -> tuple[dict[str, list[float]], str]:
    """Runs every entry of `runs` (plot tag -> experiment arguments) with each seed and maps
    the rows of all runs of a seed to points with `points_of`; returns ({point: [value per
    seed, in `seeds` order]}, the first seed's commands). Plots are kept for the first seed."""
    per_seed: dict[str, list[float]] = {}
    commands = []
    for seed in seeds:
        rows = []
        for tag, args in runs.items():
            found, command = run_experiment(
                experiment, [*args, f"--seed={seed}"], os.path.join(output_dir, f"{tag}_seed{seed}"),
                results_dir if seed == seeds[0] else None, tag,
            )
            rows += found
            if seed == seeds[0]:
                commands.append(command)
        for key, value in points_of(rows).items():
            per_seed.setdefault(key, []).append(value)
    if len(seeds) > 1:
        print(f"\nper seed {list(seeds)}:")
        for key, values in per_seed.items():
            print(f"  {key:>28s}  " + "  ".join(f"{v:.4f}" for v in values))
    return per_seed, " ; ".join(commands)


def point(rows: Sequence[Mapping[str, Any]], column: str, **where: Any) -> float:
    """rows[column] of the one row matching `where` (e.g. bits=10, model="vae")."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        pytest.fail(f"expected one row with {where}, found {len(found)}")
    return float(found[0][column])
