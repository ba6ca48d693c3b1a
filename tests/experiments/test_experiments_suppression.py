"""The feature-suppression experiments: smoke sweeps, flagfiles, errors, the shared sweep code.

Experiment runs are subprocesses (absl flags are process-global and every experiment defines
the shared pretraining flags); the shared sweep code (`suppression`) is tested in-process
with a tiny data builder.
"""

import json
import os
import signal
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from cl_properties.data import crop_augment, source_from_arrays
from cl_properties.experiments import suppression
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import DataSpec, EvalConfig, Interrupted, PretrainConfig
from cl_properties.training.config import EncoderConfig, HeadConfig, LossConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = os.path.join(ROOT, "experiments", "suppression")
TINY = ["--steps=2", "--batch_size=8", "--linear_epochs=1", "--knn_k=3"]


def _run(experiment: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"cl_properties.experiments.{experiment}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def _document(output_dir) -> dict:
    with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def _check_outputs(output_dir, name: str, result) -> list[dict]:
    assert result.returncode == 0, result.stderr[-3000:]
    document = _document(output_dir)
    assert document["status"] == "completed" and document["experiment"] == name
    assert os.path.exists(os.path.join(output_dir, "results.csv"))
    assert matplotlib.image.imread(os.path.join(output_dir, f"{name}.png")).shape[0] > 100
    assert "seconds" in result.stdout  # the printed table
    assert f"wrote {os.path.join(str(output_dir), 'results.json')}" in result.stderr
    return document["rows"]


@pytest.mark.slow
def test_randbit_smoke_all_models(tmp_path):
    result = _run(
        "randbit",
        *TINY,
        "--bits=0,3",
        "--temperatures=0.1",
        "--num_train=64",
        "--models=contrastive,per_view,vae,supervised",
        "--vae_steps=3",
        f"--output_dir={tmp_path}",
    )
    rows = _check_outputs(tmp_path, "randbit", result)
    assert [(r["bits"], r["model"]) for r in rows] == [
        (b, m) for b in (0, 3) for m in ("contrastive", "per_view", "vae", "supervised")
    ]
    for row in rows:
        assert 0.0 <= row["linear_label"] <= 1.0 and 0.0 <= row["knn_label"] <= 1.0
        assert row["seed"] == 0 and row["batch_size"] == 8
        assert (row["temperature"] == 0.1) == (row["model"] in ("contrastive", "per_view"))
        assert ("online_label" in row) == (row["model"] in ("contrastive", "per_view"))
    assert [r["steps"] for r in rows if r["model"] == "vae"] == [3, 3]
    assert _document(tmp_path)["config"]["bits"] == ["0", "3"]
    assert "[8/8] bits=3 supervised" in result.stderr  # progress lines


@pytest.mark.slow
def test_randbit_is_deterministic_given_the_seed_and_parallel_workers_agree(tmp_path):
    # A repeated run on one machine gives identical numbers (the benchmarks' bands rely on it);
    # worker processes run with fewer threads each, whose float rounding differs slightly.
    args = [*TINY, "--bits=2", "--temperatures=0.1,0.2", "--num_train=64", "--models=contrastive"]
    serial = _run("randbit", *args, f"--output_dir={tmp_path / 'a'}")
    again = _run("randbit", *args, f"--output_dir={tmp_path / 'again'}")
    parallel = _run("randbit", *args, "--workers=2", f"--output_dir={tmp_path / 'b'}")
    rows_a = _check_outputs(tmp_path / "a", "randbit", serial)
    probes = ("linear_label", "knn_label", "online_label", "train_loss")
    assert [
        [r[p] for p in probes] for r in _check_outputs(tmp_path / "again", "randbit", again)
    ] == [[r[p] for p in probes] for r in rows_a]
    rows_b = _check_outputs(tmp_path / "b", "randbit", parallel)
    assert [r["temperature"] for r in rows_b] == [0.1, 0.2]  # job order, whatever finished first
    for a, b in zip(rows_a, rows_b):
        assert a["linear_label"] == pytest.approx(b["linear_label"], abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, args, x, probes",
    [
        (
            "digit_on_images",
            ["--pool_sizes=1,5", "--image_size=24", "--num_train=32", "--num_test=16"],
            "pool_size",
            ["object", "digit"],
        ),
        (
            "multidigits",
            [
                "--variable_sizes=8,12",
                "--canvas=24",
                "--fixed_size=8",
                "--num_train=32",
                "--num_test=16",
            ],
            "variable_size",
            ["fixed", "variable"],
        ),
        (
            "color_shapes",
            ["--jitter_strengths=0,1", "--image_size=16", "--num_train=32", "--num_test=16"],
            "jitter_strength",
            ["shape"],
        ),
    ],
)
def test_other_experiments_smoke(tmp_path, name, args, x, probes):
    result = _run(name, *TINY, *args, "--temperatures=0.1", f"--output_dir={tmp_path}")
    rows = _check_outputs(tmp_path, name, result)
    assert len(rows) == 2 and all(r["model"] == "contrastive" for r in rows)
    assert rows[0][x] < rows[1][x]
    for row in rows:
        for key in probes:
            assert 0.0 <= row[f"linear_{key}"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "flagfile, experiment, runs",
    [
        ("randbit_mnist.flags", "randbit", 5 * (3 + 3 + 1)),
        ("randbit_cifar10.flags", "randbit", 5 * (3 + 3 + 1)),
        ("multidigits_mnist.flags", "multidigits", 4 * (2 + 1)),
        ("digit_on_images_mnist.flags", "digit_on_images", 5 * 3),
    ],
)
def test_shipped_flagfiles_parse(flagfile, experiment, runs):
    # Paper-scale data and training need TFDS data and an accelerator: check the flags only.
    result = _run(experiment, f"--flagfile={os.path.join(FLAGFILES, flagfile)}", "--dry_run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"[{runs}/{runs}]" in result.stdout


def test_flagfiles_are_all_tested():
    assert sorted(os.listdir(FLAGFILES)) == sorted(
        [
            "randbit_mnist.flags",
            "randbit_cifar10.flags",
            "multidigits_mnist.flags",
            "digit_on_images_mnist.flags",
        ]
    )


# ----------------------------------------------------------------------------------------
# The shared sweep code, in-process.


def _tiny_data(job: suppression.Job) -> DataSpec:
    if job.point["n"] == -2:
        raise KeyboardInterrupt  # as Ctrl-C does, mid-sweep
    if job.point["n"] < 0:
        raise RuntimeError("this job fails on purpose")
    rng = np.random.default_rng(0)
    images = rng.random((24, 16, 16, 1)).astype("float32")
    labels = {"label": (np.arange(24) % 3).astype("int32")}
    source = source_from_arrays(images, labels)
    return DataSpec(source, source, (16, 16, 1), {"label": 3}, crop_augment())


TINY_EXPERIMENT = suppression.Experiment(
    name="tiny",
    build_data=_tiny_data,
    x="n",
    points_flag="ns",
    x_label="n",
    probe_titles={"label": "label probe"},
    chance={"label": 1 / 3},
)


def _job(n: int, model: str = "contrastive", temperature: float = 0.1) -> suppression.Job:
    config = PretrainConfig(
        encoder=EncoderConfig(name="convn"),
        head=HeadConfig(depth=2, hidden_dim=8, output_dim=4),
        loss=LossConfig("nt_xent", {"temperature": temperature}),
        optimizer=OptimizerConfig(
            name="adam", learning_rate=1e-3, lr_scaling="none", weight_decay=0.0
        ),
        batch_size=8,
        train_steps=2,
        steps_per_loop=2,
    )
    return suppression.Job(
        {"n": n},
        model,
        config,
        EvalConfig(linear_epochs=1, knn_k=3),
        suppression.VaeConfig(latent_dim=4),
        {},
    )


def test_job_series_and_description():
    assert _job(1).series == "contrastive tau=0.1" and _job(1).temperature == 0.1
    vae = _job(2, "vae")
    assert vae.series == "vae" and vae.temperature is None
    assert vae.describe() == "n=2 vae"


@pytest.mark.slow
def test_failed_sweep_keeps_the_finished_rows(tmp_path):
    import io

    progress = io.StringIO()
    with pytest.raises(RuntimeError, match="on purpose"):
        suppression.run_sweep(
            TINY_EXPERIMENT,
            [_job(1), _job(-1)],
            output_dir=str(tmp_path),
            config={"a": 1},
            seed=0,
            stream=progress,
        )
    document = _document(tmp_path)
    assert document["status"] == "failed" and "on purpose" in document["error"]
    assert [r["n"] for r in document["rows"]] == [1] and document["config"] == {"a": 1}
    assert os.path.exists(tmp_path / "tiny.png")
    assert "[1/2] n=1 contrastive tau=0.1: label=" in progress.getvalue()


@pytest.mark.slow
def test_interrupted_sweep_keeps_its_rows_and_a_rerun_measures_only_the_rest(tmp_path):
    import io

    with pytest.raises(
        Interrupted, match=r"interrupted after 1 of 3 runs.*rerun the same command"
    ) as stopped:
        suppression.run_sweep(
            TINY_EXPERIMENT,
            [_job(1), _job(-2), _job(2)],
            output_dir=str(tmp_path),
            config={"a": 1},
            seed=0,
            stream=io.StringIO(),
        )
    assert stopped.value.signal_number == signal.SIGINT
    document = _document(tmp_path)
    assert document["status"] == "interrupted" and [r["n"] for r in document["rows"]] == [1]

    # The rerun (here a longer sweep of the same settings) keeps the measured row as it was.
    progress = io.StringIO()
    rows = suppression.run_sweep(
        TINY_EXPERIMENT,
        [_job(1), _job(2), _job(3)],
        output_dir=str(tmp_path),
        config={"a": 1},
        seed=0,
        measured=document["rows"],
        stream=progress,
    )
    assert [r["n"] for r in rows] == [1, 2, 3] and rows[0] == document["rows"][0]
    assert "3 runs, 1 measured before (kept; --fresh measures them again)" in progress.getvalue()
    assert "n=1" not in progress.getvalue().split("output in")[1]  # not trained again
    assert _document(tmp_path)["status"] == "completed"
    # Rows that no job of this sweep names are kept too, first.
    rows = suppression.run_sweep(
        TINY_EXPERIMENT,
        [_job(2)],
        output_dir=str(tmp_path),
        config={"a": 1},
        seed=0,
        measured=rows,
        stream=io.StringIO(),
    )
    assert [r["n"] for r in rows] == [1, 3, 2]


def test_plot_and_table_from_rows(tmp_path):
    rows = [
        {
            "n": n,
            "model": m,
            "temperature": t,
            "series": s,
            "seed": 0,
            "linear_label": a,
            "seconds": 1.0,
        }
        for n, m, t, s, a in [
            (1, "contrastive", 0.1, "contrastive tau=0.1", 0.9),
            (2, "contrastive", 0.1, "contrastive tau=0.1", 0.5),
            (1, "vae", None, "vae", 0.8),
        ]
    ]
    suppression.plot_rows(TINY_EXPERIMENT, rows, str(tmp_path / "p.png"))
    assert matplotlib.image.imread(tmp_path / "p.png").shape[1] >= 400
    text = suppression.table(TINY_EXPERIMENT, rows)
    assert text.splitlines()[0].split() == [
        "n",
        "model",
        "temperature",
        "seed",
        "linear_label",
        "seconds",
    ]
    assert len(text.splitlines()) == 4


def test_run_sweep_rejects_no_jobs_and_bad_workers(tmp_path):
    with pytest.raises(ValueError, match="no jobs"):
        suppression.run_sweep(TINY_EXPERIMENT, [], output_dir=str(tmp_path), config={}, seed=0)
    with pytest.raises(ValueError, match="workers"):
        suppression.run_sweep(
            TINY_EXPERIMENT, [_job(1)], output_dir=str(tmp_path), config={}, seed=0, workers=0
        )


def test_vae_config_validates():
    with pytest.raises(ValueError, match="latent_dim"):
        suppression.VaeConfig(latent_dim=0)
    with pytest.raises(ValueError, match="kl_weight"):
        suppression.VaeConfig(kl_weight=-1.0)
    with pytest.raises(ValueError, match="bit_weighting"):
        suppression.VaeConfig(bit_weighting="none")
    with pytest.raises(ValueError, match="train_steps"):
        suppression.VaeConfig(train_steps=0)


@pytest.mark.parametrize(
    "weighting, expected",
    [("group", [1.0] + [1 / 4] * 4), ("bit", [1.0] + [1 / 784] * 4), ("pixel", [1.0] * 5)],
)
def test_vae_bit_weightings(weighting, expected):
    weights = suppression.VaeConfig(bit_weighting=weighting).channel_weights((28, 28, 5), added=4)
    assert weights == pytest.approx(expected, rel=1e-12)
    # Without appended channels every weighting is the plain image BCE.
    assert (
        suppression.VaeConfig(bit_weighting=weighting).channel_weights((28, 28, 3), added=0)
        == [1.0] * 3
    )
