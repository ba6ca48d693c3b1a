"""The benchmarks' xdist scheduler hands files out longest first, one at a time per worker."""

import types

import _benchmark_modules
from _benchmark_modules import ROOT


def _scheduling():
    return _benchmark_modules.load("scheduling")


class _Worker:
    """What the scheduler sees of an xdist worker: the test indices it is sent."""

    def __init__(self, name: str):
        self.name = name
        self.gateway = types.SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices):
        self.sent.extend(indices)

    def shutdown(self):
        self.shutting_down = True


def _config(workers: int):
    return types.SimpleNamespace(
        getvalue=lambda name: [f"{workers}*popen"],
        option=types.SimpleNamespace(loadscopereorder=True),
    )


def _simulate(
    seconds_per_test: dict[str, list[float]],
    durations: dict[str, float],
    shared_runs: dict[str, str] | None = None,
):
    """Runs the files' tests on two simulated workers; returns ({worker: [files in order]},
    the time the last worker finished)."""
    scheduling = _scheduling()
    collection = [
        f"{f}::test_{i}" for f, tests in seconds_per_test.items() for i in range(len(tests))
    ]
    seconds = {
        f"{f}::test_{i}": s for f, tests in seconds_per_test.items() for i, s in enumerate(tests)
    }
    scheduler = scheduling.LongestFileFirst(
        _config(2), durations=durations, shared_runs=shared_runs or {}
    )
    workers = [_Worker("a"), _Worker("b")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    clock = {worker: 0.0 for worker in workers}
    done = {worker: 0 for worker in workers}
    files = {worker: [] for worker in workers}
    while True:
        # A worker runs a sent test once it knows the next one, or is told to stop.
        ready = [
            w
            for w in workers
            if len(w.sent) > done[w] + 1 or (len(w.sent) > done[w] and w.shutting_down)
        ]
        if not ready:
            break
        # The next event: the test that ends first.
        worker = min(ready, key=lambda w: clock[w] + seconds[collection[w.sent[done[w]]]])
        nodeid = collection[worker.sent[done[worker]]]
        clock[worker] += seconds[nodeid]
        done[worker] += 1
        file = nodeid.split("::")[0]
        if not files[worker] or files[worker][-1] != file:
            files[worker].append(file)
        scheduler.mark_test_complete(worker, worker.sent[done[worker] - 1])
    assert sum(done.values()) == len(collection)
    return {w.name: files[w] for w in workers}, max(clock.values())


def test_files_go_longest_first_to_the_worker_that_is_free():
    # Like the benchmarks: a file's first test measures, the others read its fixture.
    tests = {
        "e.py": [25.0, 5.0],
        "mid.py": [180.0, 20.0],
        "d.py": [60.0, 10.0],
        "long.py": [280.0, 20.0],
        "c.py": [110.0, 5.0, 5.0],
    }
    durations = {name: sum(s) for name, s in tests.items()}
    order, end = _simulate(tests, durations)
    # mid.py's first test ends first (180 s): c.py, the longest left, goes there; long.py's
    # (280 s) then takes d.py, and c.py's (310 s) e.py.
    assert order == {"a": ["long.py", "d.py"], "b": ["mid.py", "c.py", "e.py"]}
    assert end == 370.0  # 720 s of work: 360 s is an even split


def test_a_file_without_recorded_seconds_goes_first():
    tests = {"known.py": [100.0, 100.0], "new.py": [1.0, 1.0], "other.py": [50.0, 50.0]}
    order, _ = _simulate(tests, {"known.py": 200.0, "other.py": 100.0})
    assert order["a"][0] == "new.py"


def test_files_that_share_runs_go_to_one_worker_one_after_the_other():
    tests = {
        "a.py": [50.0, 5.0],
        "b.py": [100.0, 10.0],
        "c.py": [80.0, 10.0],
        "d_remedies.py": [40.0, 5.0],
        "e.py": [20.0, 1.0],
    }
    durations = {name: sum(s) for name, s in tests.items()}
    order, end = _simulate(tests, durations, shared_runs={"d_remedies.py": "a.py"})
    # a.py with d_remedies.py (100 s together) is one unit, handed out after b.py (110 s)
    # and before c.py (90 s), which goes to the worker that starts its last test first.
    assert order == {"a": ["b.py", "e.py"], "b": ["a.py", "d_remedies.py", "c.py"]}
    assert end == 190.0


def test_the_files_sharing_runs_are_benchmark_files():
    scheduling = _scheduling()
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("test_bench_*.py")}
    assert set(scheduling.SHARED_RUNS) | set(scheduling.SHARED_RUNS.values()) <= files
    # One level: a file shares with a file that shares with none.
    assert not set(scheduling.SHARED_RUNS.values()) & set(scheduling.SHARED_RUNS)


def test_the_recorded_durations_name_every_benchmark_file():
    durations = _scheduling().load_durations()
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("test_bench_*.py")}
    assert set(durations) == files, "re-record with pytest ... benchmarks --record-durations"
    assert all(seconds > 0 for seconds in durations.values())


def test_recording_updates_the_files_that_ran_and_keeps_the_others(tmp_path):
    scheduling = _scheduling()
    path = tmp_path / "durations.json"
    path.write_text('{"seconds": {"a.py": 10.0, "b.py": 20.0}}')
    recorder = scheduling.DurationRecorder(str(path))
    for nodeid, seconds in [("b.py::test_x", 3.0), ("b.py::test_y", 4.5), ("c.py::test_z", 1.0)]:
        recorder.pytest_runtest_logreport(types.SimpleNamespace(nodeid=nodeid, duration=seconds))
    recorder.pytest_sessionfinish(session=None)
    assert scheduling.load_durations(str(path)) == {"a.py": 10.0, "b.py": 7.5, "c.py": 1.0}
