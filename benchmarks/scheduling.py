"""Benchmark files spread over pytest-xdist workers by their recorded seconds.

`--dist loadfile` keeps a benchmark file in one worker (its module fixtures measure once),
but orders the files by their number of tests and hands a worker its next file while it
still has two tests to run: on 2 workers the longest files met in one worker and the other
idled ~110 s at the end (fresh-clone CI at e165aca: 2024 s of work in 1127 s). Here the
files are handed out longest first (recorded seconds, `durations.json`), each to the worker
that reaches its current file's last test first: the longest-processing-time rule, which
the recorded seconds put within ~10 s of an even split on 2 workers. Written by hand:
no maintained plugin orders file scopes by committed durations on a fresh clone (the
slowest-first plugins read the previous run's cache).

A benchmark file that measures some of another's sweeps (`SHARED_RUNS`) goes to the same
worker right after it, as one unit: a worker runs each experiment command once
(`suppression_runs`), so the shared configurations are trained once.
"""

from __future__ import annotations

import collections
import json
import math
import os

from xdist.scheduler import LoadFileScheduling

DURATIONS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durations.json")
# Benchmark file -> the file whose sweeps it measures too (it runs after it: collection order).
SHARED_RUNS = {
    "benchmarks/test_bench_remedies_color_shapes.py": "benchmarks/test_bench_color_shapes.py",
    "benchmarks/test_bench_remedies_digits.py": "benchmarks/test_bench_digit_on_images.py",
    "benchmarks/test_bench_multidigits.py": "benchmarks/test_bench_digit_on_images.py",
}


def load_durations(path: str = DURATIONS_PATH) -> dict[str, float]:
    """{file node id (e.g. `benchmarks/test_bench_randbit.py`): seconds of work}."""
    with open(path, encoding="utf-8") as f:
        return {name: float(seconds) for name, seconds in json.load(f)["seconds"].items()}


class LongestFileFirst(LoadFileScheduling):
    """`--dist loadfile`, the files handed out longest first, one at a time per worker; the
    files of `shared_runs` with the file they share runs with, as one unit.

    A file without recorded seconds counts as the longest (it goes first, so a new
    benchmark cannot end up alone at the end)."""

    def __init__(
        self,
        config,
        log=None,
        durations: dict[str, float] | None = None,
        shared_runs: dict[str, str] | None = None,
    ):
        super().__init__(config, log)
        self.durations = load_durations() if durations is None else durations
        self.shared_runs = SHARED_RUNS if shared_runs is None else shared_runs

    def _split_scope(self, nodeid: str) -> str:
        file = super()._split_scope(nodeid)
        return self.shared_runs.get(file, file)

    def _seconds(self, scope: str) -> float:
        files = [scope, *(f for f, shared in self.shared_runs.items() if shared == scope)]
        return sum(self.durations.get(file, math.inf) for file in files)

    def _assign_work_unit(self, node) -> None:
        longest = max(self.workqueue, key=self._seconds)
        self.workqueue.move_to_end(longest, last=False)
        super()._assign_work_unit(node)

    def _reschedule(self, node) -> None:
        # A worker runs a test once it knows the next one (for fixture teardown), so its
        # next file is sent when one test is left: when it starts that test, no sooner.
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)


class DurationRecorder:
    """Sums each file's setup, call and teardown seconds over a run (on the xdist
    controller, which receives every worker's reports) and updates those files' entries in
    `durations.json`, keeping the others (a run of some files re-records only them)."""

    def __init__(self, path: str = DURATIONS_PATH):
        self.path = path
        self.seconds: collections.Counter[str] = collections.Counter()

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid.split("::", 1)[0]] += report.duration

    def pytest_sessionfinish(self, session) -> None:
        from cl_properties.results import atomic_write_text

        seconds = load_durations(self.path) if os.path.exists(self.path) else {}
        seconds.update({name: round(s, 1) for name, s in self.seconds.items()})
        record = {
            "how": "pytest -n 2 --dist loadfile -m benchmark benchmarks --record-durations",
            "seconds": dict(sorted(seconds.items(), key=lambda item: -item[1])),
        }
        atomic_write_text(self.path, json.dumps(record, indent=2) + "\n")
