"""Preemption: a run killed with SIGKILL mid-training and rerun with the same command ends
bitwise equal to an uninterrupted run; SIGTERM or Ctrl-C stops a run in one line, marks it
interrupted and the same command resumes it; a second run into a running one's folder is
refused.

Both runs are subprocesses of `_resume_driver.py` with TensorFlow op determinism on
(`--deterministic`); on CPU every op of this model then has a deterministic kernel, so the
comparison is exact. The model uses the SWD loss (its random projection is keyed by the
optimizer's step) and LARS with momentum, warmup and cosine decay, so anything of the
optimizer state that failed to resume would change the result. The Mirrored case trains
two replicas on two logical CPUs through the real input pipeline, whose one input pipeline
feeds both replicas: on resume it must skip both replicas' records, or it replays data.
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
    "--deterministic",
)


def command(output_dir: Path, *extra: str) -> list[str]:
    return driver_command(output_dir, output_dir / "final", *RUN_FLAGS, *extra)


def wait_for(paths: list[Path], process: subprocess.Popen, timeout_s: float) -> None:
    """Polls until every path exists; fails if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if process.poll() is not None:
            pytest.fail(
                f"the run exited ({process.returncode}) before writing "
                f"{paths}:\n{process.stdout.read()}"
            )
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
    return subprocess.Popen(
        cmd, env=driver_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags, strategy, per_replica_batch",
    [
        (("--strategy=default",), "default", 8),
        (("--strategy=mirrored", "--logical_cpus=2", "--data=pipeline"), "mirrored", 4),
    ],
    ids=["default", "mirrored_pipeline"],
)
def test_killed_run_resumes_to_the_uninterrupted_result(
    tmp_path, flags, strategy, per_replica_batch
):
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    reference = popen(command(reference_dir, *flags))
    # Held after step 5: checkpoints of steps 2 and 4 are committed, steps 5-6 are not.
    killed = popen(command(run_dir, *flags, "--hold_at_step=5"))
    wait_for([run_dir / "checkpoints" / "ckpt-00000004.json", run_dir / "held"], killed, TIMEOUT_S)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists()

    output = finish(popen(command(run_dir, *flags, "--hold_at_step=5")))  # the same command again
    assert "resuming from step 4" in output
    finish(reference)

    weights, summary = load(run_dir / "final")
    expected_weights, expected = load(reference_dir / "final")
    assert summary["resumed_from_step"] == 4 and expected["resumed_from_step"] == 0
    assert weights.keys() == expected_weights.keys()
    for name in weights:
        np.testing.assert_array_equal(weights[name], expected_weights[name], err_msg=name)
    assert (
        summary["history"] == expected["history"]
    )  # every loop's metrics, before and after the kill
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
    assert results["distribution"]["strategy"] == strategy
    assert results["distribution"]["per_replica_batch"] == per_replica_batch


@pytest.mark.slow
def test_sigterm_and_ctrl_c_stop_in_one_line_and_a_second_run_into_the_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run = command(run_dir, "--strategy=default", "--hold_at_step=5")
    for stop in (signal.SIGTERM, signal.SIGINT):
        if stop == signal.SIGINT:
            (run_dir / "held").unlink()  # hold again
        held = popen(run)  # held after step 5, the checkpoint of step 4 committed
        wait_for(
            [run_dir / "checkpoints" / "ckpt-00000004.json", run_dir / "held"], held, TIMEOUT_S
        )
        if stop == signal.SIGTERM:  # meanwhile the folder is the held run's alone
            second = subprocess.run(
                command(run_dir, "--strategy=default"),
                env=driver_env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            assert second.returncode == 2, second.stderr
            assert (
                f"error: output folder {run_dir} is in use by another run (pid {held.pid})"
                in second.stderr
            )
            assert "Traceback" not in second.stderr
        held.send_signal(stop)
        output, _ = held.communicate(timeout=TIMEOUT_S)
        assert held.returncode == 128 + stop, output
        assert "Traceback" not in output
        assert output.splitlines()[-1] == (
            "interrupted at step 5 of 8; the last good checkpoint, step 4, is kept in "
            f"{run_dir}/checkpoints; "
            "rerun the same command to resume"
        )
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "interrupted" and "interrupted at step 5" in results["error"]
    output = finish(popen(run))  # finds `held`: trains through
    assert "resuming from step 4" in output
    assert json.loads((run_dir / "results.json").read_text())["status"] == "completed"
