"""Preemption: a run killed with SIGKILL mid-training and rerun with the same command ends
bitwise equal to an uninterrupted run.

Both runs are subprocesses of `_resume_driver.py` with TensorFlow op determinism on
(`--deterministic`); on CPU every op of this model then has a deterministic kernel, so the
comparison is exact. The model uses the SWD loss (its random projection is keyed by the
optimizer's step) and LARS with momentum, warmup and cosine decay, so anything of the
optimizer state that failed to resume would change the result.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from _tiny_data import driver_command, driver_env

TIMEOUT_S = 240
RUN_FLAGS = (
    "--optimizer=lars",
    "--learning_rate=1.0",
    "--warmup_fraction=0.25",
    "--train_steps=8",
    "--keep_checkpoints=2",
    "--strategy=default",
    "--deterministic",
)


def command(output_dir: Path, *extra: str) -> list[str]:
    return driver_command(output_dir, output_dir / "final", *RUN_FLAGS, *extra)


def wait_for(paths: list[Path], process: subprocess.Popen, timeout_s: float) -> None:
    """Polls until every path exists; fails if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if process.poll() is not None:
            pytest.fail(f"the run exited ({process.returncode}) before writing {paths}:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out after {timeout_s} s waiting for {paths}")
        time.sleep(0.05)


def finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the run timed out")
    assert process.returncode == 0, output
    return output


def load(prefix: Path) -> tuple[dict, dict]:
    with np.load(f"{prefix}.npz") as f:
        weights = dict(f)
    return weights, json.loads(Path(f"{prefix}.json").read_text())


def popen(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=driver_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    reference = popen(command(reference_dir))
    # Held after step 5: checkpoints of steps 2 and 4 are committed, steps 5-6 are not.
    killed = popen(command(run_dir, "--hold_at_step=5"))
    wait_for([run_dir / "checkpoints" / "ckpt-00000004.json", run_dir / "held"], killed, TIMEOUT_S)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists()

    output = finish(popen(command(run_dir, "--hold_at_step=5")))  # the same command again
    assert "resuming from step 4" in output
    finish(reference)

    weights, summary = load(run_dir / "final")
    expected_weights, expected = load(reference_dir / "final")
    assert summary["resumed_from_step"] == 4 and expected["resumed_from_step"] == 0
    assert weights.keys() == expected_weights.keys()
    for name in weights:
        np.testing.assert_array_equal(weights[name], expected_weights[name], err_msg=name)
    assert summary["history"] == expected["history"]  # every loop's metrics, before and after the kill
    assert summary["final_metrics"] == expected["final_metrics"]
    # The last two checkpoints are kept; nothing partial is left.
    assert sorted(os.listdir(run_dir / "checkpoints")) == [
        "ckpt-00000006.json",
        "ckpt-00000006.weights.h5",
        "ckpt-00000008.json",
        "ckpt-00000008.weights.h5",
    ]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["distribution"]["strategy"] == "default"
    assert results["distribution"]["per_replica_batch"] == 8

