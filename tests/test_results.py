"""The shared results format: atomic writes, the recorded context, CSV = JSON rows."""
import csv
import json
import os
import stat

import pytest

from cl_properties.results import atomic_write_text, format_table, read_results, write_results


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
