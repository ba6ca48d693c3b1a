"""The cifar and imagenet entry points: datasets as DataSpecs, what a run writes, and bad
flag values reported as one line with exit status 2.

Runs are in-process inside a flagsaver (absl flags are process-global); one test checks the
real `python -m` program in a subprocess.
"""

import csv
import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds
from absl import flags
from absl.testing import flagsaver

from cl_properties.experiments import cifar, imagenet, pretraining
from cl_properties.results import read_results

from _tiny_pretraining import TINY_PRETRAINING

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = TINY_PRETRAINING


def _launch(experiment, *args):
    """Runs the program in-process; returns its exit status (0 for success)."""
    with flagsaver.flagsaver():
        with pytest.raises(SystemExit) as exit_info:
            pretraining.launch(experiment, ["prog", *args])
    return exit_info.value.code or 0


@pytest.mark.slow
def test_run_writes_results_with_config_versions_and_all_three_evaluations(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # the default output directory is relative: runs/cifar/...
    assert _launch(cifar.EXPERIMENT, *TINY, "--head_depth=1", "--seed=3") == 0
    output_dir = tmp_path / "runs" / "cifar" / "shapes_convn_nt_xent_head1_seed3"
    with open(output_dir / "results.json", encoding="utf-8") as f:
        document = json.load(f)
    assert (
        document["status"] == "completed" and document["seed"] == 3 and document["wall_time_s"] > 0
    )
    versions = document["versions"]
    assert {"keras", "numpy", "python"} <= set(versions) and {"tensorflow", "tensorflow-cpu"} & set(
        versions
    )
    config = document["config"]
    assert config["flags"]["dataset"] == "shapes" and config["flags"]["experiment"] == "cifar"
    assert config["pretrain"]["head"]["depth"] == 1 and config["pretrain"]["seed"] == 3
    # cifar's defaults: tau 0.2, 64-d output, LARS with sqrt scaling, jitter 0.5, no blur.
    assert (
        config["pretrain"]["loss"]["arguments"]["temperature"] == 0.2
        and config["pretrain"]["head"]["output_dim"] == 64
    )
    assert config["pretrain"]["optimizer"]["lr_scaling"] == "sqrt"
    assert (config["augment"]["jitter_strength"], config["augment"]["blur"]) == (0.5, False)
    assert config["data"] == {
        "dataset": "shapes",
        "train_examples": 32,
        "test_examples": 16,
        "input_shape": [32, 32, 3],
        "probes": {"label": 4},
    }
    assert document["distribution"]["replicas"] == 1 and len(document["history"]["loss"]) == 1
    (row,) = document["rows"]
    for kind in ("online", "linear", "knn"):
        assert 0.0 <= row[f"{kind}_label"] <= 1.0
    with open(output_dir / "results.csv", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["linear_label"] == str(row["linear_label"])
    assert list((output_dir / "logs" / "train").glob("events.out.tfevents.*")), (
        "no TensorBoard summaries"
    )
    out, err = capsys.readouterr()
    assert (
        "linear_label" in out.splitlines()[-2]
        and "wrote runs/cifar/shapes_convn_nt_xent_head1_seed3" in err
    )


@pytest.mark.slow
def test_a_completed_run_is_reported_not_repeated_and_no_corrupt_checkpoint_wipes_it(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    args = [*TINY, f"--output_dir={out}"]
    assert _launch(cifar.EXPERIMENT, *args) == 0
    finished = {name: (out / name).read_bytes() for name in ("results.json", "results.csv")}
    last = sorted((out / "checkpoints").glob("ckpt-*.weights.h5"))[-1]
    last.write_bytes(last.read_bytes()[:100])  # truncated: a disk full, a bad copy
    capsys.readouterr()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a completed run was trained or evaluated again")

    with monkeypatch.context() as patch:
        patch.setattr(pretraining, "train_and_evaluate", must_not_run)
        assert _launch(cifar.EXPERIMENT, *args) == 0  # the same command: reported, not repeated
        printed, err = capsys.readouterr()
        assert (
            f"{out} holds this run, completed (results.json); pass --fresh" in err
            and "linear_label" in printed
        )
        assert (
            _launch(cifar.EXPERIMENT, *args, "--linear_epochs=2") == 2
        )  # another configuration: refused
        err = capsys.readouterr().err
        assert (
            f"{out} holds results of another configuration (evaluation.linear_epochs: 1 -> 2" in err
        )
    assert {name: (out / name).read_bytes() for name in finished} == finished

    assert (
        _launch(cifar.EXPERIMENT, *args, "--fresh") == 0
    )  # starts over, past the corrupt checkpoint
    assert (
        read_results(out)["status"] == "completed" and read_results(out)["resumed_from_step"] == 0
    )


BAD_FLAGS = [
    (["--loss=triplet"], "flag --loss=triplet"),
    (["--encoder=vgg16"], "flag --encoder=vgg16"),
    (["--temperature=-0.1"], "--temperature must be > 0"),
    (["--batch_size=1"], "flag --batch_size=1"),
    (["--head_depth=-1"], "flag --head_depth=-1"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["cifar10"], "unexpected arguments ['cifar10']"),
    (["--experiment=imagenet"], "python -m cl_properties.experiments.imagenet"),
    (["--strategy=tpu"], "needs a TPU address"),
    (["--epochs=1", "--warmup_epochs=10"], "longer than the run"),
    (["--train_steps=3"], "must be a multiple of steps_per_loop"),
    (["--dataset=cifar10", "--data_dir={tmp}"], "is not prepared in data_dir="),
    (["--loss=swd_normal", "--temperature=0.2"], "--temperature does not apply to --loss=swd"),
]


@pytest.mark.parametrize(
    "args,message", BAD_FLAGS, ids=[a[0].split("=")[0].lstrip("-") for a, _ in BAD_FLAGS]
)
def test_bad_flag_values_are_one_line_errors_with_status_2(args, message, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in args]
    assert _launch(cifar.EXPERIMENT, *TINY, f"--output_dir={tmp_path / 'out'}", *args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.slow
def test_program_reports_a_bad_flag_in_one_line_and_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "cl_properties.experiments.imagenet", "--loss=infonce"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 2
    lines = [
        line
        for line in result.stderr.splitlines()
        if not line.startswith(("WARNING: All log messages", "I0000", "E0000"))
    ]
    assert len(lines) == 1 and lines[0].startswith("error: flag --loss=infonce"), result.stderr


def _augment():
    return pretraining.augment_config(
        crop=True, crop_area_min=0.08, flip=True, color_jitter=True, jitter_strength=1.0, blur=True
    )


def test_shapes_are_generated_at_the_image_size_and_do_not_depend_on_the_run():
    data = pretraining.load_data(
        "shapes", augment=_augment(), image_size=24, num_train=8, num_test=4
    )
    assert data.input_shape == (24, 24, 3) and data.probes == {"label": 4}
    assert data.augment.output_size is None  # generated at 24 px: no resize
    assert data.eval_preprocess.output_size is None
    assert (int(data.train.cardinality()), int(data.test.cardinality())) == (8, 4)
    again = pretraining.load_data(
        "shapes", augment=_augment(), image_size=24, num_train=8, num_test=4
    )
    first, second = (next(iter(d.train.batch(8)))["image"].numpy() for d in (data, again))
    assert (first == second).all()


def test_digits_have_one_channel_and_their_fixed_split():
    data = pretraining.load_data("digits", augment=_augment(), eval_crop_proportion=0.875)
    assert data.input_shape == (28, 28, 1) and data.probes == {"label": 10}
    assert (int(data.train.cardinality()), int(data.test.cardinality())) == (1437, 360)
    # A central crop at evaluation is resized back to the encoder's input size.
    assert (data.eval_preprocess.output_size, data.eval_preprocess.crop_proportion) == (
        (28, 28),
        0.875,
    )


def test_tfds_datasets_take_their_class_counts_from_the_metadata_and_resize_to_image_size():
    with tfds.testing.mock_data(num_examples=4):
        data = pretraining.load_data("cifar100", augment=_augment(), image_size=24)
        assert data.probes == {"label": 100, "coarse_label": 20}
        assert data.input_shape == (24, 24, 3)
        assert data.augment.output_size == 24 and data.eval_preprocess.output_size == (24, 24)
        native = pretraining.load_data("cifar10", augment=_augment())
        assert native.input_shape == (32, 32, 3) and native.augment.output_size is None


def test_varying_size_dataset_needs_an_image_size():
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="varying size: give --image_size"):
            pretraining.load_data("tf_flowers", augment=_augment())
        data = pretraining.load_data("tf_flowers", augment=_augment(), image_size=32)
        assert data.input_shape == (32, 32, 3) and data.probes == {"label": 5}


@pytest.mark.parametrize(
    "loss, temperature, lambda_weight",
    [("nt_xent", 0.2, None), ("decoupled", 1.0, 0.1), ("swd_normal", None, 5.0)],
)
def test_a_run_trains_and_records_its_loss_own_parameters(
    loss, temperature, lambda_weight, tmp_path
):
    # cifar's tau 0.2 is NT-Xent's: decoupled keeps its 1.0, SWD (no temperature) records none.
    out = tmp_path / "out"
    assert _launch(cifar.EXPERIMENT, *TINY, f"--loss={loss}", f"--output_dir={out}") == 0
    row = read_results(out)["rows"][0]
    assert (row["temperature"], row["lambda_weight"]) == (temperature, lambda_weight)
    assert row["linear_protocol"] == "frozen"


def test_entry_points_differ_in_their_paper_defaults():
    cifar_defaults, imagenet_defaults = cifar.EXPERIMENT.defaults, imagenet.EXPERIMENT.defaults
    assert (cifar_defaults["dataset"], imagenet_defaults["dataset"]) == ("cifar10", "imagenet2012")
    assert (cifar_defaults["encoder"], imagenet_defaults["encoder"]) == ("resnet18", "resnet50")
    assert (cifar_defaults["batch_size"], imagenet_defaults["batch_size"]) == (128, 1024)
    # CIFAR's tau 0.2 is NT-Xent's only: a flag default would reach every loss.
    assert "temperature" not in cifar_defaults and "temperature" not in imagenet_defaults
    assert cifar.EXPERIMENT.loss_presets == {"nt_xent": {"temperature": 0.2}}
    assert (cifar_defaults["blur"], imagenet_defaults["blur"]) == (False, True)
    with pytest.raises(ValueError, match="experiment must be one of"):
        pretraining.Experiment(name="mnist", defaults={})
