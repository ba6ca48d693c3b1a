"""The remedies benchmark on the digit testbeds takes its contrastive model and floor from the
two studies' sweeps (`benchmarks/scheduling.py`, SHARED_RUNS): the remedies entry point would
run the very same jobs."""

import os
import subprocess
import sys

import _benchmark_modules
import pytest
from _benchmark_modules import ROOT

# Prints the jobs a program's flags describe (its `suppression.main` replaced), one per line.
_PRINT_JOBS = """
import sys
from absl import flags
from cl_properties.experiments import suppression
from cl_properties.experiments import {program} as program

def print_jobs(experiment, jobs, module, **kwargs):
    for job in jobs:
        print("job:", repr(job))
    return []

suppression.main = print_jobs
program.define_flags()
flags.FLAGS(sys.argv)
program.main([])
"""


def _jobs(program: str, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_JOBS.format(program=program), program, *args, "--dry_run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {line for line in result.stdout.splitlines() if line.startswith("job: ")}


@pytest.mark.slow
def test_remedies_on_the_digit_testbeds_reuse_the_studies_jobs(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = _benchmark_modules.load("test_bench_remedies_digits")
    studies = set()
    for tag in ("digit_on_images", "multidigits"):
        studies |= _jobs(bench.EXPERIMENTS[tag], *bench.SWEEPS[tag])
    args = [a for a in bench.SWEEPS["remedies_digits"] if not a.startswith("--models=")]
    # Every model of the benchmark: the flagfile's weights need the remedies among them.
    remedies = _jobs("remedies", *args, f"--models={','.join(bench.MODELS)}")
    reused = {
        job for job in remedies if "model='contrastive'" in job or "model='random_init'" in job
    }
    # Per testbed: contrastive suppressed and unsuppressed, random_init suppressed.
    assert len(reused) == 6
    assert reused <= studies, "\n".join(sorted(reused - studies))
