"""The shared results format: atomic writes, the recorded context, CSV = JSON rows; the
output folder's lock, a completed result kept, unreadable results named."""

import csv
import json
import os
import stat
import subprocess
import sys

import pytest

from cl_properties.results import (
    OutputDirError,
    ResultsFileError,
    atomic_write_text,
    code_version,
    format_table,
    lock_output_dir,
    prepare_output_dir,
    previous_results,
    read_results,
    write_results,
)


def test_write_results_records_context_and_rows(tmp_path):
    rows = [{"bits": 0, "accuracy": 0.98}, {"bits": 20, "accuracy": 0.11, "model": "vae"}]
    path = write_results(tmp_path, rows=rows, config={"steps": 300}, seed=7, wall_time_s=1.5)
    document = read_results(tmp_path)
    assert path == os.path.join(tmp_path, "results.json")
    assert document["status"] == "completed"
    assert document["seed"] == 7 and document["wall_time_s"] == 1.5
    assert document["config"] == {"steps": 300}
    assert document["rows"] == rows
    assert "tensorflow" in " ".join(document["versions"]) and "python" in document["versions"]
    with open(tmp_path / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["bits"] for r in table] == ["0", "20"]
    assert table[0]["model"] == "" and table[1]["model"] == "vae"


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_code_version_is_the_checkout_commit_marked_dirty_and_none_outside_a_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "cl_properties").mkdir(parents=True)
    (checkout / "cl_properties" / "a.py").write_text("x = 1\n")
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert code_version(str(checkout)) == head
    (checkout / "cl_properties" / "a.py").write_text("x = 2\n")
    code_version.cache_clear()
    assert code_version(str(checkout)) == head + "-dirty"
    # A folder inside another repository is not that repository's code; nor is a plain one.
    assert code_version(str(checkout / "cl_properties")) is None
    assert code_version(str(tmp_path)) is None
    code_version.cache_clear()
    # This package's own value is what every results.json records.
    write_results(tmp_path, rows=[], config={}, seed=0, wall_time_s=0.0)
    assert read_results(tmp_path)["code_version"] == code_version()


def test_atomic_write_leaves_no_temporary_and_readable_mode(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["file.txt"]
    assert os.stat(target).st_mode & stat.S_IROTH  # not mkstemp's 0600


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, json.dumps({"ok": 1}))

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, json.dumps({"ok": 2}))
    assert json.loads(target.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["results.json"]


def test_bad_status_and_missing_results(tmp_path):
    with pytest.raises(ValueError, match="status"):
        write_results(tmp_path, rows=[], config={}, seed=0, wall_time_s=0, status="done")
    with pytest.raises(FileNotFoundError, match="results.json"):
        read_results(tmp_path / "nothing")


def test_format_table_aligns_columns():
    text = format_table([{"a": 1, "b": 0.12345}, {"a": 10, "b": 1.0}])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "b"] and lines[1].split() == ["1", "0.123"]
    assert len({len(line) for line in lines}) == 1


def test_failed_or_interrupted_results_never_replace_a_completed_result(tmp_path):
    write_results(tmp_path, rows=[{"a": 1}], config={}, seed=0, wall_time_s=1.0)
    for status in ("failed", "interrupted", "running"):
        assert (
            write_results(tmp_path, rows=[], config={}, seed=0, wall_time_s=0, status=status)
            is None
        )
        assert read_results(tmp_path)["status"] == "completed" and read_results(tmp_path)[
            "rows"
        ] == [{"a": 1}]
    assert (tmp_path / "results.csv").read_text().splitlines() == ["a", "1"]
    # A run extending the completed one (more points) saves its rows as it goes: they hold
    # every completed row, so nothing finished is lost; rows missing one are not written.
    assert (
        write_results(tmp_path, rows=[{"a": 2}], config={}, seed=0, wall_time_s=0, status="running")
        is None
    )
    more = [{"a": 1}, {"a": 2}]
    assert write_results(
        tmp_path, rows=more, config={}, seed=0, wall_time_s=0, status="interrupted"
    )
    assert (
        read_results(tmp_path)["status"] == "interrupted" and read_results(tmp_path)["rows"] == more
    )
    # A collection that lists every run's status (the sweep's table) may say "failed" later.
    write_results(
        tmp_path, rows=[], config={}, seed=0, wall_time_s=0, status="failed", keep_completed=False
    )
    assert read_results(tmp_path)["status"] == "failed"


@pytest.mark.parametrize(
    "content",
    [b'{"status": "completed", "rows": [', b"\x89PNG\x00\xff", b"[1, 2]", b'{"rows": []}'],
)
def test_unreadable_results_name_the_file(tmp_path, content):
    (tmp_path / "results.json").write_bytes(content)
    with pytest.raises(ResultsFileError, match=str(tmp_path / "results.json")):
        read_results(tmp_path)
    assert previous_results(tmp_path, {}) is None  # nothing to reuse from it


def test_previous_results_of_another_configuration_are_an_error_naming_the_difference(tmp_path):
    config = {"flags": {"seed": 0, "steps": 300, "output_dir": "a"}}
    write_results(tmp_path, rows=[], config=config, seed=0, wall_time_s=0, status="interrupted")
    same = {"flags": {"seed": 0, "steps": 300, "output_dir": "b"}}
    assert previous_results(tmp_path, same, ignore=("output_dir",))["status"] == "interrupted"
    with pytest.raises(OutputDirError, match=r"flags.steps: 300 -> 600.*--fresh"):
        previous_results(tmp_path, {"flags": {"seed": 0, "steps": 600}}, ignore=("output_dir",))


def test_output_dir_lock_is_exclusive_names_the_holder_and_dies_with_it(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            OutputDirError, match=f"{folder} is in use by another run \\(pid {holder.pid}\\)"
        ):
            with lock_output_dir(folder):
                pass
    finally:
        holder.kill()  # a kill -9 releases the lock: it is never stale
        holder.wait()
    with lock_output_dir(folder) as locked:
        assert locked == str(folder)
        with pytest.raises(OutputDirError, match="in use"):  # not re-entrant either
            with lock_output_dir(folder):
                pass
    with lock_output_dir(folder):  # released on exit
        pass


HOLD_LOCK = """
import sys, time
from cl_properties.results import lock_output_dir
with lock_output_dir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["file", "read_only"])
def test_unusable_output_folders_are_an_error_naming_them(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "file":
        target.write_text("")
        expected = "is an existing file"
    else:
        target.mkdir()
        target.chmod(0o500)
        if os.access(target, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: a read-only folder is writable")
        expected = "not writable"
    with pytest.raises(OutputDirError, match=f"{target} {expected}"):
        prepare_output_dir(target)
