"""One results format for every experiment and benchmark.

Each run directory holds `results.json` (config, seed, package versions, wall time, status
and a list of rows) and `results.csv` (the same rows, flat). Writes are atomic: a
preempted or crashed run never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
import uuid
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
_VERSIONED_PACKAGES = ("cl_properties", "tensorflow", "tensorflow-cpu", "keras", "tensorflow-datasets", "numpy", "scikit-learn")


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
) -> str:
    """Writes `results.json` and `results.csv` atomically; returns the JSON path.

    `rows` are flat dicts, one per configuration (and model) measured; `status` is
    "completed", "running" or "failed" (with the reason in `extra["error"]`).
    """
    if status not in ("completed", "running", "failed"):
        raise ValueError(f"status must be completed, running or failed, got {status!r}")
    document = {
        "status": status,
        "seed": int(seed),
        "wall_time_s": float(wall_time_s),
        "versions": package_versions(),
        "command": sys.argv,
        "config": _jsonable(config),
        "rows": _jsonable(list(rows)),
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


def read_results(output_dir: str | os.PathLike) -> dict[str, Any]:
    """Reads a run's `results.json`."""
    path = os.path.join(os.fspath(output_dir), RESULTS_JSON)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {RESULTS_JSON} in {os.fspath(output_dir)!r}: has the run finished?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table of `rows` for printing (floats with 3 decimals)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[f"{row.get(c, ''):.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
