"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 (TF_CONFIG, ports
chosen at run time) completes a short run on both workers and matches a single-process run
on the same global batches (SWD loss over the gathered batch, global BN); a worker whose peer
never starts stops after --multi_worker_timeout, naming it, and SIGTERM stops it meanwhile.

The workers sum gradients and BatchNorm moments across processes in another order than one
process does, and four momentum-SGD steps at lr 0.5 amplify that float32 round-off: the
weights, which move by 1e-2 to 1e-1, agree within 1e-4 (measured: 2e-5), the logged
metrics within 1e-5 (measured: 3e-6).
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from _tiny_data import driver_command, driver_env

TIMEOUT_S = 240
WEIGHT_ATOL = 1e-4
METRIC_ATOL = 1e-5
RUN_FLAGS = ("--optimizer=sgd", "--learning_rate=0.5", "--train_steps=4", "--global_bn")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(output_dir: Path, out: Path, strategy: str, tf_config: dict | None) -> subprocess.Popen:
    env = driver_env(None if tf_config is None else json.dumps(tf_config))
    command = driver_command(output_dir, out, f"--strategy={strategy}", *RUN_FLAGS)
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish_all(processes: list[subprocess.Popen]) -> list[str]:
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"a run did not finish within {TIMEOUT_S} s")
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    return outputs


def load(prefix: Path) -> tuple[list[np.ndarray], dict]:
    with np.load(f"{prefix}.npz") as f:
        weights = [f[k] for k in sorted(f.files)]
    return weights, json.loads(Path(f"{prefix}.json").read_text())


@pytest.mark.slow
def test_two_workers_match_one_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    shared = tmp_path / "shared"  # both workers' model_dir, as on a shared file system
    processes = [
        start(
            shared,
            tmp_path / "multi",
            "multi_worker",
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}},
        )
        for i in range(2)
    ]
    processes.append(start(tmp_path / "single", tmp_path / "single", "default", None))
    outputs = finish_all(processes)
    assert "strategy multi_worker" in outputs[0] and "2 replica(s) on 2 worker(s)" in outputs[0]

    chief_weights, chief = load(tmp_path / "multi")
    other_weights, other = load(tmp_path / "multi.task1")
    single_weights, single = load(tmp_path / "single")
    assert chief["distribution"]["strategy"] == "multi_worker"
    assert (chief["distribution"]["replicas"], chief["distribution"]["workers"]) == (2, 2)
    assert chief["distribution"]["per_replica_batch"] == 4
    for a, b in zip(chief_weights, other_weights):  # the replicas stay in sync
        np.testing.assert_array_equal(a, b)
    assert chief["history"] == other["history"]
    assert len(chief_weights) == len(single_weights)
    for a, b in zip(chief_weights, single_weights):
        np.testing.assert_allclose(a, b, atol=WEIGHT_ATOL, rtol=0)
    for name, values in single["history"].items():
        np.testing.assert_allclose(
            chief["history"][name], values, atol=METRIC_ATOL, rtol=0, err_msg=name
        )
    # Only the chief wrote the shared checkpoints, results and history.
    assert sorted(os.listdir(shared / "checkpoints")) == [
        "ckpt-00000002.json",
        "ckpt-00000002.weights.h5",
        "ckpt-00000004.json",
        "ckpt-00000004.weights.h5",
    ]
    assert json.loads((shared / "results.json").read_text())["distribution"]["workers"] == 2


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_stops_after_the_timeout_naming_it(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    cluster = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}
    env = driver_env(json.dumps(cluster))
    lonely = subprocess.run(
        driver_command(
            tmp_path,
            tmp_path / "out",
            "--strategy=multi_worker",
            "--multi_worker_timeout=3",
            *RUN_FLAGS,
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert lonely.returncode == -signal.SIGKILL, lonely.stderr[-3000:]  # exit status 137 in a shell
    errors = [line for line in lonely.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: multi-worker strategy: no connection to worker(s) {workers[1]} after 3 s "
        "(--multi_worker_timeout); "
        "start every task of TF_CONFIG's cluster, or fix its addresses"
    ], lonely.stderr[-3000:]
    assert not (tmp_path / "results.json").exists()

    # SIGTERM to its process group (as systemd, Slurm or Ctrl-C's SIGINT) stops it while it waits.
    waiting = subprocess.Popen(
        driver_command(tmp_path, tmp_path / "out", "--strategy=multi_worker", *RUN_FLAGS),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not _accepts(workers[0]):  # its server is up: it is waiting for the peer
            assert waiting.poll() is None and time.monotonic() < deadline, (
                "worker 0 never started its server"
            )
            time.sleep(0.2)
        started = time.monotonic()
        os.killpg(waiting.pid, signal.SIGTERM)
        _, err = waiting.communicate(timeout=30)
        assert waiting.returncode == -signal.SIGKILL and time.monotonic() - started < 10
        assert (
            "error: multi-worker strategy: stopped by SIGTERM while waiting for worker(s) "
            f"{workers[1]}" in err
        )
    finally:
        waiting.kill()
