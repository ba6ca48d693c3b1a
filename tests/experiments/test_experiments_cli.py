"""Shared experiment flags: range checks at parsing, epochs and warmup epochs as steps, and
no flags defined by importing a program module."""

import os
import subprocess
import sys

import pytest
from absl import flags
from absl.testing import flagsaver

from cl_properties.data import DATASETS
from cl_properties.experiments import cli, randbit

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cli.define_pretrain_flags()


def _config(*args, **kwargs):
    FLAGS(["prog", *args])
    return cli.pretrain_config_from_flags(**kwargs)


@flagsaver.flagsaver
def test_epochs_become_steps_rounded_up_to_whole_loops():
    # 2 epochs of 1000 examples at batch 64: round(31.25) = 31 steps -> 40 (loops of 10).
    config = _config(
        "--epochs=2",
        "--batch_size=64",
        "--steps_per_loop=10",
        "--warmup_epochs=1",
        num_train_examples=1000,
    )
    assert (config.train_steps, config.steps_per_loop) == (40, 10)
    assert config.optimizer.warmup_steps == 16  # round(1000 / 64)
    assert config.optimizer.warmup_fraction is None


@flagsaver.flagsaver
def test_train_steps_are_used_as_given_without_epochs():
    config = _config(
        "--train_steps=30", "--steps_per_loop=100", "--warmup_fraction=0.1", num_train_examples=1000
    )
    assert (config.train_steps, config.steps_per_loop) == (30, 30)
    assert (config.optimizer.warmup_fraction, config.optimizer.warmup_steps) == (0.1, None)


@pytest.mark.parametrize(
    "args,size,message",
    [
        (["--epochs=1"], None, "needs the training-set size"),
        (["--warmup_epochs=1", "--train_steps=100"], None, "needs the training-set size"),
        (["--epochs=1", "--warmup_epochs=2"], 640, "longer than the run"),
        (["--epochs=3", "--warmup_epochs=1", "--warmup_fraction=0.1"], 640, "not both"),
    ],
)
@flagsaver.flagsaver
def test_inconsistent_run_length_flags_raise(args, size, message):
    with pytest.raises(ValueError, match=message):
        _config("--batch_size=64", *args, num_train_examples=size)


@flagsaver.flagsaver
def test_loss_scale_reaches_the_loss_config():
    assert _config().loss.arguments == {"scale": 1.0}  # the loss's preset otherwise
    assert _config("--loss_scale=2", "--temperature=0.3").loss.arguments == {
        "temperature": 0.3,
        "scale": 2.0,
    }


@pytest.mark.parametrize(
    "args, entry_presets, temperature, lambda_weight",
    [
        ([], None, 0.1, None),  # NT-Xent has no lambda
        (["--loss=decoupled"], None, 1.0, 0.1),  # its own tau, not NT-Xent's
        (["--loss=decoupled"], {"nt_xent": {"temperature": 0.2}}, 1.0, 0.1),
        ([], {"nt_xent": {"temperature": 0.2}}, 0.2, None),  # the entry point's NT-Xent
        (["--temperature=0.3"], {"nt_xent": {"temperature": 0.2}}, 0.3, None),
        (["--loss=swd_normal"], None, None, 5.0),  # SWD has no temperature
        (["--loss=swd_normal", "--lambda_weight=2"], None, None, 2.0),
    ],
)
@flagsaver.flagsaver
def test_each_loss_takes_its_own_parameters(args, entry_presets, temperature, lambda_weight):
    FLAGS(["prog", *args])
    resolved = cli.loss_config_from_flags(entry_presets).resolved()
    assert resolved.get("temperature") == temperature
    assert resolved.get("lambda_weight") == lambda_weight


@flagsaver.flagsaver
def test_ifm_flags_reach_the_loss_config():
    FLAGS(["prog", "--loss=ifm"])
    preset = cli.loss_config_from_flags().resolved()
    assert (preset["temperature"], preset["epsilon"], preset["alpha"]) == (0.1, 0.1, 1.0)
    FLAGS(["prog", "--loss=ifm", "--ifm_epsilon=0.3", "--ifm_alpha=0.5", "--temperature=0.2"])
    loss = cli.loss_config_from_flags().build(seed=0)
    assert (loss.method, loss.temperature, loss.epsilon, loss.alpha) == ("ifm", 0.2, 0.3, 0.5)


@flagsaver.flagsaver
def test_a_run_of_two_losses_gives_each_the_flags_it_has():
    # A suppression experiment's --models=ifm beside the contrastive model's --loss=nt_xent.
    FLAGS(["prog", "--ifm_epsilon=0.3", "--loss_candidates=cross_view", "--loss_scale=2"])
    run_losses = {"--loss=nt_xent": "nt_xent", "--models=ifm": "ifm"}
    nt_xent = cli.loss_config_from_flags(run_losses=run_losses)
    ifm = cli.loss_config_from_flags(name="ifm", run_losses=run_losses)
    assert nt_xent.arguments == {"candidates": "cross_view", "scale": 2.0}
    assert ifm.arguments == {"epsilon": 0.3, "candidates": "cross_view", "scale": 2.0}
    FLAGS(["prog", "--lambda_weight=0.5"])
    with pytest.raises(
        ValueError,
        match="--lambda_weight does not apply to --loss=nt_xent or --models=ifm, which have no",
    ):
        cli.loss_config_from_flags(name="ifm", run_losses=run_losses)


def test_the_official_colab_options_reach_the_config():
    with flagsaver.flagsaver():
        default = _config()
    assert default.loss.resolved()["candidates"] == "all"
    assert (default.bn_views, default.probe_views) == ("joint", "both")
    with flagsaver.flagsaver():
        config = _config(
            "--loss_candidates=cross_view", "--bn_views=separate", "--probe_views=first"
        )
    assert config.loss.resolved()["candidates"] == "cross_view"
    assert (config.bn_views, config.probe_views) == ("separate", "first")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loss=swd_normal", "--temperature=0.1"], "--temperature does not apply to "),
        (["--lambda_weight=0.5"], "--lambda_weight does not apply to --loss=nt_xent"),
        (["--loss=decoupled", "--loss_candidates=cross_view"], "which has no candidates"),
        (["--ifm_epsilon=0.2"], "--ifm_epsilon does not apply to --loss=nt_xent"),
        (["--loss=decoupled", "--ifm_alpha=2"], "--ifm_alpha does not apply to --loss=decoupled"),
    ],
)
@flagsaver.flagsaver
def test_a_parameter_the_loss_lacks_is_an_error_naming_the_flag(args, message):
    FLAGS(["prog", *args])
    with pytest.raises(ValueError, match=message):
        cli.loss_config_from_flags()


@pytest.mark.parametrize(
    "arg",
    [
        "--temperature=0",
        "--batch_size=1",
        "--head_depth=-1",
        "--lambda_weight=-1",
        "--ifm_epsilon=-0.1",
        "--ifm_alpha=-1",
        "--loss=triplet",
        "--epochs=-1",
        "--loss_scale=0",
        "--loss_scale=-2",
        "--loss_scale=inf",
    ],
)
@flagsaver.flagsaver
def test_out_of_range_values_fail_at_parsing_naming_the_flag(arg):
    with pytest.raises(flags.IllegalFlagValueError, match=arg.split("=")[0].lstrip("-")):
        FLAGS(["prog", arg])


@flagsaver.flagsaver
def test_model_dir_is_an_alias_of_output_dir():
    FLAGS(["prog", "--model_dir=/tmp/somewhere"])
    assert FLAGS.output_dir == "/tmp/somewhere"


def test_a_run_of_another_configuration_blocks_its_folder(tmp_path):
    from cl_properties.experiments import runtime
    from cl_properties.results import OutputDirError, write_results

    config = {
        "flags": {"seed": 0, "strategy": "tpu", "tpu": "tpu-a", "output_dir": "x"},
        "augment": {"crop_area_min": 0.08},
    }
    write_results(tmp_path, rows=[], config=config, seed=0, wall_time_s=0, status="interrupted")
    # A preempted run may come back elsewhere: its checkpoints decide whether it resumes.
    assert (
        runtime.completed_run(
            str(tmp_path), {**config, "flags": {**config["flags"], "strategy": "mirrored"}}
        )
        is None
    )
    # Other data, augmentation or evaluation (which checkpoints do not record): refused.
    with pytest.raises(OutputDirError, match=r"augment.crop_area_min: 0.08 -> 0.5"):
        runtime.completed_run(str(tmp_path), {**config, "augment": {"crop_area_min": 0.5}})
    write_results(tmp_path, rows=[{"a": 1}], config=config, seed=0, wall_time_s=0)
    same = {**config, "flags": {**config["flags"], "tpu": "tpu-b", "output_dir": "y"}}
    assert runtime.completed_run(str(tmp_path), same)["rows"] == [{"a": 1}]
    with pytest.raises(OutputDirError, match=r"flags.seed: 0 -> 1"):
        runtime.completed_run(str(tmp_path), {**config, "flags": {**config["flags"], "seed": 1}})


def test_a_started_run_records_its_settings_so_a_killed_one_resumes_only_under_them(tmp_path):
    from cl_properties.experiments import runtime
    from cl_properties.results import OutputDirError, read_results

    config = {"flags": {"seed": 0, "output_dir": "x"}, "augment": {"crop_area_min": 0.08}}
    assert runtime.start_run(str(tmp_path / "worker"), config, seed=0, chief=False) is None
    assert not (tmp_path / "worker").exists()  # only the chief writes
    assert runtime.start_run(str(tmp_path), config, seed=0) is None
    assert read_results(tmp_path)["status"] == "running"
    # Killed here (no results written on the way out): a rerun under other settings is refused.
    with pytest.raises(OutputDirError, match=r"augment.crop_area_min: 0.08 -> 0.5"):
        runtime.start_run(str(tmp_path), {**config, "augment": {"crop_area_min": 0.5}}, seed=0)
    assert runtime.start_run(str(tmp_path), config, seed=0) is None  # the same: it resumes


def test_dataset_flags_choose_among_registered_datasets():
    assert set(cli.DIGIT_DATASETS) <= set(DATASETS)
    assert set(randbit.DATASET_CHOICES) <= set(DATASETS)


def test_importing_a_program_module_defines_no_flags():
    # One flag convention: programs define their flags under __main__ (`define_flags`), so
    # tests, workers and benchmarks can import any of them together.
    code = (
        "import importlib, pkgutil\n"
        "import absl.logging, tensorflow, tensorflow_datasets  # define flags of their own\n"
        "from absl import flags\n"
        "import cl_properties.experiments as package\n"
        "before = set(flags.FLAGS)\n"
        "for module in pkgutil.iter_modules(package.__path__):\n"
        "    importlib.import_module(f'cl_properties.experiments.{module.name}')\n"
        "print(sorted(set(flags.FLAGS) - before))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
