"""Every shipped flagfile of the cifar and imagenet entry points (experiments/figure1/,
experiments/smoke/) parses, says what it should, and runs its entry point's main in-process
for 2 steps on tiny offline data, so that none can rot.

Runs are in-process (absl flags are process-global: each run parses inside a flagsaver,
which restores every flag's value and default afterwards) from the repository root, where
nested --flagfile paths are resolved.
"""

import glob
import json
import os

import pytest
from absl import flags
from absl.testing import flagsaver

from cl_properties.experiments import cifar, imagenet, pretraining
from cl_properties.experiments.sweep import entry_point

from _tiny_pretraining import TINY_PRETRAINING

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = sorted(
    os.path.relpath(path, ROOT)
    for folder in ("figure1", "smoke")
    for path in glob.glob(os.path.join(ROOT, "experiments", folder, "*.flags"))
)
FIGURE1_RUNS = [
    f for f in FLAGFILES if f.startswith("experiments/figure1/") and not f.endswith("_base.flags")
]
EXPERIMENTS = {"cifar": cifar.EXPERIMENT, "imagenet": imagenet.EXPERIMENT}
# Tiny offline data and 2 steps; ConvN instead of the files' ResNet-50 (measured: a 2-step
# run costs ~21 CPU-seconds with ResNet-50, ~2 with ConvN, and the 44 runs must fit in a few
# minutes on 2 cores); the paper-scale epoch counts are switched off for --train_steps.
TINY = [*TINY_PRETRAINING, "--image_size=32", "--fresh"]
PLAIN_VIEWS = ["--crop=false", "--flip=false", "--color_jitter=false", "--blur=false"]
# The paper's five members of the loss family (registry names), one flagfile each per depth.
FIGURE1_LOSSES = ("nt_xent", "decoupled", "swd_hypersphere", "swd_hypercube", "swd_normal")
# Paper-notes section 2 (Figure 1 setup) and section 1 (each loss's parameters).
PAPER = {
    "cifar10": dict(
        dataset="cifar10", batch_size=128, learning_rate=0.2, head_output_dim=64, nt_xent_tau=0.2
    ),
    "imagenet": dict(
        dataset="imagenet2012",
        batch_size=1024,
        learning_rate=0.075,
        head_output_dim=128,
        nt_xent_tau=0.1,
    ),
}


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _parse(flagfile: str, *overrides: str) -> pretraining.Experiment:
    """Parses `flagfile` as its entry point would (call inside a flagsaver)."""
    experiment = EXPERIMENTS[entry_point(flagfile)]
    pretraining.apply_defaults(experiment)
    FLAGS(["prog", f"--flagfile={flagfile}", *overrides])
    return experiment


def _run(flagfile: str, *overrides: str) -> None:
    with flagsaver.flagsaver():
        experiment = EXPERIMENTS[entry_point(flagfile)]
        with pytest.raises(SystemExit) as exit_info:
            pretraining.launch(experiment, ["prog", f"--flagfile={flagfile}", *overrides])
    assert not exit_info.value.code, f"{flagfile} exited with {exit_info.value.code}"


def test_figure1_has_one_flagfile_per_dataset_loss_and_head_depth():
    expected = {
        f"experiments/figure1/{d}_{loss}_head{depth}.flags"
        for d in PAPER
        for loss in FIGURE1_LOSSES
        for depth in range(4)
    }
    assert set(FIGURE1_RUNS) == expected
    assert {"experiments/smoke/cifar_smoke.flags", "experiments/smoke/imagenet_smoke.flags"} <= set(
        FLAGFILES
    )


@pytest.mark.parametrize("flagfile", FIGURE1_RUNS)
def test_figure1_flagfile_sets_the_paper_settings(flagfile):
    dataset, rest = os.path.basename(flagfile)[: -len(".flags")].split("_", 1)
    loss, depth = rest.rsplit("_head", 1)
    paper = PAPER[dataset]
    with flagsaver.flagsaver():
        experiment = _parse(flagfile)
        assert experiment.name == ("cifar" if dataset == "cifar10" else "imagenet")
        assert (FLAGS.loss, FLAGS.head_depth) == (loss, int(depth))
        assert (FLAGS.dataset, FLAGS.batch_size, FLAGS.head_output_dim) == (
            paper["dataset"],
            paper["batch_size"],
            paper["head_output_dim"],
        )
        assert (FLAGS.encoder, FLAGS.optimizer, FLAGS.lr_scaling) == ("resnet50", "lars", "sqrt")
        assert FLAGS.learning_rate == paper["learning_rate"]
        assert (FLAGS.weight_decay, FLAGS.warmup_epochs, FLAGS.lr_schedule) == (
            1e-6,
            10.0,
            "cosine",
        )
        assert FLAGS.epochs > 0 and FLAGS.global_bn
        # SimCLR's add_contrastive_loss is twice our NT-Xent; the colab's generalized loss is not.
        assert FLAGS.loss_scale == (2.0 if loss == "nt_xent" else 1.0)
        if loss == "nt_xent":
            assert FLAGS.temperature == paper["nt_xent_tau"]
        elif loss == "decoupled":
            assert (FLAGS.temperature, FLAGS.lambda_weight) == (1.0, 0.1)
        else:
            assert FLAGS.lambda_weight == 5.0


def test_flagfile_values_override_the_entry_point_defaults_and_the_command_line_overrides_both():
    with flagsaver.flagsaver():
        _parse("experiments/figure1/cifar10_decoupled_head1.flags", "--head_depth=3")
        assert FLAGS.encoder == "resnet50"  # base flagfile over cifar's default resnet18
        assert FLAGS.temperature == 1.0  # the run flagfile sets decoupled's own tau
        assert FLAGS.head_depth == 3  # command line over the flagfile


@pytest.mark.slow
@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_flagfile_runs_two_steps_on_tiny_data(flagfile, tmp_path):
    with flagsaver.flagsaver():
        _parse(flagfile)
        expected = (FLAGS.experiment, FLAGS.loss, FLAGS.head_depth)
        # The loss's flags over the entry point's preset for it (cifar's NT-Xent tau 0.2).
        arguments = {
            **EXPERIMENTS[FLAGS.experiment].loss_presets.get(FLAGS.loss, {}),
            **{
                name: FLAGS[name].value
                for name in ("temperature", "lambda_weight")
                if FLAGS[name].value is not None
            },
            "scale": FLAGS.loss_scale,
        }
    # Figure 1's 40 run files add a loss, its parameters and a head depth to their base: they
    # run those with plain views and online probes only. The base and smoke flagfiles run
    # everything: their augmentation, linear evaluation and kNN.
    full = "figure1/" not in flagfile or flagfile.endswith("_base.flags")
    cheap = [] if full else ["--offline_eval=false", *PLAIN_VIEWS]
    _run(flagfile, *TINY, *cheap, f"--output_dir={tmp_path}")
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        document = json.load(f)
    assert document["status"] == "completed"
    (row,) = document["rows"]
    assert (row["experiment"], row["loss"], row["head_depth"]) == expected
    pretrain = document["config"]["pretrain"]
    assert pretrain["loss"] == {"name": expected[1], "arguments": arguments}
    assert pretrain["train_steps"] == 2 and row["dataset"] == "shapes"
    assert set(("online_label", "linear_label", "knn_label") if full else ("online_label",)) <= set(
        row
    )
