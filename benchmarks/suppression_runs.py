"""Runs a feature-suppression experiment as its users do (`python -m ...` with the embedded
defaults, a sweep restricted by flags) for the benchmarks, and reads its rows back."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from cl_properties.results import read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_experiment(
    experiment: str, args: Sequence[str], output_dir: str, results_dir: str, tag: str
) -> tuple[list[dict[str, Any]], str]:
    """Runs `python -m cl_properties.experiments.<experiment> <args> --output_dir=...`, prints
    its table and timing, copies its plot to `results_dir/<tag>.png`; returns (rows, command)."""
    command = [sys.executable, "-m", f"cl_properties.experiments.{experiment}", *args]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, f"--output_dir={output_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=3600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if result.returncode:
        pytest.fail(f"{experiment} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    print(f"\n$ {shlex.join(command[1:])}   ({time.perf_counter() - started:.0f} s)\n{result.stdout}")
    shutil.copyfile(os.path.join(output_dir, f"{experiment}.png"), os.path.join(results_dir, f"{tag}.png"))
    return read_results(output_dir)["rows"], shlex.join(["python", *command[1:]])


def point(rows: Sequence[Mapping[str, Any]], column: str, **where: Any) -> float:
    """rows[column] of the one row matching `where` (e.g. bits=10, model="vae")."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        pytest.fail(f"expected one row with {where}, found {len(found)}")
    return float(found[0][column])
