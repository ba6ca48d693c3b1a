"""What the four feature-suppression experiments share (paper section 4).

RandBit, DigitOnImages, MultiDigits and colour shapes are each a sweep: points of a knob
(bits, K, digit size, jitter strength) x models (the contrastive model at each temperature,
and references) -> one row of probe accuracies per point and model. This module holds the
sweep: the jobs, training and probing each model, the worker processes, progress printing,
results (`cl_properties.results.write_results`, rewritten after every job, so a stopped
sweep keeps what it measured), the plot (one panel per probe, accuracy vs the knob, one line
per model and temperature) and the table. An experiment module supplies an `Experiment`
(its data builder and plot axes) and its points.

Models:
- contrastive: the `ContrastiveModel` through `cl_properties.training.train_and_evaluate`.
- per_view: the same, on data where the experiment makes the extra feature unshared between
  the two views (RandBit's per-view bits: the control).
- vae: `cl_properties.models.vae.ConvVAE` with the contrastive model's encoder architecture,
  trained on the same augmented single views, probed on its posterior mean.
- supervised: the encoder + a linear classifier trained with cross-entropy on the first probe
  label (a reference for what the architecture can extract), probed like the others.
Every model is probed the same way: linear classifier and kNN on frozen features of the
un-augmented train/test images (`linear_<key>`, `knn_<key>`); contrastive models also
report their online probes (`online_<key>`).

Flags are defined only when an experiment runs as a program (`define_flags` under
`__main__`), so importing an experiment module (tests, workers, benchmarks) defines none.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf
from absl import flags

from cl_properties.data import eval_dataset, two_view_dataset
from cl_properties.evaluation import extract_features, knn_accuracy, linear_eval
from cl_properties.experiments import common, runtime
from cl_properties.models import build_encoder
from cl_properties.models.vae import build_conv_vae
from cl_properties.optimization import build_optimizer
from cl_properties.plotting.curves import CurvePanel, save_curve_panels, series_from_rows
from cl_properties.results import (
    format_table,
    lock_output_dir,
    previous_results,
    remove_results,
    write_results,
)
from cl_properties.training import (
    DataSpec,
    EvalConfig,
    Interrupted,
    PretrainConfig,
    train_and_evaluate,
)

FLAGS = flags.FLAGS

MODELS = ("contrastive", "per_view", "vae", "supervised")
CONTRASTIVE_MODELS = (
    "contrastive",
    "per_view",
)  # trained by train_and_evaluate, one per temperature


BIT_WEIGHTINGS = ("group", "bit", "pixel")


@dataclasses.dataclass(frozen=True)
class VaeConfig:
    """The VAE baseline (`cl_properties.models.vae`).

    `bit_weighting` sets the reconstruction weight w of each pixel of the b channels a view
    transform appends (RandBit's constant bit planes); the image's C channels weigh 1:
    - "group": w = C / b, the bit planes together weigh as much as the image (the default);
    - "bit": w = 1 / (H W), each bit counts once, as the single binary value it is;
    - "pixel": w = 1, the plain summed BCE over all channels, where the b planes of H x W
      copies of one bit outweigh a grey image b times and dominate the loss.
    `train_steps` None trains as many steps as the contrastive runs.
    """

    latent_dim: int = 64
    kl_weight: float = 1.0
    bit_weighting: str = "group"
    train_steps: int | None = None

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ValueError(f"vae latent_dim must be >= 1, got {self.latent_dim}")
        if self.kl_weight < 0:
            raise ValueError(f"vae kl_weight must be >= 0, got {self.kl_weight}")
        if self.bit_weighting not in BIT_WEIGHTINGS:
            raise ValueError(
                f"vae bit_weighting must be one of {BIT_WEIGHTINGS}, got {self.bit_weighting!r}"
            )
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"vae train_steps must be >= 1, got {self.train_steps}")

    def channel_weights(self, input_shape: Sequence[int], added: int) -> list[float]:
        """Per-channel reconstruction weights for `input_shape` (H, W, C + added)."""
        height, width, channels = input_shape
        image = channels - added
        w = {"group": image / max(added, 1), "bit": 1.0 / (height * width), "pixel": 1.0}[
            self.bit_weighting
        ]
        return [1.0] * image + [w] * added


@dataclasses.dataclass(frozen=True)
class Job:
    """One point of a sweep and one model: everything a worker needs, without flags.

    `point` holds the knob values (e.g. {"bits": 10}); `data` the experiment's data options
    (dataset, sizes, ...), both JSON-able. `pretrain` carries the seed, steps, batch size,
    optimizer and, for contrastive models, the temperature.
    """

    point: Mapping[str, Any]
    model: str
    pretrain: PretrainConfig
    evaluation: EvalConfig
    vae: VaeConfig
    data: Mapping[str, Any]

    @property
    def temperature(self) -> float | None:
        return (
            self.pretrain.loss.resolved().get("temperature")
            if self.model in CONTRASTIVE_MODELS
            else None
        )

    @property
    def steps(self) -> int:
        """Training steps of this job (the VAE may train longer or shorter)."""
        if self.model == "vae" and self.vae.train_steps:
            return self.vae.train_steps
        return self.pretrain.train_steps

    @property
    def series(self) -> str:
        """The plot line this job belongs to: model, and temperature for contrastive ones."""
        return self.model if self.temperature is None else f"{self.model} tau={self.temperature:g}"

    def describe(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in self.point.items())
        return f"{knobs} {self.series}"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment's part of the sweep.

    build_data: job -> DataSpec (sources, input shape, probes, augmentation, view transform);
      a module-level function, so worker processes can unpickle it.
    x / x_label / x_scale: the knob column of the rows and its plot axis.
    points_flag: the flag listing the knob values (e.g. "bits").
    probe_titles: label key -> panel title; one panel (linear probe accuracy) per key.
    chance: label key -> chance accuracy, drawn as a reference line.
    """

    name: str
    build_data: Callable[[Job], DataSpec]
    x: str
    points_flag: str
    x_label: str
    probe_titles: Mapping[str, str]
    models: tuple[str, ...] = ("contrastive", "vae", "supervised")
    x_scale: str = "linear"
    chance: Mapping[str, float] = dataclasses.field(default_factory=dict)
    title: str = ""


# ----------------------------------------------------------------------------------------
# Training and probing one job.


def probe_representation(
    represent: Callable[..., tf.Tensor], data: DataSpec, evaluation: EvalConfig, seed: int
) -> dict[str, float]:
    """`linear_<key>` and `knn_<key>` for every probe of `data`, on frozen features
    `represent(images)` of the un-augmented train and test images (view transform applied),
    with the protocol of `train_and_evaluate` (`linear_eval`, `knn_accuracy`)."""

    def batches(source):
        return eval_dataset(
            source,
            batch_size=evaluation.batch_size,
            preprocess=data.eval_preprocess,
            view_transform=data.view_transform,
        )

    train_x, train_y = extract_features(represent, batches(data.train))
    test_x, test_y = extract_features(represent, batches(data.test))
    metrics = {}
    for key, classes in data.probes.items():
        linear = linear_eval(
            train_x,
            train_y[key],
            test_x,
            test_y[key],
            epochs=evaluation.linear_epochs,
            batch_size=evaluation.batch_size,
            learning_rate=evaluation.linear_learning_rate,
            seed=seed,
            num_classes=classes,
        )
        metrics[f"linear_{key}"] = float(linear.test_accuracy)
        metrics[f"knn_{key}"] = float(
            knn_accuracy(
                train_x,
                train_y[key],
                test_x,
                test_y[key],
                k=evaluation.knn_k,
                temperature=evaluation.knn_temperature,
                num_classes=classes,
            )
        )
    return metrics


def _single_views(job: Job, data: DataSpec, with_label: str | None = None) -> tf.data.Dataset:
    """View 1 of the contrastive pipeline (same augmentation, view transform and order):
    images, or (images, labels[with_label])."""
    pairs = two_view_dataset(
        data.train,
        data.augment,
        batch_size=job.pretrain.batch_size,
        seed=job.pretrain.seed,
        shuffle_buffer=data.shuffle_buffer,
        view_transform=data.view_transform,
    )
    if with_label is None:
        return pairs.map(lambda views, labels: views[0])
    return pairs.map(lambda views, labels: (views[0], labels[with_label]))


def _fit(model: keras.Model, dataset: tf.data.Dataset, steps: int, callbacks) -> dict[str, float]:
    loop = math.gcd(steps, 100)  # Keras "epochs" of `loop` steps; any step count works
    history = model.fit(
        dataset,
        epochs=steps // loop,
        steps_per_epoch=loop,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    return {f"train_{k}": float(v[-1]) for k, v in history.history.items()}


def train_vae(
    job: Job, data: DataSpec, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> dict[str, float]:
    """Trains the VAE baseline of `job` on `data` and probes its posterior mean."""
    pretrain, steps = job.pretrain, job.steps
    added = data.view_transform.channels_added() if data.view_transform is not None else 0
    weights = job.vae.channel_weights(data.input_shape, added)
    keras.utils.set_random_seed(pretrain.seed)
    model = build_conv_vae(
        data.input_shape,
        latent_dim=job.vae.latent_dim,
        encoder=pretrain.encoder.name,
        width_multiplier=pretrain.encoder.width_multiplier,
        kl_weight=job.vae.kl_weight,
        channel_weights=weights,
        seed=pretrain.seed,
    )
    model.compile(
        optimizer=build_optimizer(
            pretrain.optimizer, batch_size=pretrain.batch_size, total_steps=steps, model=model
        )
    )
    metrics = _fit(model, _single_views(job, data), steps, callbacks)
    metrics.update(probe_representation(model, data, job.evaluation, pretrain.seed))
    return metrics


def train_supervised(
    job: Job, data: DataSpec, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> dict[str, float]:
    """Trains encoder + linear classifier on the first probe label with cross-entropy (the
    contrastive runs' augmentation, optimizer and steps), then probes the encoder."""
    pretrain = job.pretrain
    key, classes = next(iter(data.probes.items()))
    keras.utils.set_random_seed(pretrain.seed)
    encoder = build_encoder(
        pretrain.encoder.name,
        input_shape=data.input_shape,
        width_multiplier=pretrain.encoder.width_multiplier,
    )
    model = keras.Sequential([encoder, keras.layers.Dense(classes, name=f"classifier_{key}")])
    model.build((None, *data.input_shape))
    model.compile(
        optimizer=build_optimizer(
            pretrain.optimizer,
            batch_size=pretrain.batch_size,
            total_steps=pretrain.train_steps,
            model=model,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    metrics = _fit(model, _single_views(job, data, key), pretrain.train_steps, callbacks)
    metrics.update(probe_representation(encoder, data, job.evaluation, pretrain.seed))
    return metrics


def run_job(
    job: Job,
    build_data: Callable[[Job], DataSpec],
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Trains and probes one job; returns its row (knobs, model, temperature, seed, steps,
    batch size, probe accuracies, training metrics, seconds)."""
    started = time.perf_counter()
    data = build_data(job)
    if job.model in CONTRASTIVE_MODELS:
        _, metrics = train_and_evaluate(
            job.pretrain, data, evaluation=job.evaluation, callbacks=list(callbacks), verbose=0
        )
        metrics.pop("pretrain_seconds", None)
    elif job.model == "vae":
        metrics = train_vae(job, data, callbacks)
    elif job.model == "supervised":
        metrics = train_supervised(job, data, callbacks)
    else:
        raise ValueError(f"unknown model {job.model!r}; known: {MODELS}")
    row = {
        **job.point,
        "model": job.model,
        "temperature": job.temperature,
        "series": job.series,
        "seed": job.pretrain.seed,
        "steps": job.steps,
        "batch_size": job.pretrain.batch_size,
    }
    probes = sorted(k for k in metrics if k.startswith(("linear_", "knn_", "online_")))
    row.update({k: metrics[k] for k in probes})
    row.update({k: v for k, v in metrics.items() if k not in probes})
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


# ----------------------------------------------------------------------------------------
# The sweep: jobs in order (or in worker processes), progress, results after every job.


class _StepProgress(keras.callbacks.Callback):
    """Rewrites one status line on a terminal every few training steps."""

    def __init__(self, prefix: str, total: int, stream=sys.stderr):
        super().__init__()
        self.prefix, self.total, self.stream, self.done = prefix, total, stream, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done % 10 == 0 or self.done == self.total:
            self.stream.write(f"\r{self.prefix} step {self.done}/{self.total}")
            self.stream.flush()


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _worker_init(threads: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def job_key(job: Job) -> tuple:
    """What identifies a job's row in results.json: its knob values, model and temperature."""
    return (*sorted(job.point.items()), job.model, job.temperature)


def _row_key(row: Mapping[str, Any], point_names: Sequence[str]) -> tuple:
    return (
        *sorted((name, row.get(name)) for name in point_names),
        row.get("model"),
        row.get("temperature"),
    )


def run_sweep(
    experiment: Experiment,
    jobs: Sequence[Job],
    *,
    output_dir: str,
    config: Mapping[str, Any],
    seed: int,
    workers: int = 1,
    measured: Sequence[Mapping[str, Any]] = (),
    stream=sys.stderr,
) -> list[dict[str, Any]]:
    """Runs every job not `measured` yet, writes results/plot after each, and returns the
    rows: those of `measured` that no job names first, then one per job (in job order).

    `measured` are rows of an earlier run of the same settings (results.json): a job whose
    knob values, model and temperature match one of them is not run again, so a stopped
    sweep rerun continues where it stopped. workers=1 runs the jobs here, in order, with a
    step counter on a terminal; workers=N > 1 runs them in N spawned processes sharing the
    CPU cores (each N-th of them). After every finished job, results.json (status
    "running") and the plot are rewritten; at the end the status is "completed", or
    "failed" with the error when a job raised (re-raised), or "interrupted" on Ctrl-C /
    SIGTERM (raised as `Interrupted`; worker processes are stopped). Progress lines (job
    i/N, its probes, seconds, time left) go to `stream`.
    """
    if not jobs:
        raise ValueError("the sweep has no jobs: check the knob values and --models")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = time.perf_counter()
    point_names = list(jobs[0].point)
    previous = {_row_key(row, point_names): dict(row) for row in measured}
    rows: list[dict[str, Any] | None] = [previous.pop(job_key(job), None) for job in jobs]
    kept = list(previous.values())  # measured earlier, not asked for now: never dropped
    todo = [i for i, row in enumerate(rows) if row is None]
    finished = len(jobs) - len(todo)
    total_steps = sum(jobs[i].steps for i in todo)
    done_steps = 0
    keys = list(experiment.probe_titles)

    def done() -> list[dict[str, Any]]:
        return kept + [r for r in rows if r is not None]

    def record(index: int, row: dict[str, Any]) -> None:
        nonlocal finished, done_steps
        rows[index] = row
        finished += 1
        done_steps += jobs[index].steps
        elapsed = time.perf_counter() - started
        left = elapsed * (total_steps - done_steps) / done_steps
        probes = " ".join(f"{k}={row[f'linear_{k}']:.3f}" for k in keys if f"linear_{k}" in row)
        eta = f", about {_duration(left)} left" if finished < len(jobs) else ""
        stream.write(
            f"\r[{finished}/{len(jobs)}] {jobs[index].describe()}: {probes} ({row['seconds']:.0f} "
            f"s{eta})\n"
        )
        stream.flush()
        _write(experiment, done(), output_dir, config, seed, started, "running")

    reused = (
        f", {len(jobs) - len(todo)} measured before (kept; --fresh measures them again)"
        if len(todo) < len(jobs)
        else ""
    )
    how = "in order" if workers == 1 else f"{workers} workers"
    stream.write(f"{experiment.name}: {len(jobs)} runs{reused} ({how}), output in {output_dir}\n")
    try:
        if workers == 1:
            for i in todo:
                job = jobs[i]
                progress = _StepProgress(
                    f"[{finished + 1}/{len(jobs)}] {job.describe()}:", job.steps, stream
                )
                record(
                    i, run_job(job, experiment.build_data, [progress] if stream.isatty() else [])
                )
        elif todo:
            _run_in_workers(experiment, jobs, todo, workers, record)
    except KeyboardInterrupt as interrupt:
        _write(
            experiment,
            done(),
            output_dir,
            config,
            seed,
            started,
            "interrupted",
            {"error": "interrupted"},
        )
        raise Interrupted(
            f"interrupted after {finished} of {len(jobs)} runs; their rows are in "
            f"{output_dir}/results.json; "
            "rerun the same command to measure the rest",
            getattr(interrupt, "signal_number", signal.SIGINT),
        ) from None
    except BaseException as error:
        _write(
            experiment, done(), output_dir, config, seed, started, "failed", {"error": repr(error)}
        )
        raise
    _write(experiment, done(), output_dir, config, seed, started, "completed")
    return done()


def _run_in_workers(
    experiment: Experiment, jobs: Sequence[Job], todo: Sequence[int], workers: int, record
) -> None:
    """Runs jobs[i] for i in `todo` in `workers` spawned processes, recording each as it ends;
    on any exception (Ctrl-C included) the workers are stopped at once, not waited for."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(threads,),
    )
    try:
        futures = {pool.submit(run_job, jobs[i], experiment.build_data): i for i in todo}
        for future in concurrent.futures.as_completed(futures):
            record(futures[future], future.result())
    except BaseException:
        for process in multiprocessing.active_children():
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def plot_rows(experiment: Experiment, rows: Sequence[Mapping[str, Any]], path: str) -> None:
    """One panel per probe key: linear probe accuracy vs the knob, one line per series."""
    panels = []
    for key, title in experiment.probe_titles.items():
        column = f"linear_{key}"
        if not any(column in row for row in rows):
            continue
        chance = experiment.chance.get(key)
        panels.append(
            CurvePanel(
                series_from_rows(rows, x=experiment.x, y=column, by=("series",), label="{series}"),
                experiment.x_label,
                "linear probe accuracy (test)",
                title,
                experiment.x_scale,
                (0.0, 1.02),
                {} if chance is None else {"chance": chance},
            )
        )
    if panels:
        save_curve_panels(path, panels, title=experiment.title)


def _write(experiment, rows, output_dir, config, seed, started, status, extra=None) -> None:
    write_results(
        output_dir,
        rows=rows,
        config=config,
        seed=seed,
        wall_time_s=time.perf_counter() - started,
        status=status,
        extra={"experiment": experiment.name, **(extra or {})},
    )
    if rows:
        plot_rows(experiment, rows, os.path.join(output_dir, f"{experiment.name}.png"))


def table(experiment: Experiment, rows: Sequence[Mapping[str, Any]]) -> str:
    """The printed table: knob, model, temperature, seed, linear probes, seconds."""
    columns = [experiment.x, "model", "temperature", "seed"]
    columns += [
        f"linear_{k}" for k in experiment.probe_titles if any(f"linear_{k}" in r for r in rows)
    ]
    return format_table(rows, columns + ["seconds"])


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
    """Defines the pretraining flags (`common.define_pretrain_flags`, with this study's
    defaults overridden by `defaults`) and the sweep's own: --temperatures, --models,
    --workers, --linear_epochs, --knn_k, --vae_*, --data_dir. --steps is --train_steps."""
    common.define_pretrain_flags()
    flags.DEFINE_alias("steps", "train_steps")
    for name, value in {**_PRETRAIN_DEFAULTS, **defaults}.items():
        FLAGS.set_default(name, value)
    flags.DEFINE_list(
        "temperatures",
        [f"{t:g}" for t in temperatures],
        "Temperatures of the contrastive models (one line each); replaces --temperature.",
    )
    flags.DEFINE_list(
        "models", list(models), f"Models, among {', '.join(MODELS)} (per_view: RandBit only)."
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
    flags.DEFINE_integer("vae_steps", None, "VAE training steps (default: --steps).", lower_bound=1)
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


def jobs_from_flags(
    experiment: Experiment, points: Sequence[Mapping[str, Any]], data: Mapping[str, Any]
) -> list[Job]:
    """The sweep the flags describe: for each point, each model of --models; contrastive
    models once per temperature of --temperatures, the others once."""
    if FLAGS["temperature"].present:
        raise ValueError(
            "this experiment sweeps --temperatures (a list); --temperature is not used"
        )
    models = list(FLAGS.models)
    unknown = [m for m in models if m not in experiment.models]
    if unknown or not models:
        raise ValueError(
            f"--models must be among {', '.join(experiment.models)} for {experiment.name}, got "
            f"{models}"
        )
    if any(models.count(m) > 1 for m in models):
        raise ValueError(f"--models must not repeat values, got {models}")
    temperatures = common.list_flag("temperatures", float, positive=True)
    steps = FLAGS.train_steps
    loop = math.gcd(steps, FLAGS.steps_per_loop)
    evaluation = EvalConfig(linear_epochs=FLAGS.linear_epochs, knn_k=FLAGS.knn_k)
    vae = VaeConfig(
        FLAGS.vae_latent_dim, FLAGS.vae_kl_weight, FLAGS.vae_bit_weighting, FLAGS.vae_steps
    )

    def pretrain(temperature: float | None) -> PretrainConfig:
        loss = common.loss_config_from_flags()
        if temperature is not None:
            loss = dataclasses.replace(
                loss, arguments={**loss.arguments, "temperature": temperature}
            )
        return common.pretrain_config_from_flags(loss=loss, steps_per_loop=loop)

    jobs = []
    for point in points:
        for model in models:
            for t in temperatures if model in CONTRASTIVE_MODELS else [None]:
                jobs.append(Job(dict(point), model, pretrain(t), evaluation, vae, dict(data)))
    return jobs


# Flags that choose which jobs run, not how one is measured: rows of an earlier run with
# other values of these are still valid (with the experiment's knob flag, `points_flag`).
_JOB_LIST_FLAGS = ("temperatures", "models")


def main(
    experiment: Experiment,
    points: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    module: str,
) -> None:
    """The body of every experiment's `main`: jobs from flags, the sweep, the table, where
    the outputs went. `module` is the experiment module's name (for its flags' values).

    The output folder is locked for the run. Rows already in its results.json, measured
    with the same settings, are kept and not measured again unless --fresh (which deletes
    the folder's earlier results first)."""
    jobs = jobs_from_flags(experiment, points, data)
    tf.get_logger().setLevel("ERROR")  # tf.function retracing notes: each run builds new models
    output_dir = FLAGS.output_dir or os.path.join("runs", experiment.name)
    if FLAGS.dry_run:
        for i, job in enumerate(jobs, 1):
            print(f"[{i}/{len(jobs)}] {job.describe()} seed={job.pretrain.seed} steps={job.steps}")
        return
    workers = FLAGS.workers or max(1, min(len(jobs), (os.cpu_count() or 1) // 2))
    config = common.flag_values(common.__name__, __name__, module)
    # Every point of a sweep has the same training-set size: the first job's data tells it.
    common.check_fits_training_set(
        int(experiment.build_data(jobs[0]).train.cardinality()), knn_k=FLAGS.knn_k
    )
    with lock_output_dir(output_dir):  # run_sweep records how the sweep ends, with its rows
        if FLAGS.fresh:
            remove_results(output_dir)
        ignore = (*runtime.RUN_CONTROL_FLAGS, *_JOB_LIST_FLAGS, experiment.points_flag)
        earlier = previous_results(output_dir, config, ignore=ignore)
        rows = run_sweep(
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
        f"wrote {os.path.join(output_dir, 'results.json')}, results.csv and {experiment.name}.png",
        file=sys.stderr,
    )
