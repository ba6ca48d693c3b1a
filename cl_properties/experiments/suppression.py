"""The feature-suppression experiments' shared program layer (paper section 4): flags ->
typed options -> jobs, then `job_runner.run_jobs`.

RandBit, DigitOnImages, MultiDigits and colour shapes are each a grid: points of a knob
(bits, K, digit size, jitter strength) x variants of the data (RandBit's --bit_mode) x models
-> one row of probe accuracies per point, variant, model and temperature. An experiment
module supplies an `Experiment` (its data builder and plot axes), its typed options and its
points; this module defines the flags every one of them shares, turns them into jobs, and
runs the program (lock, resume, table, plots, example views).

Models (`job_runner.TRAINERS`):
- contrastive: the `ContrastiveModel` through `cl_properties.training.train_and_evaluate`,
  once per temperature of --temperatures;
- ifm: the same model and training with the IFM loss (implicit feature modification,
  Robinson et al. 2021) at --ifm_epsilon / --ifm_alpha, once per temperature, beside
  NT-Xent (--loss=nt_xent);
- recon_hybrid, rotation_aux, recon_rotation: the same model and training with auxiliary
  terms added to the loss (`cl_properties.models.AUXILIARIES`): reconstruction of each
  augmented view (--recon_weight, --recon_weighting), rotation prediction (--rotation_weight)
  or both, once per temperature;
- bit_matched: an oracle control, NT-Xent with extra negatives that carry the anchor's own
  appended channels (RandBit's bits) on other images' pixels, once per temperature (needs an
  NT-Xent --loss); `job_runner.CONTRASTIVE_FAMILY` lists this family;
- vae, supervised, random_init: the references of `cl_properties.training.baselines` (the
  reconstruction model; the upper reference, trained on the first probe label; the floor,
  the encoder untrained).
Every model is probed the same way (`cl_properties.training.probe_frozen_features`): linear
classifier and kNN on frozen features of the un-augmented train/test images (`linear_<key>`,
`knn_<key>`); the contrastive family also reports its online probes (`online_<key>`).

Flags are defined only when an experiment runs as a program (`define_flags` under
`__main__`), so importing an experiment module (tests, workers, benchmarks) defines none.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from absl import flags

from cl_properties.experiments import cli, runtime
from cl_properties.experiments.job_runner import (
    CONTRASTIVE_FAMILY,
    MODELS,
    PARAMETER_COLUMNS,
    Experiment,
    Job,
    run_jobs,
    save_examples,
    table,
)
from cl_properties.losses import RECON_WEIGHTINGS, loss_uses
from cl_properties.results import lock_output_dir, previous_results, remove_results
from cl_properties.training import AuxiliaryConfig, EvalConfig, PretrainConfig
from cl_properties.training.baselines import BIT_WEIGHTINGS, VaeConfig

FLAGS = flags.FLAGS

# ----------------------------------------------------------------------------------------
# Flags: defined by `define_flags` when an experiment runs as a program.

# The RandBit colab's optimization (Adam 1e-3, polynomial decay to 0, head 256 -> 64) at the
# CPU scale of the embedded defaults (300 steps of batch 256).
_PRETRAIN_DEFAULTS = {
    "encoder": "convn",
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "lr_scaling": "none",
    "lr_schedule": "polynomial",
    "weight_decay": 0.0,
    "head_depth": 2,
    "head_hidden_dim": 256,
    "head_output_dim": 64,
    "batch_size": 256,
    "train_steps": 300,
}


def define_flags(*, temperatures: Sequence[float], models: Sequence[str], **defaults: Any) -> None:
    """Defines the pretraining flags (`cli.define_pretrain_flags`) and the sweep's own:
    --temperatures, --models, the remedies' --recon_weight, --recon_weighting and
    --rotation_weight, --workers, --linear_epochs, --knn_k, --vae_*, --data_dir;
    `defaults` (flag name -> value) override the study's defaults of any of them. --steps is
    --train_steps."""
    cli.define_pretrain_flags()
    flags.DEFINE_alias("steps", "train_steps")
    flags.DEFINE_list(
        "temperatures",
        [f"{t:g}" for t in temperatures],
        "Temperatures of the contrastive models, remedies included (one line each); replaces "
        "--temperature. The default is this study's NT-Xent sweep (IFM's too): with another "
        "--loss and no --temperatures, the loss's own temperature (decoupled 1.0; the SWD "
        "losses have none).",
    )
    flags.DEFINE_list(
        "models",
        list(models),
        f"Models, among {', '.join(MODELS)}. Remedies, the contrastive model and training "
        "with, at every temperature: ifm, the IFM loss (--ifm_epsilon, --ifm_alpha; default its "
        "preset, 0.1 and 1) beside --loss=nt_xent; recon_hybrid, + a reconstruction of each "
        "augmented view (--recon_weight, --recon_weighting); rotation_aux, + rotation "
        "prediction on a rotated view (--rotation_weight; square images only); recon_rotation, "
        "both (those three flags; channels weighed alike by default). Oracle: "
        "bit_matched, NT-Xent + negatives with the anchor's own bits on other images' pixels.",
    )
    flags.DEFINE_float(
        "recon_weight",
        None,
        "--models=recon_hybrid, recon_rotation: weight lambda of the reconstruction term "
        "(default: the preset, 10, as calibrated for recon_hybrid).",
        lower_bound=0.0,
    )
    flags.DEFINE_enum(
        "recon_weighting",
        None,
        list(RECON_WEIGHTINGS),
        "--models=recon_hybrid, recon_rotation: channel weights of the reconstruction: groups = "
        "the image's channels and the appended ones (RandBit's bits) weigh as two groups; "
        "uniform = every channel alike (default: groups for recon_hybrid, uniform for "
        "recon_rotation, which then knows nothing of the nuisance).",
    )
    flags.DEFINE_float(
        "rotation_weight",
        None,
        "--models=rotation_aux, recon_rotation: weight lambda of the rotation cross-entropy "
        "(default: the preset, 10, as calibrated for rotation_aux).",
        lower_bound=0.0,
    )
    flags.DEFINE_integer(
        "workers",
        0,
        "Runs at once, each in its own process with cores/workers threads (0: half the cores, at "
        "most the number of runs; 1: in this process, in order).",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "linear_epochs", 90, "Epochs of the offline linear probe on frozen features.", lower_bound=1
    )
    cli.define_linear_protocol_flag()
    flags.DEFINE_integer(
        "knn_k", 200, "Neighbours of the kNN probe (at most the training images).", lower_bound=1
    )
    flags.DEFINE_integer("vae_latent_dim", 64, "VAE latent size.", lower_bound=1)
    flags.DEFINE_float("vae_kl_weight", 1.0, "VAE KL weight beta (1: the ELBO).", lower_bound=0.0)
    flags.DEFINE_enum(
        "vae_bit_weighting",
        "group",
        list(BIT_WEIGHTINGS),
        "VAE reconstruction weight of the appended bit planes: group = all planes together as "
        "much as the image; bit = each bit once; pixel = plain summed BCE (the planes dominate).",
    )
    flags.DEFINE_integer(
        "vae_steps",
        None,
        "VAE training steps (default: twice --steps: the VAE sees one view per step, so it "
        "then trains on as many images as the contrastive model's two views).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "floor_inits",
        1,
        "Random initializations the random-init floor (--models=random_init) averages its "
        "probes over (1: the run's seed alone; one init's probe is a noisy control: 0.51-0.62 "
        "over six inits on the colour shapes).",
        lower_bound=1,
    )
    flags.DEFINE_string("data_dir", None, "TFDS data_dir for TFDS datasets (never downloads).")
    flags.DEFINE_bool(
        "dry_run", False, "Print the runs the flags describe and exit without training."
    )
    flags.DEFINE_bool(
        "fresh",
        False,
        "Delete the output folder's earlier results and measure every run again (default: keep "
        "the runs already in results.json, measured with the same settings, and measure the "
        "rest).",
    )
    for name, value in {**_PRETRAIN_DEFAULTS, **defaults}.items():
        FLAGS.set_default(name, value)


# The losses the study's NT-Xent sweep (--temperatures' default values) is for: NT-Xent and
# the contrastive family's own losses, its remedies (IFM perturbs NT-Xent's logits).
_SWEPT_LOSSES = ("nt_xent", *filter(None, (m.loss for m in CONTRASTIVE_FAMILY.values())))


def _temperatures() -> list[float | None]:
    """The contrastive family's temperatures: --temperatures for a loss that has one (its
    default values are NT-Xent's, for `_SWEPT_LOSSES`); None (the loss's own) for another
    loss without the flag."""
    if not loss_uses(FLAGS.loss, "temperature"):
        if FLAGS["temperatures"].present:
            raise ValueError(
                f"--temperatures does not apply to --loss={FLAGS.loss}, which has no temperature"
            )
        return [None]
    if FLAGS.loss not in _SWEPT_LOSSES and not FLAGS["temperatures"].present:
        return [None]
    return cli.list_flag("temperatures", float, positive=True)


def _auxiliary_configs(models: Sequence[str]) -> dict[str, AuxiliaryConfig]:
    """Model -> its auxiliary objective, for the family members of `models` that have one,
    with the arguments their flags (their `columns`) give. ValueError naming the flag when it
    belongs to a member that `models` lacks."""
    configs = {}
    for model, member in CONTRASTIVE_FAMILY.items():
        given = {c: FLAGS[c].value for c in member.columns if FLAGS[c].value is not None}
        if model in models and member.auxiliary is not None:
            arguments = {member.columns[c]: value for c, value in given.items()}
            configs[model] = AuxiliaryConfig(member.auxiliary, arguments)
    for column in dict.fromkeys(c for m in CONTRASTIVE_FAMILY.values() for c in m.columns):
        users = [m for m, member in CONTRASTIVE_FAMILY.items() if column in member.columns]
        if FLAGS[column].value is not None and not set(users) & set(models):
            raise ValueError(
                f"--{column} applies to --models={' or '.join(users)}, "
                f"{'which is not' if len(users) == 1 else 'none of which is'} in --models"
            )
    return configs


def jobs_from_flags(
    experiment: Experiment,
    points: Sequence[Mapping[str, Any]],
    options: Any,
    *,
    variants: Sequence[Mapping[str, Any]] = ({},),
    models: Sequence[str] | None = None,
) -> list[Job]:
    """The jobs the flags describe: for each point and variant, each model of `models`
    (default --models); the contrastive family (`CONTRASTIVE_FAMILY`) once per temperature of
    --temperatures, each with its loss and auxiliary objective, the others once. `options` is
    the experiment's typed data options, shared by every job."""
    if FLAGS["temperature"].present:
        raise ValueError(
            "this experiment sweeps --temperatures (a list); --temperature is not used"
        )
    models = list(FLAGS.models if models is None else models)
    unknown = [m for m in models if m not in experiment.models]
    if unknown or not models:
        raise ValueError(
            f"--models must be among {', '.join(experiment.models)} for {experiment.name}, got "
            f"{models}"
        )
    if any(models.count(m) > 1 for m in models):
        raise ValueError(f"--models must not repeat values, got {models}")
    if FLAGS["floor_inits"].present and "random_init" not in models:
        raise ValueError("--floor_inits applies to --models=random_init, which is not in --models")
    own_losses = {
        m: CONTRASTIVE_FAMILY[m].loss
        for m in models
        if m in CONTRASTIVE_FAMILY and CONTRASTIVE_FAMILY[m].loss
    }
    for model, loss in own_losses.items():
        # A remedy's line is measured beside NT-Xent's, with the same temperatures and loss
        # flags: with another --loss the contrastive line would differ by more than the remedy
        # (its loss's own default temperature too); with --loss=<its loss> it would be a copy.
        if FLAGS.loss not in ("nt_xent", loss):
            raise ValueError(
                f"--models={model} trains {loss} beside the contrastive model's NT-Xent: it "
                f"needs --loss=nt_xent, not --loss={FLAGS.loss}"
            )
        if FLAGS.loss == loss and "contrastive" in models:
            raise ValueError(
                f"with --loss={loss} the contrastive model is the {model} one: drop one of them "
                "from --models (or use --loss=nt_xent)"
            )
    run_losses = {
        f"--loss={FLAGS.loss}": FLAGS.loss,
        **{f"--models={m}": n for m, n in own_losses.items()},
    }
    losses = {
        m: cli.loss_config_from_flags(name=own_losses.get(m, FLAGS.loss), run_losses=run_losses)
        for m in models
    }
    auxiliaries = _auxiliary_configs(models)
    temperatures = _temperatures()
    loop = math.gcd(FLAGS.train_steps, FLAGS.steps_per_loop)
    evaluation = EvalConfig(
        linear_epochs=FLAGS.linear_epochs,
        knn_k=FLAGS.knn_k,
        linear_protocol=FLAGS.linear_protocol,
    )
    vae = VaeConfig(
        FLAGS.vae_latent_dim, FLAGS.vae_kl_weight, FLAGS.vae_bit_weighting, FLAGS.vae_steps
    )

    def pretrain(model: str, temperature: float | None) -> PretrainConfig:
        loss = losses[model]
        if temperature is not None:
            loss = dataclasses.replace(
                loss, arguments={**loss.arguments, "temperature": temperature}
            )
        return cli.pretrain_config_from_flags(
            loss=loss, auxiliary=auxiliaries.get(model), steps_per_loop=loop
        )

    return [
        Job(
            dict(point),
            model,
            pretrain(model, t),
            evaluation,
            vae,
            options,
            dict(variant),
            floor_inits=FLAGS.floor_inits,
        )
        for point in points
        for variant in variants
        for model in models
        for t in (temperatures if model in CONTRASTIVE_FAMILY else [None])
    ]


# Flags that choose which jobs run, not how one is measured: rows of an earlier run with
# other values of these are still valid (with the experiment's `points_flag` and
# `variant_flags`). The flags of `PARAMETER_COLUMNS` are recorded in the rows they set, as
# the temperature is.
JOB_LIST_FLAGS = ("temperatures", "models", *PARAMETER_COLUMNS)


def check_training_set(experiment: Experiment, jobs: Sequence[Job]) -> None:
    """ValueError naming the flag when --batch_size or --knn_k is larger than the jobs'
    training set (`cli.check_fits_training_set`)."""
    # Every point of a sweep has the same training-set size: the first job's data tells it.
    cli.check_fits_training_set(
        int(experiment.build_data(jobs[0]).train.cardinality()), knn_k=FLAGS.knn_k
    )


def main(
    experiment: Experiment,
    jobs: Sequence[Job],
    module: str,
    *,
    output_dir: str | None = None,
    ignore: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The body of every experiment's `main` after `jobs_from_flags`: the runs, the table,
    where the outputs went; returns the rows (none for --dry_run). `module` is the experiment
    module's name (for its flags' values); `output_dir` replaces --output_dir (default
    runs/<experiment>); `ignore` names more flags that choose what runs, not how it is
    measured (a program running several experiments: which ones).

    The output folder is locked for the run. Rows already in its results.json, measured
    with the same settings (the flags and the data options every job shares), are kept and
    not measured again unless --fresh (which deletes the folder's earlier results first).
    Besides results and the plot, examples/ shows two augmented views of a few training
    images at every point and variant."""
    tf.get_logger().setLevel("ERROR")  # tf.function retracing notes: each run builds new models
    output_dir = output_dir or FLAGS.output_dir or os.path.join("runs", experiment.name)
    if FLAGS.dry_run:
        for i, job in enumerate(jobs, 1):
            print(f"[{i}/{len(jobs)}] {job.describe()} seed={job.pretrain.seed} steps={job.steps}")
        return []
    workers = FLAGS.workers or max(1, min(len(jobs), (os.cpu_count() or 1) // 2))
    # Not every data option is a flag (the remedies program fixes each testbed's): stored
    # beside the flags, so that a folder measured on other data is never resumed.
    config = {
        **cli.flag_values(cli.__name__, __name__, module),
        "data_options": dataclasses.asdict(jobs[0].options),
    }
    check_training_set(experiment, jobs)
    with lock_output_dir(output_dir):  # run_jobs records how the run ends, with its rows
        if FLAGS.fresh:
            remove_results(output_dir)
        ignore = (
            *runtime.RUN_CONTROL_FLAGS,
            *JOB_LIST_FLAGS,
            experiment.points_flag,
            *experiment.variant_flags,
            *ignore,
        )
        earlier = previous_results(output_dir, config, ignore=ignore)
        save_examples(experiment, jobs, os.path.join(output_dir, "examples"))
        rows = run_jobs(
            experiment,
            jobs,
            output_dir=output_dir,
            config=config,
            seed=FLAGS.seed,
            workers=workers,
            measured=earlier["rows"] if earlier else (),
        )
    print(table(experiment, rows))
    print(
        f"wrote {os.path.join(output_dir, 'results.json')}, results.csv, {experiment.name}.png "
        "and examples/",
        file=sys.stderr,
    )
    return rows
