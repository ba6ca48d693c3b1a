"""Smoke runs of `python -m cl_properties.experiments.local_features` and its flagfiles.

Each run is a subprocess: absl flags are process-global, and every experiment module
defines the shared pretraining flags.
"""

import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = os.path.join(ROOT, "experiments", "local_features")
# A tiny canvas, a few steps and small probe sets: the whole pipeline in seconds.
TINY = [
    "--canvas=24",
    "--num_digits=2",
    "--digit_size=8",
    "--digits=sklearn",
    "--num_train=64",
    "--batch_size=16",
    "--steps=2",
    "--num_probe_train=16",
    "--num_probe_test=8",
    "--probe_epochs=1",
    "--linear_epochs=1",
    "--overlay_images=2",
    "--ks=2,3",
]
MODELS = ["trained", "random_init", "raw_patches"]
TAPS = ["block_group1", "block_group2", "block_group3"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cl_properties.experiments.local_features", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )


def _rows(output_dir) -> list[dict]:
    with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
        return json.load(f)["rows"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("trained")
    flagfile = os.path.join(FLAGFILES, "default.flags")
    result = _run(f"--flagfile={flagfile}", *TINY, f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


@pytest.mark.slow
def test_default_flags_train_and_write_scores_and_pictures(trained_run):
    with open(os.path.join(trained_run, "results.json"), encoding="utf-8") as f:
        document = json.load(f)
    assert document["status"] == "completed" and document["config"]["canvas"] == 24
    assert document["config"]["train_steps"] == 2  # --steps is --train_steps
    assert "linear_digit1" in document["pretrain_metrics"]
    rows = document["rows"]
    assert [(r["model"], r["tap"]) for r in rows] == [(m, t) for m in MODELS for t in TAPS]
    for row in rows:
        assert 0.0 <= row["dense_probe"] <= 1.0 and -1.0 <= row["ari_all"] <= 1.0
    # 2 images x (image + 3 block groups x 2 ks) panels of 128 px under a 24 px header.
    for name in ("overlays.png", "overlays_random_init.png"):
        pixels = matplotlib.image.imread(os.path.join(trained_run, name))
        assert pixels.shape[:2] == (2 * 128 + 24, 7 * 128)
    assert os.path.exists(os.path.join(trained_run, "results.csv"))


@pytest.mark.slow
def test_checkpoint_of_the_run_reproduces_its_scores(trained_run, tmp_path):
    flagfile = os.path.join(FLAGFILES, "default.flags")
    checkpoint = os.path.join(trained_run, "encoder.keras")
    result = _run(
        f"--flagfile={flagfile}", *TINY, f"--checkpoint={checkpoint}", f"--output_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _rows(tmp_path) == _rows(trained_run)


@pytest.mark.slow
def test_paper_scale_flags_parse_and_score_a_checkpoint(trained_run, tmp_path):
    # Training at paper scale needs an accelerator; the flagfile is checked with a checkpoint.
    flagfile = os.path.join(FLAGFILES, "paper_scale.flags")
    checkpoint = os.path.join(trained_run, "encoder.keras")
    result = _run(
        f"--flagfile={flagfile}", *TINY, f"--checkpoint={checkpoint}", f"--output_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {r["tap"] for r in _rows(tmp_path)} == set(TAPS)


@pytest.mark.slow
def test_unsupported_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "model.ckpt"
    bad.write_text("")
    result = _run(*TINY, f"--checkpoint={bad}", f"--output_dir={tmp_path}")
    assert result.returncode == 2
    assert "error: unsupported checkpoint" in result.stderr
    assert not os.path.exists(tmp_path / "results.json")
