"""The feature-suppression programs: smoke runs, determinism, flagfiles, RandBit's bit modes.

Experiment runs are processes of their own (absl flags are process-global and every experiment
defines the shared pretraining flags), forked from a server that has done the imports once
(`_program_server`); the job runner they share is tested in-process in
test_experiments_job_runner.py.
"""

import csv
import json
import os
import subprocess
import sys
from typing import Any

import matplotlib.image
import pytest

from cl_properties.data import grey_shapes_augment
from cl_properties.experiments import color_shapes, job_runner, randbit
from cl_properties.experiments.job_runner import Job
from cl_properties.training import PretrainConfig

from _program_server import ProgramServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = os.path.join(ROOT, "experiments", "suppression")
TINY = ["--steps=2", "--batch_size=8", "--linear_epochs=1", "--knn_k=3"]


ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
_servers: list[ProgramServer] = []  # this module's, while its tests run


@pytest.fixture(scope="module", autouse=True)
def _program_server():
    with ProgramServer(ENV) as server:
        _servers.append(server)
        yield
        _servers.remove(server)


def _run(experiment: str, *args: str) -> subprocess.CompletedProcess:
    return _servers[0].run(
        f"cl_properties.experiments.{experiment}", args, cwd=ROOT, env=ENV, timeout=600
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
        # --models=per_view: the deprecated spelling of --bit_mode=per_view, still working.
        "--models=contrastive,per_view,vae,supervised,random_init",
        "--control_bits=0,3",
        "--vae_steps=3",
        "--linear_protocol=simclr",
        f"--output_dir={tmp_path}",
    )
    rows = _check_outputs(tmp_path, "randbit", result)
    assert {r["linear_protocol"] for r in rows} == {"simclr"}  # which probe made linear_*
    assert "--models=per_view is deprecated" in result.stderr
    # Without bits the per-view mode is the shared data: only the shared run is made.
    assert [(r["bits"], r["bit_mode"], r["model"]) for r in rows] == [
        (0, "shared", "contrastive"),
        (0, "shared", "vae"),
        (0, "shared", "supervised"),
        (0, "shared", "random_init"),
        (3, "shared", "contrastive"),
        (3, "shared", "vae"),
        (3, "shared", "supervised"),
        (3, "shared", "random_init"),
        (3, "per_view", "contrastive"),
    ]
    for row in rows:
        assert 0.0 <= row["linear_label"] <= 1.0 and 0.0 <= row["knn_label"] <= 1.0
        assert row["seed"] == 0 and row["batch_size"] == 8
        assert (row["temperature"] == 0.1) == (row["model"] == "contrastive")
        assert ("online_label" in row) == (row["model"] == "contrastive")
    assert [r["series"] for r in rows[4:]] == [
        "contrastive shared tau=0.1",
        "vae shared",
        "supervised shared",
        "random_init shared",
        "contrastive per_view tau=0.1",
    ]
    assert [r["steps"] for r in rows if r["model"] == "vae"] == [3, 3]
    floors = [r for r in rows if r["model"] == "random_init"]  # the untrained encoder
    assert [r["steps"] for r in floors] == [0, 0]
    assert not any(k.startswith("train_") for r in floors for k in r)
    vae_objective = {(r.get("vae_kl_weight"), r.get("vae_bit_weighting")) for r in rows}
    assert vae_objective == {(0.1, "group"), (None, None)}  # recorded in the VAE's rows only
    assert _document(tmp_path)["config"]["bits"] == ["0", "3"]
    assert "[9/9] bits=3 contrastive per_view tau=0.1" in result.stderr  # progress lines
    examples = sorted(os.listdir(tmp_path / "examples"))
    assert examples == [
        "bits=0_bit_mode=shared.png",
        "bits=3_bit_mode=per_view.png",
        "bits=3_bit_mode=shared.png",
    ]
    assert matplotlib.image.imread(tmp_path / "examples" / examples[0]).shape[1] > 400


def test_randbit_per_view_bits_run_the_contrastive_model_only():
    result = _run(
        "randbit",
        "--bits=0,10",
        "--control_bits=0,10",
        "--bit_mode=shared,per_view",
        "--models=contrastive,vae",
        "--temperatures=0.1",
        "--dry_run",
    )
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr
    lines = [line.split("] ", 1)[1].split(" seed=")[0] for line in result.stdout.splitlines()]
    assert lines == [
        "bits=0 contrastive shared tau=0.1",  # the per-view mode without bits is the same run
        "bits=0 vae shared",
        "bits=10 contrastive shared tau=0.1",
        "bits=10 vae shared",
        "bits=10 contrastive per_view tau=0.1",
    ]
    alone = _run("randbit", "--bits=0", "--bit_mode=per_view", "--dry_run")
    assert alone.returncode == 0 and "bits=0 contrastive per_view" in alone.stdout


def test_the_floor_averages_the_initializations_it_is_given_and_records_them(tmp_path):
    args = [*TINY, "--bits=2", "--num_train=64", "--models=random_init"]
    single = _run("randbit", *args, f"--output_dir={tmp_path / 'single'}")
    averaged = _run("randbit", *args, "--floor_inits=3", f"--output_dir={tmp_path / 'averaged'}")
    [one] = _check_outputs(tmp_path / "single", "randbit", single)
    [three] = _check_outputs(tmp_path / "averaged", "randbit", averaged)
    assert (one["floor_inits"], three["floor_inits"]) == (1, 3)
    assert one["linear_label"] != three["linear_label"] or one["knn_label"] != three["knn_label"]


def test_randbit_trained_controls_run_at_the_control_bits_only():
    args = ["--models=contrastive,ifm,vae,supervised,random_init", "--temperatures=0.1"]
    result = _run("randbit", "--bits=0,5,10", *args, "--dry_run")
    assert result.returncode == 0, result.stderr
    # "bits=B model mode", without the parameters (temperature, IFM's, seed, steps).
    lines = [" ".join(line.split("] ", 1)[1].split()[:3]) for line in result.stdout.splitlines()]
    # Default: the largest bit count; the shared contrastive family and the floor everywhere.
    expected = [
        f"bits={b} {m} shared" for b in (0, 5) for m in ("contrastive", "ifm", "random_init")
    ]
    assert lines[:6] == expected
    assert lines[6:] == [
        "bits=10 contrastive shared",
        "bits=10 ifm shared",
        "bits=10 vae shared",
        "bits=10 supervised shared",
        "bits=10 random_init shared",
        "bits=10 contrastive per_view",
        "bits=10 ifm per_view",
    ]
    chosen = _run("randbit", "--bits=0,5,10", *args, "--control_bits=5", "--dry_run")
    assert "bits=5 vae shared" in chosen.stdout and "bits=10 vae" not in chosen.stdout
    assert "bits=5 ifm per_view" in chosen.stdout and "bits=10 ifm per_view" not in chosen.stdout
    outside = _run("randbit", "--bits=0,5", "--control_bits=20", "--dry_run")
    assert outside.returncode == 2
    assert "--control_bits must be among --bits (0,5), got 20" in outside.stderr


@pytest.mark.parametrize(
    "args, series",
    [
        ([], ["contrastive tau=0.1", "contrastive tau=0.2"]),  # the study's NT-Xent sweep
        (["--loss=decoupled"], ["contrastive tau=1"]),  # decoupled's own, not NT-Xent's
        (["--loss=decoupled", "--temperatures=0.5"], ["contrastive tau=0.5"]),
        (["--loss=swd_normal"], ["contrastive"]),  # no temperature at all
    ],
)
def test_the_temperature_sweep_is_the_loss_own_unless_given(args, series):
    result = _run("digit_on_images", "--pool_sizes=1", "--models=contrastive", *args, "--dry_run")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.split("] ", 1)[1].split(" seed=")[0] for line in result.stdout.splitlines()]
    assert lines == [f"pool_size=1 {s}" for s in series]


def _dry_run_lines(result) -> list[str]:
    assert result.returncode == 0, result.stderr[-2000:]
    return [line.split("] ", 1)[1].split(" seed=")[0] for line in result.stdout.splitlines()]


def test_ifm_runs_beside_the_contrastive_model_at_every_temperature():
    result = _run(
        "randbit",
        "--bits=0,10",
        "--temperatures=0.1,0.2",
        "--models=contrastive,ifm,random_init",
        "--ifm_epsilon=0.2",
        "--ifm_alpha=0.5",
        "--dry_run",
    )
    shared = [
        "contrastive shared tau=0.1",
        "contrastive shared tau=0.2",
        "ifm shared tau=0.1 epsilon=0.2 alpha=0.5",
        "ifm shared tau=0.2 epsilon=0.2 alpha=0.5",
        "random_init shared",
    ]
    # Per-view bits are a control of both two-view models (at 0 bits, the shared data).
    per_view = [line.replace("shared", "per_view") for line in shared[:4]]
    assert _dry_run_lines(result) == [
        *(f"bits=0 {line}" for line in shared),
        *(f"bits=10 {line}" for line in shared + per_view),
    ]
    # IFM's own defaults, and the study's NT-Xent sweep (here 0.1, 0.2) with --loss=ifm too.
    for loss in ("nt_xent", "ifm"):
        result = _run(
            "digit_on_images", "--pool_sizes=1", "--models=ifm", f"--loss={loss}", "--dry_run"
        )
        assert _dry_run_lines(result) == [
            f"pool_size=1 ifm tau={t} epsilon=0.1 alpha=1" for t in (0.1, 0.2)
        ]


@pytest.mark.slow
def test_randbit_ifm_rows_plot_and_resume(tmp_path):
    args = [*TINY, "--bits=3", "--bit_mode=shared", "--temperatures=0.1", "--num_train=64"]
    args += ["--models=contrastive,ifm,random_init", f"--output_dir={tmp_path}"]
    first = _check_outputs(tmp_path, "randbit", _run("randbit", *args, "--ifm_epsilon=0.2"))
    assert [r["model"] for r in first] == ["contrastive", "ifm", "random_init"]
    ifm = first[1]
    assert (ifm["temperature"], ifm["ifm_epsilon"], ifm["ifm_alpha"]) == (0.1, 0.2, 1.0)
    assert ifm["series"] == "ifm shared tau=0.1 epsilon=0.2 alpha=1" and "online_label" in ifm
    assert not any("ifm_epsilon" in r for r in (first[0], first[2]))
    with open(tmp_path / "results.csv", encoding="utf-8") as f:
        assert {"ifm_epsilon", "ifm_alpha"} <= set(next(csv.reader(f)))
    (panel, _) = job_runner.probe_panels(randbit.EXPERIMENT, first)
    assert [s.label for s in panel.series] == [
        "contrastive shared tau=0.1",
        "ifm shared tau=0.1 epsilon=0.2 alpha=1",
        "random_init shared",
        "chance",
    ]
    # Another epsilon into the same folder: a new ifm run beside the rows already measured.
    again = _run("randbit", *args, "--ifm_epsilon=0.3")
    rows = _check_outputs(tmp_path, "randbit", again)
    assert "3 runs, 2 measured before (kept" in again.stderr
    assert [(r["model"], r.get("ifm_epsilon")) for r in rows] == [
        ("ifm", 0.2),  # measured before, not asked for now: kept, first
        ("contrastive", None),
        ("ifm", 0.3),
        ("random_init", None),
    ]
    assert rows[1] == first[0] and rows[0] == first[1]


def test_auxiliary_remedies_run_beside_the_contrastive_model_with_their_parameters():
    result = _run(
        "randbit",
        "--bits=10",
        "--bit_mode=shared",
        "--models=contrastive,recon_hybrid,rotation_aux,bit_matched",
        "--recon_weighting=uniform",
        "--rotation_weight=3",
        "--dry_run",
    )
    assert _dry_run_lines(result) == [
        "bits=10 contrastive shared tau=0.1",
        "bits=10 recon_hybrid shared tau=0.1 weight=10 weighting=uniform",
        "bits=10 rotation_aux shared tau=0.1 weight=3",
        "bits=10 bit_matched shared tau=0.1",
    ]
    # Every suppression experiment offers them (its images are square).
    result = _run("color_shapes", "--models=recon_hybrid,rotation_aux,bit_matched", "--dry_run")
    lines = _dry_run_lines(result)
    assert all("weight=10" in line for line in lines[:2]) and "bit_matched" in lines[2]


@pytest.mark.slow
def test_randbit_auxiliary_remedy_rows_and_resume(tmp_path):
    args = [*TINY, "--bits=3", "--bit_mode=shared", "--temperatures=0.1", "--num_train=64"]
    args += ["--models=recon_hybrid,rotation_aux,recon_rotation", f"--output_dir={tmp_path}"]
    first = _check_outputs(tmp_path, "randbit", _run("randbit", *args, "--recon_weight=2"))
    recon, rotation, both = first
    assert (recon["model"], recon["recon_weight"], recon["recon_weighting"]) == (
        "recon_hybrid",
        2.0,
        "groups",
    )
    assert (rotation["model"], rotation["rotation_weight"]) == ("rotation_aux", 10.0)
    assert "recon_weight" not in rotation and "rotation_weight" not in recon
    assert recon["train_recon_loss"] > 0 and rotation["train_rotation_loss"] > 0
    assert recon["series"] == "recon_hybrid shared tau=0.1 weight=2 weighting=groups"
    # Both terms: the shared flag reaches it, its own preset weighs channels alike.
    assert (both["recon_weight"], both["recon_weighting"], both["rotation_weight"]) == (
        2.0,
        "uniform",
        10.0,
    )
    assert both["train_recon_loss"] > 0 and both["train_rotation_loss"] > 0
    with open(tmp_path / "results.csv", encoding="utf-8") as f:
        assert {"recon_weight", "recon_weighting", "rotation_weight"} <= set(next(csv.reader(f)))
    # Another weighting into the same folder: a new recon_hybrid run, the rotation row kept.
    again = _run("randbit", *args, "--recon_weight=2", "--recon_weighting=uniform")
    rows = _check_outputs(tmp_path, "randbit", again)
    assert "3 runs, 2 measured before (kept" in again.stderr
    assert [(r["model"], r.get("recon_weighting")) for r in rows] == [
        ("recon_hybrid", "groups"),
        ("recon_hybrid", "uniform"),
        ("rotation_aux", None),
        ("recon_rotation", "uniform"),
    ]
    assert rows[0] == recon and rows[2] == rotation and rows[3] == both


def _last_json_line(script: str, *args: str) -> Any:
    """The JSON on the last line that `python -c script *args` prints (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# Runs RandBit's main on the flags given, then trains its first ifm job and prints the config
# of the loss its model was built with.
_IFM_JOB_LOSS = """
import json, sys
import keras
from cl_properties.experiments import cli, job_runner, randbit, suppression

class LossOfTheModel(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print(json.dumps(self.model.contrastive_loss.get_config()))

def train_the_ifm_job(experiment, jobs, module):
    job = next(j for j in jobs if j.model == "ifm")
    job_runner.run_job(job, experiment.build_data, [LossOfTheModel()])

suppression.main = train_the_ifm_job
randbit.define_flags()
cli.run(randbit.main, sys.argv)
"""


@pytest.mark.slow
def test_an_ifm_job_trains_the_ifm_loss_with_the_flag_values():
    config = _last_json_line(
        _IFM_JOB_LOSS,
        *TINY,
        "--bits=0",
        "--num_train=64",
        "--models=contrastive,ifm",
        "--temperatures=0.2",
        "--ifm_epsilon=0.3",
        "--ifm_alpha=0.5",
        "--loss_candidates=cross_view",
        "--loss_scale=2",
    )
    # IFM with the flags' values, and the loss flags it shares with the contrastive model.
    assert {k: config[k] for k in ("method", "temperature", "epsilon", "alpha")} == {
        "method": "ifm",
        "temperature": 0.2,
        "epsilon": 0.3,
        "alpha": 0.5,
    }
    assert (config["candidates"], config["scale"]) == ("cross_view", 2.0)


def test_randbit_default_is_the_main_job():
    result = _run("randbit", "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "[10/10] bits=20 contrastive per_view tau=0.1" in result.stdout
    assert "bits=0 random_init shared" in result.stdout  # the floor, at every bit count
    assert "vae" not in result.stdout.split("bits=20")[0]  # the VAE at 20 bits only
    # The main job's scale: 250 steps; the VAE twice as many (one view per step).
    assert "bits=20 contrastive shared tau=0.1 seed=0 steps=250" in result.stdout
    assert "bits=20 vae shared seed=0 steps=500" in result.stdout
    nothing = _run("randbit", "--bit_mode=per_view", "--models=vae", "--dry_run")
    assert nothing.returncode == 2 and "runs nothing" in nothing.stderr


@pytest.mark.slow
def test_randbit_is_deterministic_given_the_seed_and_parallel_workers_agree(tmp_path):
    # A repeated run on one machine gives identical numbers (the benchmarks' bands rely on it);
    # worker processes run with fewer threads each, whose float rounding differs slightly.
    args = [*TINY, "--bits=2", "--temperatures=0.1,0.2", "--num_train=64", "--models=contrastive"]
    args.append("--bit_mode=shared")
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
                "--canvas=26",
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
    # Every study measures its curve's controls by default.
    assert [r["model"] for r in rows] == 2 * ["contrastive", "supervised", "random_init"]
    rows = [r for r in rows if r["model"] == "contrastive"]
    assert rows[0][x] < rows[1][x]
    for row in rows:
        for key in probes:
            assert 0.0 <= row[f"linear_{key}"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "flagfile, experiment, runs",
    [
        # bits x (3 temperatures shared + the VAE + 3 temperatures per-view)
        ("randbit_mnist.flags", "randbit", 5 * (3 + 1 + 3) - 3),  # no per-view run at 0 bits
        ("randbit_cifar10.flags", "randbit", 5 * (3 + 1 + 3) - 3),
        ("randbit_figure5a.flags", "randbit", 5 * (3 + 1)),
        # bits x (contrastive + floor), per-view bits at 5
        ("randbit_grey_shapes.flags", "randbit", 2 * 2 + 1),
        ("multidigits_mnist.flags", "multidigits", 4 * (2 + 1)),
        ("digit_on_images_mnist.flags", "digit_on_images", 5 * 3),
    ],
)
def test_shipped_flagfiles_parse(flagfile, experiment, runs):
    # Paper-scale data and training need TFDS data and an accelerator: check the flags only.
    result = _run(experiment, f"--flagfile={os.path.join(FLAGFILES, flagfile)}", "--dry_run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"[{runs}/{runs}]" in result.stdout


def test_the_grey_shapes_flagfile_runs_at_the_remedies_testbeds_scale():
    with open(os.path.join(FLAGFILES, "randbit_grey_shapes.flags"), encoding="utf-8") as f:
        lines = {line.strip() for line in f if line.startswith("--")}
    assert {f"--{name}={value}" for name, value in randbit.GREY_SHAPES_DEFAULTS.items()} <= lines


def test_flagfiles_are_all_tested():
    assert sorted(os.listdir(FLAGFILES)) == sorted(
        [
            "randbit_mnist.flags",
            "randbit_cifar10.flags",
            "randbit_figure5a.flags",
            "randbit_grey_shapes.flags",
            "multidigits_mnist.flags",
            "digit_on_images_mnist.flags",
        ]
    )


def test_color_shapes_options_reach_the_images_and_the_views():
    options = color_shapes.ColorShapesOptions(
        channel_permutation_prob=1.0,
        shape_offset=0.0,
        light_on_dark=True,
        shape_classes=("diamond", "cross", "disk"),
        radius_range=(0.25, 0.25),
        image_size=16,
        num_train=8,
        num_test=4,
    )
    job = Job({"jitter_strength": 0.5}, "contrastive", PretrainConfig(), None, None, options, {})
    data = color_shapes.build_data(job)
    images = next(iter(data.train.batch(8)))["image"].numpy()
    # Light on dark, centred: the centre pixel is the shape's (0.6-0.9), the corners dark.
    assert (images[:, 8, 8] >= 0.6).all() and (images[:, 0, 0] <= 0.3).all()
    assert data.augment.channel_permutation_prob == 1.0
    assert data.augment.jitter_strength == 0.5
    labels = next(iter(data.test.batch(4)))["labels"]["shape"].numpy()
    assert data.probes == {"shape": 3} and set(labels) <= {0, 1, 2}


@pytest.mark.parametrize("image_size, side", [(None, 28), (14, 14)])
def test_randbit_renders_the_offline_digits_at_image_size(image_size, side):
    job = Job(
        {"bits": 3},
        "contrastive",
        PretrainConfig(),
        None,
        None,
        randbit.RandBitOptions(image_size=image_size),
        {"bit_mode": "shared"},
    )
    data = randbit.build_data(job)
    assert data.input_shape == (side, side, 1 + 3)
    assert next(iter(data.test))["image"].shape == (side, side, 1)


@pytest.mark.parametrize("image_size, side", [(None, 16), (12, 12)])
def test_randbit_on_the_grey_shapes_probes_six_kinds_with_their_augmentation(image_size, side):
    options = randbit.RandBitOptions(dataset="grey_shapes", image_size=image_size)
    job = Job(
        {"bits": 5}, "contrastive", PretrainConfig(), None, None, options, {"bit_mode": "shared"}
    )
    data = randbit.build_data(job)
    assert data.input_shape == (side, side, 1 + 5)
    assert data.probes == {"label": 6, "bit0": 2}
    assert data.augment == grey_shapes_augment() and data.augment.jitter_strength == 0.5
    test = next(iter(data.test.batch(400)))
    assert test["image"].shape == (360, side, side, 1)
    assert set(test["labels"]["label"].numpy()) == set(range(6))


# Runs RandBit's main on the flags given and prints its jobs' data options.
_JOB_OPTIONS = """
import dataclasses, json, sys
from cl_properties.experiments import cli, randbit, suppression

def print_the_options(experiment, jobs, module):
    print(json.dumps([dataclasses.asdict(job.options) for job in jobs]))

suppression.main = print_the_options
randbit.define_flags()
cli.run(randbit.main, sys.argv)
"""


@pytest.mark.parametrize(
    "args, image_size",
    [
        ([], 14),
        (["--dataset=grey_shapes"], None),
        (["--dataset=grey_shapes", "--image_size=20"], 20),
    ],
)
def test_randbit_renders_the_digits_at_the_main_jobs_14_px_and_the_shapes_at_their_own(
    args, image_size
):
    options = _last_json_line(_JOB_OPTIONS, *args)
    assert {o["image_size"] for o in options} == {image_size}


def test_randbit_image_size_is_for_the_offline_datasets_only():
    result = _run("randbit", "--dataset=mnist", "--image_size=14", "--dry_run")
    expected = "--image_size applies to the offline datasets (digits, grey_shapes) only"
    assert result.returncode == 2 and expected in result.stderr
