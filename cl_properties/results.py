"""One results format for every experiment and benchmark, and the output folder it lives in.

Each run directory holds `results.json` (config, seed, package versions, the code's git
commit, wall time, status and a list of rows) and `results.csv` (the same rows, flat). Writes
are atomic: a preempted or crashed run never leaves a half-written file behind, and a
failed or interrupted run never loses a row of a completed result. A run holds
`lock_output_dir` on its folder while it writes there, so two runs never share one.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import fcntl
import functools
import io
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
LOCK_FILE = ".lock"
STATUSES = ("completed", "running", "failed", "interrupted")


class OutputDirError(ValueError):
    """An output folder that cannot be used: not a writable folder, or held by another run."""


class ResultsFileError(ValueError):
    """A results.json that cannot be read (corrupt, truncated, not a results document)."""


_VERSIONED_PACKAGES = (
    "cl_properties",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tensorflow-datasets",
    "numpy",
    "scikit-learn",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A unique sibling rather than mkstemp, whose 0600 mode would survive the rename.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine a result (those installed)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def code_version(source_dir: str | None = None) -> str | None:
    """The git commit of the cl_properties checkout that runs (`git describe --always --dirty`:
    "-dirty" when tracked files differ from it), or None when the package is not the top of a
    git checkout (an installed wheel: its version in `package_versions` is all there is).

    Results record it because a code change can move numbers without changing any option.
    `source_dir` (the checkout, default: the one holding this package) is for tests.
    """
    root = source_dir or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", root, *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    # A package installed inside some other repository must not report that one's commit.
    top = git("rev-parse", "--show-toplevel")
    if top is None or os.path.realpath(top) != os.path.realpath(root):
        return None
    return git("describe", "--always", "--dirty")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / tf scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_results(
    output_dir: str | os.PathLike,
    *,
    rows: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    seed: int,
    wall_time_s: float,
    status: str = "completed",
    extra: Mapping[str, Any] | None = None,
    keep_completed: bool = True,
) -> str | None:
    """Writes `results.json` and `results.csv` atomically; returns the JSON path, or None
    when it kept a completed result instead.

    `rows` are flat dicts, one per configuration (and model) measured; `status` is
    "completed", "running", "failed" (with the reason in `extra["error"]`) or "interrupted".
    With `keep_completed` (for a run's own results), a completed results.json already in
    `output_dir` is replaced by another status only when `rows` hold every one of its rows
    (a sweep extended with more points saves each new row as it runs): a failure after a
    finished run never loses a finished row. The document records when it was written
    (`written_at`, UTC).
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    rows = _jsonable(list(rows))
    if keep_completed and status != "completed":
        finished = completed_rows(output_dir)
        if finished is not None and not _contains_every(rows, finished):
            return None
    document = {
        "status": status,
        "seed": int(seed),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": float(wall_time_s),
        "versions": package_versions(),
        "code_version": code_version(),
        "command": sys.argv,
        "config": _jsonable(config),
        "rows": rows,
        **_jsonable(dict(extra or {})),
    }
    json_path = os.path.join(os.fspath(output_dir), RESULTS_JSON)
    atomic_write_text(json_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    columns: list[str] = []
    for row in document["rows"]:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(document["rows"])
    atomic_write_text(os.path.join(os.fspath(output_dir), RESULTS_CSV), buffer.getvalue())
    return json_path


def remove_results(output_dir: str | os.PathLike) -> None:
    """Deletes the results files of `output_dir` (a run started over with --fresh)."""
    for name in (RESULTS_JSON, RESULTS_CSV):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(os.fspath(output_dir), name))


def read_results(output_dir: str | os.PathLike) -> dict[str, Any]:
    """Reads a run's `results.json`. Raises FileNotFoundError when there is none and
    ResultsFileError, naming the file, when it is not a readable results document."""
    path = os.path.join(os.fspath(output_dir), RESULTS_JSON)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no {RESULTS_JSON} in {os.fspath(output_dir)!r}: has the run finished?"
        )
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path} is not readable JSON ({error})") from None
    if (
        not isinstance(document, dict)
        or document.get("status") not in STATUSES
        or not isinstance(document.get("rows"), list)
    ):
        raise ResultsFileError(f"{path} is not a results document (no valid status and rows)")
    return document


def completed_rows(output_dir: str | os.PathLike) -> list | None:
    """The rows of a completed results.json in `output_dir`; None when there is none."""
    try:
        document = read_results(output_dir)
    except (FileNotFoundError, ResultsFileError):
        return None
    return document["rows"] if document["status"] == "completed" else None


def _contains_every(rows: Sequence[Any], kept: Sequence[Any]) -> bool:
    """Whether `rows` hold each of `kept` (as JSON stores them)."""

    def canonical(row: Any) -> str:
        return json.dumps(as_saved(row), sort_keys=True)

    present = {canonical(row) for row in rows}
    return all(canonical(row) in present for row in kept)


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted names of the fields that differ between two configs, with both values (nested
    dicts compared field by field). Compare configs as saved: see `as_saved`."""
    found = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


def as_saved(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as a JSON file stores it (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(_jsonable(config)))


def previous_results(
    output_dir: str | os.PathLike, config: Mapping[str, Any], *, ignore: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The results document an earlier run of `config` left in `output_dir` (any status),
    or None when there is none (or it is unreadable: nothing can be reused from it).

    Keys named in `ignore` (at any depth: settings that do not change what a run measures,
    such as where it writes) are not compared. Raises OutputDirError, naming the
    differences, when the folder holds results of another configuration: a rerun there would
    silently mix or replace them.
    """
    try:
        document = read_results(output_dir)
    except (FileNotFoundError, ResultsFileError):
        return None
    differences = config_differences(
        _without(document.get("config", {}), ignore), _without(as_saved(config), ignore)
    )
    if differences:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise OutputDirError(
            f"{os.fspath(output_dir)} holds results of another configuration ({shown}): "
            "choose another --output_dir, or pass --fresh to replace them"
        )
    return document


def _without(config: Any, keys: Sequence[str]) -> Any:
    if isinstance(config, Mapping):
        return {k: _without(v, keys) for k, v in config.items() if k not in keys}
    return config


def prepare_output_dir(path: str | os.PathLike) -> str:
    """Creates the folder `path` (and its parents) if needed and checks that files can be
    created in it; returns it. Raises OutputDirError naming it otherwise."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputDirError(f"output folder {path} is an existing file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise OutputDirError(f"cannot create output folder {path} ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"output folder {path} is not writable")
    return path


@contextlib.contextmanager
def lock_output_dir(path: str | os.PathLike) -> Iterator[str]:
    """Holds an exclusive lock on the output folder `path` (created if needed) while the
    block runs; yields the folder.

    The lock is an `fcntl.flock` on `path/.lock`, which records the holder's pid: the kernel
    releases it when the process exits, however it ends, so a lock is never stale. Raises
    OutputDirError when the folder cannot be used or another process holds it (naming the
    folder and the holder's pid).
    """
    path = prepare_output_dir(path)
    lock_path = os.path.join(path, LOCK_FILE)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise OutputDirError(
            f"cannot create the lock file {lock_path} ({error.strerror})"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise OutputDirError(
                f"output folder {path} is in use by another run (pid {holder}): wait for it to end "
                "or choose another --output_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table of `rows` for printing (floats with 3 decimals)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [
        [
            f"{row.get(c, ''):.3f}" if isinstance(row.get(c), float) else str(row.get(c, ""))
            for c in columns
        ]
        for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
