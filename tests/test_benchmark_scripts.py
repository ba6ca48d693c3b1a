"""The developer scripts in benchmarks/ run: the accelerator check at toy sizes (--tiny, as
CI cannot lend it a GPU) and the per-phase profile of a RandBit configuration."""

import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_device_check_tiny_prints_every_check(tmp_path):
    result = _run("benchmarks/device_check.py", "--tiny", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout.split("summary")[1].splitlines()[2:]
    # 2 losses x 2 batches, 2 precisions x 2 XLA modes, the pipeline: all measured.
    assert len(summary) == 9 and not any("failed" in line or "skipped" in line for line in summary)
    assert sum("train step" in line for line in summary) == 4
    assert "mixed_bfloat16" in result.stdout and "vs_best_step" in result.stdout
    assert os.path.exists(tmp_path / "results.json")


def test_device_check_budget_skips_the_rest_but_prints_the_table():
    result = _run("benchmarks/device_check.py", "--tiny", "--budget_s=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("skipped: budget 0 s spent") >= 9


def test_profile_randbit_reports_every_phase():
    result = _run("benchmarks/profile_randbit.py", "--steps=2", "--linear_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    for phase in ("process start-up", "dataset build", "first loop", "linear probe", "kNN"):
        assert phase in result.stdout
    assert "total (wall)" in result.stdout


def _benchmark_conftest():
    spec = importlib.util.spec_from_file_location(
        "benchmark_conftest", os.path.join(ROOT, "benchmarks", "conftest.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_modules_are_split_among_workers_by_their_seconds():
    conftest = _benchmark_conftest()
    modules = sorted(
        f for f in os.listdir(os.path.join(ROOT, "benchmarks")) if f.startswith("test_")
    )
    assert sorted(conftest.MODULE_SECONDS) == modules  # every benchmark module has its weight
    partition = conftest.worker_partition(modules, 2)
    loads = [sum(conftest.MODULE_SECONDS[m] for m in modules if partition[m] == w) for w in (0, 1)]
    # Longest first onto the least loaded: within the longest module of the perfect split.
    assert abs(loads[0] - loads[1]) <= max(conftest.MODULE_SECONDS.values())
    assert partition == conftest.worker_partition(list(reversed(modules)), 2)  # order-free
    unknown = conftest.worker_partition(["test_new.py", *modules], 3)
    assert set(unknown.values()) == {0, 1, 2}


class _Item:
    def __init__(self, module: str):
        self.path = pathlib.Path("benchmarks", module)
        self.marks = []

    def add_marker(self, mark):
        self.marks.append(mark)


def test_each_worker_of_xdist_gets_one_group(monkeypatch):
    conftest = _benchmark_conftest()
    items = [_Item(m) for m in ("test_bench_randbit.py", "test_bench_randbit.py", "test_x.py")]
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    conftest.pytest_collection_modifyitems(None, items)  # not under xdist: no groups
    assert not any(item.marks for item in items)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    conftest.pytest_collection_modifyitems(None, items)
    groups = [[(m.name, m.args) for m in item.marks] for item in items]
    assert groups[0] == groups[1] == [("xdist_group", ("worker0",))]  # a module stays together
    assert groups[2] == [("xdist_group", ("worker1",))]
