"""Every bad input to every entry point is one line on stderr naming the flag or file, exit
status 2, no traceback, before any training, and leaves the output folder as it was.

Each case runs the real program (`python -m cl_properties.experiments.<name>`, its
`__main__` path) in a process of its own, forked from a server that has done the imports once
(`_program_server`): a case costs under a second instead of ~4. The output folder of every
case that does not name its own already holds a completed result of another configuration;
after the case its results files are unchanged and nothing else (checkpoints, logs) was
written there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cl_properties.results import write_results

from _program_server import ProgramServer
from _tiny_pretraining import TINY_PRETRAINING

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "experiments" / "smoke" / "cifar_smoke.flags")
# TensorFlow's start-up notes, which no flag silences.
NOISE = ("WARNING: All log messages before absl::InitializeLog()", "I0000", "W0000", "E0000")
TINY = {
    "cifar": TINY_PRETRAINING,
    "imagenet": TINY_PRETRAINING,
    "randbit": [
        "--bits=0",
        "--steps=2",
        "--batch_size=8",
        "--num_train=64",
        "--models=contrastive",
        "--temperatures=0.1",
        "--linear_epochs=1",
        "--knn_k=5",
    ],
    "digit_on_images": [
        "--pool_sizes=1",
        "--steps=2",
        "--batch_size=8",
        "--num_train=32",
        "--num_test=16",
        "--image_size=24",
        "--temperatures=0.1",
        "--linear_epochs=1",
        "--knn_k=5",
    ],
    "multidigits": [
        "--variable_sizes=8",
        "--steps=2",
        "--batch_size=8",
        "--num_train=32",
        "--num_test=16",
        "--canvas=24",
        "--fixed_size=8",
        "--temperatures=0.1",
        "--linear_epochs=1",
        "--knn_k=5",
    ],
    "color_shapes": [
        "--jitter_strengths=0",
        "--steps=2",
        "--batch_size=8",
        "--num_train=32",
        "--num_test=16",
        "--image_size=16",
        "--temperatures=0.1",
        "--linear_epochs=1",
        "--knn_k=5",
    ],
    "local_features": [
        "--steps=2",
        "--batch_size=8",
        "--num_train=16",
        "--num_probe_train=8",
        "--num_probe_test=8",
        "--canvas=24",
        "--digit_size=8",
        "--encoder=convn",
    ],
    "remedies": [
        "--testbeds=color_shapes",
        "--models=contrastive",
        "--steps=2",
        "--batch_size=8",
        "--num_train=32",
        "--num_test=16",
        "--linear_epochs=1",
        "--knn_k=5",
    ],
    "sweep": [],
}
TWO_WORKERS = ["localhost:1", "localhost:2"]

# (program, arguments, TF_CONFIG or None, what the one error line must contain). In the
# arguments and the message, {tmp} is the test's folder, {file} an existing plain file and
# {garbage} a file of random bytes.
CASES = [
    # Values out of range or of the wrong kind, named at parsing.
    ("cifar", ["--loss=triplet"], None, "flag --loss=triplet"),
    ("cifar", ["--learning_rate=nan"], None, "flag --learning_rate=nan: must be a finite number"),
    ("cifar", ["--weight_decay=inf"], None, "flag --weight_decay=inf: must be a finite number"),
    ("cifar", ["--temperature=-0.1"], None, "--temperature must be > 0"),
    ("cifar", ["--batch_size=1"], None, "flag --batch_size=1"),
    ("cifar", ["--num_train=0"], None, "flag --num_train=0"),
    ("cifar", ["--num_train=-1"], None, "flag --num_train=-1"),
    ("cifar", ["--linear_epochs=0"], None, "flag --linear_epochs=0"),
    ("cifar", ["--knn_k=0"], None, "flag --knn_k=0"),
    ("cifar", ["--keep_checkpoints=0"], None, "flag --keep_checkpoints=0"),
    ("cifar", ["--seed=-1"], None, "flag --seed=-1"),
    ("cifar", ["--crop_area_min=0"], None, "--crop_area_min must be in (0, 1]"),
    ("cifar", ["--multi_worker_timeout=0"], None, "flag --multi_worker_timeout=0"),
    ("cifar", ["--loss_scale=0"], None, "--loss_scale must be finite and > 0"),
    ("cifar", ["--experiment=imagenet"], None, "python -m cl_properties.experiments.imagenet"),
    ("cifar", ["cifar10"], None, "unexpected arguments ['cifar10']"),
    ("imagenet", ["--loss=infonce"], None, "flag --loss=infonce"),
    ("imagenet", ["--image_size=4"], None, "flag --image_size=4"),
    # Values that only the data can refute, named before training.
    ("cifar", ["--knn_k=100"], None, "--knn_k=100 is larger than the training set (32 images)"),
    (
        "cifar",
        ["--batch_size=64"],
        None,
        "--batch_size=64 is larger than the training set (32 images)",
    ),
    ("cifar", ["--dataset=cifar10", "--data_dir={tmp}"], None, "is not prepared in data_dir="),
    ("cifar", ["--dataset=bogus"], None, "flag --dataset=bogus"),
    (
        "cifar",
        ["--train_split=train[:10%]"],
        None,
        "--train_split=train[:10%]: shapes has the splits",
    ),
    ("digit_on_images", ["--digits=bogus"], None, "flag --digits=bogus"),
    # Files and folders.
    ("cifar", ["--output_dir={file}"], None, "output folder {file} is an existing file"),
    ("cifar", ["--output_dir={file}/run"], None, "cannot create output folder {file}/run"),
    ("cifar", ["--flagfile={garbage}"], None, "flagfile {garbage} is not a text file"),
    ("cifar", ["--flagfile={tmp}/absent.flags"], None, "absent.flags"),
    ("cifar", [], None, "holds results of another configuration"),
    # Where the run executes.
    ("cifar", ["--strategy=tpu", "--tpu=local"], None, "--tpu=local: no TPU found or reachable"),
    ("cifar", ["--strategy=multi_worker"], "{not json", "TF_CONFIG is not valid JSON"),
    (
        "cifar",
        ["--strategy=multi_worker"],
        {"cluster": {"worker": TWO_WORKERS}, "task": ["worker", 0]},
        'TF_CONFIG "task" must be an object',
    ),
    (
        "cifar",
        ["--strategy=multi_worker"],
        {"cluster": {"worker": TWO_WORKERS}, "task": {"type": "worker", "index": "0"}},
        'TF_CONFIG "task" "index" must be an integer',
    ),
    # The suppression sweeps.
    ("randbit", ["--bits=0,40"], None, "--bits: bits must be"),
    ("randbit", ["--bits=0,a"], None, "--bits must be a list of integers"),
    ("randbit", ["--temperatures=0.1,nan"], None, "--temperatures must be finite numbers"),
    ("randbit", ["--temperatures=0,0.1"], None, "--temperatures must be > 0"),
    ("randbit", ["--temperature=0.3"], None, "--temperatures (a list)"),
    (
        "randbit",
        ["--loss=swd_normal", "--temperatures=0.1"],
        None,
        "--temperatures does not apply to --loss=swd_normal",
    ),
    ("randbit", ["--lambda_weight=2"], None, "--lambda_weight does not apply to --loss=nt_xent"),
    ("randbit", ["--models=contrastive,bogus"], None, "--models must be among"),
    ("randbit", ["--ifm_epsilon=0.2"], None, "--ifm_epsilon does not apply to --loss=nt_xent"),
    (
        "randbit",
        ["--models=ifm", "--loss=decoupled"],
        None,
        "--models=ifm trains ifm beside the contrastive model's NT-Xent: it needs --loss=nt_xent",
    ),
    (
        "randbit",
        ["--models=contrastive,ifm", "--loss=ifm"],
        None,
        "with --loss=ifm the contrastive model is the ifm one",
    ),
    (
        "randbit",
        ["--recon_weight=3"],
        None,
        "--recon_weight applies to --models=recon_hybrid or recon_rotation, none of which is in "
        "--models",
    ),
    (
        "randbit",
        ["--models=contrastive,recon_hybrid", "--recon_weighting=uniform", "--rotation_weight=1"],
        None,
        "--rotation_weight applies to --models=rotation_aux or recon_rotation, none of which is "
        "in --models",
    ),
    ("randbit", ["--models=recon_hybrid", "--recon_weighting=bits"], None, "--recon_weighting"),
    (
        "randbit",
        ["--loss=decoupled", "--models=contrastive,bit_matched"],
        None,
        "BitMatchedContrastiveModel needs a loss of method nt_xent, got 'decoupled'",
    ),
    (
        "randbit",
        ["--models=contrastive", "--floor_inits=3"],
        None,
        "--floor_inits applies to --models=random_init, which is not in --models",
    ),
    ("color_shapes", ["--floor_inits=0"], None, "flag --floor_inits=0"),
    ("multidigits", ["--rotation_weight=-1"], None, "flag --rotation_weight=-1"),
    ("randbit", ["--num_train=-1"], None, "flag --num_train=-1"),
    ("randbit", ["--knn_k=5000"], None, "--knn_k=5000 is larger than the training set (64 images)"),
    (
        "randbit",
        ["--batch_size=128"],
        None,
        "--batch_size=128 is larger than the training set (64 images)",
    ),
    ("randbit", ["--vae_kl_weight=-1"], None, "flag --vae_kl_weight=-1"),
    ("randbit", ["--output_dir={file}"], None, "output folder {file} is an existing file"),
    ("randbit", [], None, "holds results of another configuration"),
    ("digit_on_images", ["--pool_sizes=0,10"], None, "--pool_sizes must be >= 1"),
    ("digit_on_images", ["--crop_area_min=0"], None, "--crop_area_min must be in (0, 1]"),
    (
        "multidigits",
        ["--variable_sizes=8,40"],
        None,
        "--layout: a 8 px and a 40 px digit do not fit side by side on a 24 px canvas with the "
        "sides layout",
    ),
    ("multidigits", ["--layout=grid"], None, "flag --layout=grid"),
    ("multidigits", ["--num_test=0"], None, "flag --num_test=0"),
    ("color_shapes", ["--jitter_strengths=-1,0"], None, "--jitter_strengths must be >= 0"),
    ("color_shapes", ["--jitter_prob=2"], None, "flag --jitter_prob=2"),
    ("color_shapes", ["--models=per_view"], None, "--models must be among contrastive"),
    ("color_shapes", ["--shape_classes=disk,oval"], None, "--shape_classes must be distinct"),
    ("color_shapes", ["--radius_range=0.3,0.2"], None, "--radius_range must be two numbers"),
    ("color_shapes", ["--radius_range=0.2"], None, "--radius_range must be two numbers"),
    # The remedies' comparison (its testbeds' own checks are the experiments' cases).
    ("remedies", ["--testbeds=randbit,bogus"], None, "--testbeds must be distinct values among"),
    ("remedies", ["--temperatures=0.1,0.2"], None, "--temperatures: the table compares"),
    ("remedies", ["--recon_weight=5"], None, "--recon_weight applies to --models=recon_hybrid"),
    ("remedies", ["--num_test=0"], None, "flag --num_test=0"),
    ("remedies", ["--knn_k=50"], None, "--knn_k=50 is larger than the training set (32 images)"),
    ("remedies", [], None, "holds results of another configuration"),
    # Local features.
    ("local_features", ["--ks=0,a"], None, "--ks must be a list of integers"),
    ("local_features", ["--num_probe_train=0"], None, "flag --num_probe_train=0"),
    (
        "local_features",
        ["--checkpoint={garbage}.keras"],
        None,
        "checkpoint '{garbage}.keras' is not a .keras archive",
    ),
    (
        "local_features",
        ["--checkpoint={garbage}.weights.h5"],
        None,
        "'{garbage}.weights.h5' is not an HDF5 weights file",
    ),
    ("local_features", ["--checkpoint={tmp}/absent.keras"], None, "absent.keras' does not exist"),
    ("local_features", [], None, "holds results of another configuration"),
    # The flagfile sweep.
    ("sweep", [], None, "give the flagfiles to run"),
    ("sweep", ["{tmp}/absent.flags"], None, "no such flagfile(s): {tmp}/absent.flags"),
    ("sweep", ["--parallel=0", SMOKE], None, "flag --parallel=0"),
    ("sweep", ["--output_root={file}", SMOKE], None, "output folder {file} is an existing file"),
]


def _id(case) -> str:
    program, args, tf_config, _ = case
    first = args[0].split("=")[0].lstrip("-") if args else "output_folder"
    return f"{program}-{first}" + ("-TF_CONFIG" if tf_config else "")


def _environment(tf_config: str | dict | None = None) -> dict[str, str]:
    """The tests' environment with TensorFlow quiet and on the CPU (read at import: the server
    imports under it too), and TF_CONFIG only when a case gives one."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    return env


@pytest.fixture(scope="module")
def server():
    with ProgramServer(_environment()) as server:
        yield server


def test_at_least_40_bad_inputs_across_every_entry_point():
    assert len(CASES) >= 40 and {case[0] for case in CASES} == set(TINY)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}-{_id(c)}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_leaves_the_output_folder_alone(case, tmp_path, server):
    program, args, tf_config, message = case
    paths = {
        "tmp": str(tmp_path),
        "file": str(tmp_path / "plain.txt"),
        "garbage": str(tmp_path / "garbage"),
    }
    Path(paths["file"]).write_text("not a folder\n")
    for suffix in ("", ".keras", ".weights.h5"):
        Path(paths["garbage"] + suffix).write_bytes(bytes(range(256)) * 8)
    args = [a.format(**paths) for a in args]
    message = message.format(**paths)
    out = tmp_path / "out"  # a completed run of another configuration
    write_results(out, rows=[{"other": 1}], config={"other": True}, seed=0, wall_time_s=1.0)
    before = {name: (out / name).read_bytes() for name in ("results.json", "results.csv")}
    output_flag = "--output_root" if program == "sweep" else "--output_dir"
    if not any(a.startswith(output_flag) for a in args):
        args.append(f"{output_flag}={out}")

    result = server.run(
        f"cl_properties.experiments.{program}",
        [*TINY[program], *args],
        cwd=str(tmp_path),
        env=_environment(tf_config),
        timeout=300,
    )
    lines = [
        line for line in result.stderr.splitlines() if line.strip() and not line.startswith(NOISE)
    ]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
        result.stderr[-3000:]
    )
    assert {name: (out / name).read_bytes() for name in before} == before
    assert set(os.listdir(out)) <= {"results.json", "results.csv", ".lock"}
