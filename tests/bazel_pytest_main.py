"""The `main` of every Bazel `py_test`: runs pytest on the test files given as arguments.

Bazel starts a test in its runfiles tree (the workspace's declared files, symlinked), with
the Python found on PATH (activate the virtual environment first; see docs/development.md "Bazel").
Pytest runs from that tree, so the root `conftest.py` and `pyproject.toml` (markers,
warning filters) apply as they do for a plain `pytest tests` run. Bazel's test protocol:
`TEST_TMPDIR` is the scratch space (pytest's `tmp_path` lives under it) and the JUnit XML
goes to `XML_OUTPUT_FILE`, so `bazel test` shows per-case results.
"""

from __future__ import annotations

import os
import sys

import pytest


def pytest_args(test_files: list[str], environ: dict[str, str]) -> list[str]:
    """The pytest command line for `test_files` under Bazel's test environment `environ`."""
    if not test_files:
        raise ValueError("give the test files to run, e.g. tests/losses/test_losses_swd.py")
    args = ["-q", "-p", "no:cacheprovider", *test_files]
    if environ.get("TEST_TMPDIR"):
        args.append(f"--basetemp={os.path.join(environ['TEST_TMPDIR'], 'pytest')}")
    if environ.get("XML_OUTPUT_FILE"):
        args.append(f"--junitxml={environ['XML_OUTPUT_FILE']}")
    return args


if __name__ == "__main__":
    sys.exit(pytest.main(pytest_args(sys.argv[1:], dict(os.environ))))
