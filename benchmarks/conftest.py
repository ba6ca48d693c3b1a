"""The scientific benchmark suite: measured curves compared with recorded baselines.

Each benchmark measures a curve (a dict of named points), prints it, writes it to
`benchmarks/results/<name>.csv`, and compares it with `benchmarks/baselines/<name>.json`
inside the baseline's tolerance band. `pytest benchmarks --update-baselines` re-records
the baselines instead of comparing (the qualitative claims are still asserted).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping

import pytest

from cl_properties.results import atomic_write_text, code_version, package_versions

BENCHMARK_DIR = os.path.dirname(os.path.abspath(__file__))
BASELINE_DIR = os.path.join(BENCHMARK_DIR, "baselines")
RESULTS_DIR = os.environ.get(
    "CL_PROPERTIES_BENCHMARK_RESULTS", os.path.join(BENCHMARK_DIR, "results")
)


def pytest_addoption(parser):
    parser.addoption(
        "--update-baselines",
        action="store_true",
        default=False,
        help="re-record benchmarks/baselines/*.json from this run instead of comparing",
    )
    parser.addoption(
        "--record-durations",
        action="store_true",
        default=False,
        help="write each benchmark file's seconds in this run to benchmarks/durations.json, "
        "the order in which `--dist loadfile` hands the files out",
    )


def pytest_configure(config):
    if config.getoption("--record-durations") and not hasattr(config, "workerinput"):
        import scheduling

        config.pluginmanager.register(scheduling.DurationRecorder(), "benchmark-durations")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without xdist
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`: the benchmark files longest first (`scheduling.LongestFileFirst`)."""
    if config.getoption("dist") != "loadfile":
        return None
    import scheduling

    return scheduling.LongestFileFirst(config, log)


class Baseline:
    """Compares a measured curve with its recorded baseline, or records it."""

    def __init__(self, update: bool):
        self.update = update

    def check(
        self,
        name: str,
        points: Mapping[str, float],
        *,
        tolerance: float | Mapping[str, float],
        description: str,
        command: str,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Prints and saves `points`; fails if any leaves `baseline +- tolerance`.

        `tolerance` is absolute (probe accuracies are in [0, 1]): one band for every point,
        or a band per point (a mapping with the same keys as `points`, for curves whose
        points differ in seed-to-seed spread); it is stored with the baseline when
        recording, and the stored band is used when comparing. `extra` (JSON-serializable,
        e.g. the per-seed values that justify the bands) is stored with a recorded baseline.
        """
        points = {k: float(v) for k, v in points.items()}
        if isinstance(tolerance, Mapping):
            tolerance = {k: float(v) for k, v in tolerance.items()}
            if set(tolerance) != set(points):
                raise ValueError(
                    f"{name}: per-point tolerances {sorted(tolerance)} must match the points "
                    f"{sorted(points)}"
                )
        print(f"\n[{name}] {description}")
        for key, value in points.items():
            print(f"  {key:>40s}  {value:.4f}")
        lines = ["point,value"] + [f"{k},{v:.6f}" for k, v in points.items()]
        atomic_write_text(os.path.join(RESULTS_DIR, f"{name}.csv"), "\n".join(lines) + "\n")
        if self.update:
            record = {
                "name": name,
                "description": description,
                "how": f"recorded by `pytest benchmarks --update-baselines` ({command})",
                "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
                # "-dirty" marks a baseline recorded from uncommitted changes.
                "git_commit": code_version(os.path.dirname(BENCHMARK_DIR)) or "unknown",
                "versions": package_versions(),
                "tolerance": tolerance,
                "points": points,
            }
            if extra:
                record["extra"] = dict(extra)
            atomic_write_text(_baseline_path(name), json.dumps(record, indent=2) + "\n")
            return
        record = self._recorded(name)
        bands = record["tolerance"]
        if not isinstance(bands, Mapping):
            bands = dict.fromkeys(record["points"], float(bands))
        missing = sorted(set(record["points"]) - set(points))
        if missing:
            pytest.fail(f"{name}: points {missing} in the baseline were not measured")
        outside = [
            f"{key}: measured {points[key]:.4f}, baseline {expected:.4f} +- {bands[key]}"
            for key, expected in record["points"].items()
            if abs(points[key] - expected) > bands[key]
        ]
        if outside:
            pytest.fail(f"{name}: points left the baseline band:\n  " + "\n  ".join(outside))

    def recorded_runs(self, name: str) -> tuple[list[str], dict[str, list[float]]]:
        """The runs of the recorded baseline `name` and each point's value per run (its
        `extra`, `bands.record_extra`): the seeds and kernels that a comparing run, which
        measures seed 0 alone, cannot see."""
        extra = self._recorded(name)["extra"]
        return extra["runs"], extra["per_run"]

    @staticmethod
    def _recorded(name: str) -> dict:
        path = _baseline_path(name)
        if not os.path.exists(path):
            pytest.fail(
                f"no baseline {path}; record one with `pytest benchmarks --update-baselines`"
            )
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def _baseline_path(name: str) -> str:
    return os.path.join(BASELINE_DIR, f"{name}.json")


@pytest.fixture(scope="session")  # stateless, so module fixtures that measure once can use it
def baseline(request) -> Baseline:
    return Baseline(update=request.config.getoption("--update-baselines"))


@pytest.fixture(scope="session")
def results_dir() -> str:
    """The folder (created) where benchmarks write their curves: `<name>.csv` from
    `baseline.check`, and plots such as `<name>.png` next to them."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    return RESULTS_DIR
