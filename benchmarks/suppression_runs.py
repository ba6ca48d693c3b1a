"""Runs a feature-suppression experiment as its users do (`python -m ...` with the embedded
defaults, a sweep restricted by flags) for the benchmarks, and reads its rows back; per run
(`measure`: a seed and the kernels, see `bands`), so that re-recording a baseline sizes its
bands by the spread over seeds and machines.

A process runs each command once per run: a benchmark file that measures the same sweep as
another (the remedies on a testbed reuse the testbed study's contrastive model and floor)
reads its rows when `scheduling.SHARED_RUNS` puts the two files in one worker."""

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

from bands import Run, record_extra, runs_to_measure, spread_bands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (experiment, arguments, run) -> (rows, command, output folder) of this process's runs.
_FINISHED: dict[tuple[str, tuple[str, ...], Run], tuple[list[dict[str, Any]], str, str]] = {}


def run_experiment(
    experiment: str,
    args: Sequence[str],
    output_dir: str,
    results_dir: str | None,
    tag: str,
    run: Run,
) -> tuple[list[dict[str, Any]], str]:
    """Runs `python -m cl_properties.experiments.<experiment> <args> --seed=<run's>
    --output_dir=...` with `run`'s kernels (once per process: a repeat returns the first
    run's rows), prints its table and timing, copies its plot to `results_dir/<tag>.png`
    (unless results_dir is None); returns (rows, command)."""
    key = (experiment, tuple(args), run)
    if key in _FINISHED:
        rows, command, output_dir = _FINISHED[key]
        print(f"\n$ {command}   ({run.label}: measured earlier in this process)")
    else:
        rows, command = _run_experiment(experiment, args, output_dir, run)
        _FINISHED[key] = rows, command, output_dir
    if results_dir is not None:
        shutil.copyfile(
            os.path.join(output_dir, f"{experiment}.png"), os.path.join(results_dir, f"{tag}.png")
        )
    return rows, command


def _run_experiment(
    experiment: str, args: Sequence[str], output_dir: str, run: Run
) -> tuple[list[dict[str, Any]], str]:
    command = [
        sys.executable,
        "-m",
        f"cl_properties.experiments.{experiment}",
        *args,
        f"--seed={run.seed}",
    ]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, f"--output_dir={output_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        env=run.env(),
    )
    if result.returncode:
        pytest.fail(
            f"{experiment} ({run.label}) failed (exit "
            f"{result.returncode}):\n{result.stderr[-4000:]}"
        )
    elapsed = time.perf_counter() - started
    print(f"\n$ {shlex.join(command[1:])}   ({run.label}, {elapsed:.0f} s)\n{result.stdout}")
    return read_results(output_dir)["rows"], shlex.join(["python", *command[1:]])


def measure(
    experiment: str | Mapping[str, str],
    sweeps: Mapping[str, Sequence[str]],
    runs: Sequence[Run],
    points_of: Callable[[list[dict[str, Any]]], dict[str, float]],
    output_dir: str,
    results_dir: str,
) -> tuple[dict[str, list[float]], str]:
    """Runs every entry of `sweeps` (plot tag -> experiment arguments) of `experiment` (or
    of `experiment[tag]`) for each run and maps the rows of all sweeps of a run to points
    with `points_of` (each row with its "sweep": the tag); returns ({point: [value per run,
    in `runs` order]}, the first run's commands). Plots are kept for the first run."""
    per_run: dict[str, list[float]] = {}
    commands = []
    for run in runs:
        rows = []
        first = run == runs[0]
        for tag, args in sweeps.items():
            found, command = run_experiment(
                experiment if isinstance(experiment, str) else experiment[tag],
                args,
                os.path.join(output_dir, f"{tag}_{run.label}"),
                results_dir if first else None,
                tag,
                run,
            )
            rows += [{**row, "sweep": tag} for row in found]  # the sweep that measured it
            if first:
                commands.append(command)
        for key, value in points_of(rows).items():
            per_run.setdefault(key, []).append(value)
    if len(runs) > 1:
        print(f"\nper run {[r.label for r in runs]}:")
        for key, values in per_run.items():
            print(f"  {key:>28s}  " + "  ".join(f"{v:.4f}" for v in values))
    return per_run, " ; ".join(commands)


def measure_against_baseline(
    baseline: Any,
    name: str,
    experiment: str | Mapping[str, str],
    sweeps: Mapping[str, Sequence[str]],
    runs: Sequence[Run],
    points_of: Callable[[list[dict[str, Any]]], dict[str, float]],
    *,
    min_band: float,
    description: str,
    output_dir: str,
    results_dir: str,
) -> dict[str, list[float]]:
    """`measure`, then `baseline.check(name, ...)` of the first run's points with bands sized
    by the spread over `runs` (`spread_bands`, at least `min_band`) and every run's values
    recorded; returns {point: [value per run]} for the claims."""
    per_run, command = measure(experiment, sweeps, runs, points_of, output_dir, results_dir)
    baseline.check(
        name,
        {key: values[0] for key, values in per_run.items()},
        tolerance=spread_bands(per_run, min_band),
        description=description,
        command=command,
        extra=record_extra(runs, min_band, per_run),
    )
    return per_run


def measured_fixture(
    name: str,
    experiment: str | Mapping[str, str],
    sweeps: Mapping[str, Sequence[str]],
    points_of: Callable[[list[dict[str, Any]]], dict[str, float]],
    *,
    spread_seeds: Sequence[int],
    min_band: float,
    description: str,
) -> Any:
    """A module-scoped fixture `measured`: (runs, {point: [value per run]}) of
    `measure_against_baseline` over the runs to measure (seed 0 when comparing; every spread
    seed and kernel set when recording), for benchmarks whose claims are separate tests."""

    @pytest.fixture(scope="module")
    def measured(
        baseline, results_dir, tmp_path_factory
    ) -> tuple[tuple[Run, ...], dict[str, list[float]]]:
        runs = runs_to_measure(baseline.update, spread_seeds)
        per_run = measure_against_baseline(
            baseline,
            name,
            experiment,
            sweeps,
            runs,
            points_of,
            min_band=min_band,
            description=description,
            output_dir=str(tmp_path_factory.mktemp(name)),
            results_dir=results_dir,
        )
        return runs, per_run

    return measured


def point(rows: Sequence[Mapping[str, Any]], column: str, **where: Any) -> float:
    """rows[column] of the one row matching `where` (e.g. bits=10, model="vae")."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        pytest.fail(f"expected one row with {where}, found {len(found)}")
    return float(found[0][column])
