"""The developer scripts in benchmarks/ run: the accelerator check at toy sizes (--tiny, as
CI cannot lend it a GPU) and the per-phase profile of a RandBit configuration."""

import os
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
