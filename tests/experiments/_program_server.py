"""Run `python -m <program> <args>` as a forked child of a process that has already imported
TensorFlow, Keras and the experiment programs.

Each run is still the program's own `__main__` path (`runpy`) in a process of its own, with
its own flags, environment, working directory, stdout, stderr and exit status, as a user's
`python -m` gives; what it does not pay is the ~3.5 s of imports, which are most of a
bad-input case's time. The server imports without running a TensorFlow op, so the runtime
starts in each child, never in the parent.

    with ProgramServer(env) as server:
        result = server.run("cl_properties.experiments.randbit", ["--bits=-1"], cwd=...)

`env` is the environment the server imports under: variables read at import time
(TF_CPP_MIN_LOG_LEVEL, CUDA_VISIBLE_DEVICES) take effect from it; a run's own `env` replaces
the rest (TF_CONFIG, ...) in its child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

PRELOAD = (
    "tensorflow",
    "keras",
    "cl_properties.experiments.cifar",
    "cl_properties.experiments.imagenet",
    "cl_properties.experiments.randbit",
    "cl_properties.experiments.digit_on_images",
    "cl_properties.experiments.multidigits",
    "cl_properties.experiments.color_shapes",
    "cl_properties.experiments.local_features",
    "cl_properties.experiments.remedies",
    "cl_properties.experiments.sweep",
)


class ProgramServer:
    """A server process per instance; `run` is serial (one child at a time)."""

    def __init__(self, env: Mapping[str, str]):
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env),
            text=True,
        )
        ready = self._process.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the program server did not start: {ready!r}")

    def run(
        self,
        program: str,
        args: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        timeout: float,
    ) -> subprocess.CompletedProcess:
        """The program's exit status, stdout and stderr, as `subprocess.run(...,
        capture_output=True, text=True)` gives them."""
        request = {
            "program": program,
            "args": list(args),
            "cwd": str(cwd),
            "env": dict(env),
            "timeout": timeout,
        }
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the program server exited (status {self._process.wait()})")
        reply = json.loads(line)
        return subprocess.CompletedProcess(
            [sys.executable, "-m", program, *args],
            reply["returncode"],
            reply["stdout"],
            reply["stderr"],
        )

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=60)

    def __enter__(self) -> ProgramServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _child(request: dict, out_path: str, err_path: str) -> None:
    """Runs in the forked child and never returns: the program's exit unwinds to the
    interpreter's own exit (atexit handlers, flushing) with the program's status."""
    import runpy

    os.chdir(request["cwd"])
    sys.path[0] = os.getcwd()  # as `python -m` puts it
    os.environ.clear()
    os.environ.update(request["env"])
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    streams = ((0, os.devnull, os.O_RDONLY), (1, out_path, write), (2, err_path, write))
    for fd, path, mode in streams:
        opened = os.open(path, mode)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [request["program"], *request["args"]]
    # `python -m` runs the program as __main__ only; the preloaded copy stays with whichever
    # preloaded module imported it.
    sys.modules.pop(request["program"], None)
    runpy.run_module(request["program"], run_name="__main__", alter_sys=True)
    sys.exit(0)


def _serve() -> None:
    import importlib
    import shutil
    import tempfile
    import time

    for module in PRELOAD:
        importlib.import_module(module)
    from tensorflow.python.eager import context

    # A runtime started here would be shared, broken, by every child.
    assert context.context()._context_handle is None, "TensorFlow ran an op at import time"
    replies = os.fdopen(os.dup(1), "w")
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        # Not a `with` block: the child's exit unwinds through this loop and must not remove it.
        folder = tempfile.mkdtemp()
        out_path, err_path = os.path.join(folder, "out"), os.path.join(folder, "err")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request, out_path, err_path)
        deadline = time.monotonic() + request["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                returncode = -9
                break
            time.sleep(0.01)
        reply = {"returncode": returncode}
        for name, path in (("stdout", out_path), ("stderr", err_path)):
            with open(path, encoding="utf-8", errors="replace") as f:
                reply[name] = f.read()
        shutil.rmtree(folder)
        if returncode == -9:
            reply["stderr"] += f"\n[killed after the {request['timeout']} s timeout]"
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve()
