"""Runs a grid of jobs (knob points x variants x models), one row of probe accuracies each.

The engine of the feature-suppression experiments (`cl_properties.experiments.suppression`):
a `Job` is one point of the knob (e.g. 10 bits), one variant of the data (e.g. RandBit's
per-view bits) and one model (`TRAINERS`), with everything a worker needs and no flags.
`run_jobs` runs them in order or in worker processes, prints progress, and after every
finished job rewrites results.json (`cl_properties.results.write_results`, so a stopped run
keeps what it measured) and the plot (one panel per probe: accuracy vs the knob, one line
per model, variant, temperature and loss or auxiliary-objective parameters); `table` formats
the rows.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cl_properties.plotting.curves import CurvePanel, Series, save_curve_panels, series_from_rows
from cl_properties.plotting.examples import save_example_grid
from cl_properties.results import code_version, completed_rows, format_table, write_results
from cl_properties.training import (
    DataSpec,
    EvalConfig,
    Interrupted,
    PretrainConfig,
    train_and_evaluate,
)
from cl_properties.training.baselines import (
    VaeConfig,
    probe_random_init,
    train_supervised,
    train_vae,
)
from cl_properties.training.callbacks import StepTimer
from cl_properties.training.evaluate import training_views


@dataclasses.dataclass(frozen=True)
class FamilyMember:
    """A model of the contrastive family: the ContrastiveModel with the "contrastive" model's
    encoder, head, optimizer, steps, augmentations and temperatures, trained with its own loss
    and/or an auxiliary objective.

    loss: its loss's name in cl_properties.losses.LOSSES (None: the run's --loss).
    auxiliary: its auxiliary objective's name in cl_properties.models.AUXILIARIES (None: none),
      a term added to the loss or, for the bit-matched oracle, extra negatives of NT-Xent.
    columns: the auxiliary objective's arguments its rows record: row column (named as the flag
      that sets it) -> argument.
    """

    loss: str | None = None
    auxiliary: str | None = None
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)


# Model name -> member. A remedy that replaces the loss or adds a term to it is one entry here.
CONTRASTIVE_FAMILY: Mapping[str, FamilyMember] = {
    "contrastive": FamilyMember(),
    # Implicit feature modification (Robinson et al. 2021), NT-Xent's remedy.
    "ifm": FamilyMember(loss="ifm"),
    # The loss + a decoder of each augmented view from h (Li et al. 2023 in spirit).
    "recon_hybrid": FamilyMember(
        auxiliary="reconstruction",
        columns={"recon_weight": "weight", "recon_weighting": "weighting"},
    ),
    # The loss + a rotation classifier on h of a rotated view (E-SSL, Dangovski et al. 2022).
    "rotation_aux": FamilyMember(auxiliary="rotation", columns={"rotation_weight": "weight"}),
    # Both terms together, the reconstruction weighing channels alike by default (agnostic).
    "recon_rotation": FamilyMember(
        auxiliary="reconstruction_rotation",
        columns={
            "recon_weight": "weight",
            "recon_weighting": "weighting",
            "rotation_weight": "rotation_weight",
        },
    ),
    # An oracle: NT-Xent + negatives with the anchor's own bits on other images' pixels.
    "bit_matched": FamilyMember(auxiliary="bit_matched"),
}
# Loss arguments a contrastive-family row records besides the temperature, when its loss has
# them: row column (named as the flag that sets it) -> argument.
LOSS_COLUMNS: Mapping[str, str] = {"ifm_epsilon": "epsilon", "ifm_alpha": "alpha"}
# Every parameter column of the family's rows, the losses' then the auxiliary objectives'. With
# the temperature they tell one model's runs apart: in results.json when resuming, and as
# lines of the plot.
PARAMETER_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*LOSS_COLUMNS, *(c for member in CONTRASTIVE_FAMILY.values() for c in member.columns)]
    )
)


@dataclasses.dataclass(frozen=True)
class Job:
    """One point of the knob, one variant of the data and one model: everything a worker
    needs, without flags.

    `point` holds the knob values (e.g. {"bits": 10}); `variant` data modes that are not the
    knob (e.g. {"bit_mode": "per_view"}; {} for experiments without); both are JSON-able and
    become columns of the row. `options` is the experiment's typed data options (a frozen
    dataclass: dataset, sizes, ...). `pretrain` carries the seed, steps, batch size,
    optimizer and, for the contrastive family (`CONTRASTIVE_FAMILY`), the loss it trains with
    and its auxiliary objective. `floor_inits`: the random initializations the random-init
    floor averages its probes over (`baselines.probe_random_init`).
    """

    point: Mapping[str, Any]
    model: str
    pretrain: PretrainConfig
    evaluation: EvalConfig
    vae: VaeConfig
    options: Any
    variant: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    floor_inits: int = 1

    @property
    def temperature(self) -> float | None:
        if self.model not in CONTRASTIVE_FAMILY:
            return None
        return self.pretrain.loss.resolved().get("temperature")

    @property
    def parameters(self) -> dict[str, Any]:
        """Column -> value of the `LOSS_COLUMNS` its loss has and of its member's auxiliary
        columns ({} outside the contrastive family)."""
        if self.model not in CONTRASTIVE_FAMILY:
            return {}
        resolved = self.pretrain.loss.resolved()
        values = {column: resolved[arg] for column, arg in LOSS_COLUMNS.items() if arg in resolved}
        if self.pretrain.auxiliary is not None:
            auxiliary = self.pretrain.auxiliary.resolved()
            columns = CONTRASTIVE_FAMILY[self.model].columns
            values.update({column: auxiliary[arg] for column, arg in columns.items()})
        return values

    @property
    def steps(self) -> int:
        """Training steps of this job (the VAE may train longer or shorter; the random-init
        floor trains none)."""
        if self.model == "random_init":
            return 0
        if self.model == "vae":
            return self.vae.steps(self.pretrain.train_steps)
        return self.pretrain.train_steps

    @property
    def series(self) -> str:
        """The plot line this job belongs to: model, variant, and the contrastive family's
        temperature and parameters, by argument name (e.g. "ifm shared tau=0.1 epsilon=0.1
        alpha=1", "recon_hybrid shared tau=0.1 weight=10 weighting=groups")."""
        parts = [self.model, *map(str, self.variant.values())]
        if self.temperature is not None:
            parts.append(f"tau={self.temperature:g}")
        names = {**LOSS_COLUMNS, **CONTRASTIVE_FAMILY.get(self.model, FamilyMember()).columns}
        parts += [
            f"{names[c]}={v}" if isinstance(v, str) else f"{names[c]}={v:g}"
            for c, v in self.parameters.items()
        ]
        return " ".join(parts)

    def describe(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in self.point.items())
        return f"{knobs} {self.series}"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What an experiment gives the runner.

    build_data: job -> DataSpec (sources, input shape, probes, augmentation, view transform);
      a module-level function, so worker processes can unpickle it.
    x / x_label / x_scale: the knob column of the rows and its plot axis.
    points_flag: the flag listing the knob values (e.g. "bits").
    variant_flags: the flags listing variants of the data (e.g. "bit_mode").
    probe_titles: label key -> panel title; one panel (linear probe accuracy) per key, with
      the chance level each point measured (`chance_<key>` of the rows).
    """

    name: str
    build_data: Callable[[Job], DataSpec]
    x: str
    points_flag: str
    x_label: str
    probe_titles: Mapping[str, str]
    models: tuple[str, ...] = (*CONTRASTIVE_FAMILY, "vae", "supervised", "random_init")  # allowed
    variant_flags: tuple[str, ...] = ()
    x_scale: str = "linear"
    title: str = ""


# ----------------------------------------------------------------------------------------
# Training and probing one job.


def _contrastive(job: Job, data: DataSpec, callbacks) -> dict[str, float]:
    _, metrics = train_and_evaluate(
        job.pretrain, data, evaluation=job.evaluation, callbacks=list(callbacks), verbose=0
    )
    metrics.pop("pretrain_seconds", None)
    return metrics


def _vae(job: Job, data: DataSpec, callbacks) -> dict[str, float]:
    return train_vae(
        job.pretrain, data, vae=job.vae, evaluation=job.evaluation, callbacks=callbacks
    )


def _supervised(job: Job, data: DataSpec, callbacks) -> dict[str, float]:
    return train_supervised(job.pretrain, data, evaluation=job.evaluation, callbacks=callbacks)


def _random_init(job: Job, data: DataSpec, callbacks) -> dict[str, float]:
    del callbacks  # nothing trains
    return probe_random_init(job.pretrain, data, evaluation=job.evaluation, inits=job.floor_inits)


# Model name -> trainer(job, data, callbacks) -> metrics (probes and training terms).
TRAINERS: Mapping[str, Callable[[Job, DataSpec, Sequence[keras.callbacks.Callback]], dict]] = {
    **dict.fromkeys(CONTRASTIVE_FAMILY, _contrastive),  # the ContrastiveModel, per temperature
    "vae": _vae,  # cl_properties.training.baselines.train_vae
    "supervised": _supervised,  # baselines.train_supervised (the upper reference)
    "random_init": _random_init,  # baselines.probe_random_init (the floor)
}
MODELS = tuple(TRAINERS)


def run_job(
    job: Job,
    build_data: Callable[[Job], DataSpec],
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Trains and probes one job; returns its row (knobs, model, temperature, its
    `PARAMETER_COLUMNS`, seed, steps, batch size, the VAE's objective, probe accuracies,
    chance levels, training metrics, seconds: in all, and `step_seconds`, the mean training
    step after the first, for a model that trains at least two steps)."""
    if job.model not in TRAINERS:
        raise ValueError(f"unknown model {job.model!r}; known: {MODELS}")
    started = time.perf_counter()
    timer = StepTimer()  # `seconds` includes data building and probes: not a training cost
    metrics = TRAINERS[job.model](job, build_data(job), [*callbacks, timer])
    row = {
        **job.point,
        **job.variant,
        "model": job.model,
        "temperature": job.temperature,
        **job.parameters,
        "series": job.series,
        "seed": job.pretrain.seed,
        "steps": job.steps,
        "batch_size": job.pretrain.batch_size,
        "linear_protocol": job.evaluation.linear_protocol,  # how the linear_* numbers were made
    }
    if job.model == "vae":  # the VAE's objective: its KL weight and bit-plane weighting
        row.update(vae_kl_weight=job.vae.kl_weight, vae_bit_weighting=job.vae.bit_weighting)
    if job.model == "random_init":  # how many initializations its probes average
        row["floor_inits"] = job.floor_inits
    probes = sorted(k for k in metrics if k.startswith(("linear_", "knn_", "online_")))
    row.update({k: metrics[k] for k in probes})
    row.update({k: v for k, v in metrics.items() if k not in probes})
    row["seconds"] = round(time.perf_counter() - started, 1)
    if timer.mean_seconds is not None:
        row["step_seconds"] = round(timer.mean_seconds, 5)
    row["code_version"] = code_version()  # kept rows of a resumed sweep keep their own
    return row


# ----------------------------------------------------------------------------------------
# Running the jobs: in order (or in worker processes), progress, results after every job.


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
    """What identifies a job's row in results.json: its knob values, variant, model,
    temperature and parameters (`PARAMETER_COLUMNS`)."""
    parameters = job.parameters
    return (
        *sorted({**job.point, **job.variant}.items()),
        job.model,
        job.temperature,
        *(parameters.get(column) for column in PARAMETER_COLUMNS),
    )


def _row_key(row: Mapping[str, Any], names: Sequence[str]) -> tuple:
    return (
        *sorted((name, row.get(name)) for name in names),
        row.get("model"),
        row.get("temperature"),
        *(row.get(column) for column in PARAMETER_COLUMNS),
    )


def run_jobs(
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
    knob values, variant, model, temperature and parameters match one of them is not
    run again, so a stopped run, rerun, continues where it stopped. workers=1 runs the jobs
    here, in order, with a step counter on a terminal; workers=N > 1 runs them in N spawned
    processes sharing the CPU cores (each N-th of them). After every finished job,
    results.json (status "running") and the plot are rewritten; at the end the status is
    "completed", or "failed" with the error when a job raised (re-raised), or "interrupted"
    on Ctrl-C / SIGTERM (raised as `Interrupted`; worker processes are stopped); every row,
    earlier ones included, is in each of these writes. A rerun that measures nothing leaves
    a completed results.json as it is. Progress lines (job i/N, its probes, seconds, time
    left) go to `stream`.
    """
    if not jobs:
        raise ValueError("there are no jobs: check the knob values and --models")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = time.perf_counter()
    names = [*jobs[0].point, *jobs[0].variant]
    previous = {_row_key(row, names): dict(row) for row in measured}
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
        probes = " ".join(f"{k}={row[f'linear_{k}']:.3f}" for k in keys if f"linear_{k}" in row)
        eta = ""
        if finished < len(jobs) and done_steps:  # the random-init floor trains no steps
            eta = f", about {_duration(elapsed * (total_steps - done_steps) / done_steps)} left"
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
    current = code_version()
    other_code = sorted(
        {str(row.get("code_version")) for row in done() if row.get("code_version") != current}
    )
    if other_code:  # a code change can move numbers without changing any setting
        reused += (
            f"; rows kept from other code ({', '.join(other_code)}) beside this code's "
            f"({current}): pass --fresh to measure every row with this code"
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
    # A rerun that measured nothing keeps the record (time, versions) of the run that did.
    if todo or completed_rows(output_dir) is None:
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
    """Draws `probe_panels` side by side in the PNG `path` (nothing when there is none)."""
    panels = probe_panels(experiment, rows)
    if panels:
        save_curve_panels(path, panels, title=experiment.title)


def probe_panels(experiment: Experiment, rows: Sequence[Mapping[str, Any]]) -> list[CurvePanel]:
    """One panel per probe key the rows have: linear probe accuracy vs the knob, one line per
    series, and the chance level measured at each knob value."""
    panels = []
    for key, title in experiment.probe_titles.items():
        column = f"linear_{key}"
        if not any(column in row for row in rows):
            continue
        series = series_from_rows(rows, x=experiment.x, y=column, by=("series",), label="{series}")
        # Chance is measured per point (the test set's most frequent label): it moves with
        # the knob where the labels do, e.g. a digit from a pool of K images.
        chance = {row[experiment.x]: row[f"chance_{key}"] for row in rows if f"chance_{key}" in row}
        if chance:
            xs = sorted(chance)
            series.append(
                Series("chance", xs, [chance[x] for x in xs], linestyle=":", color="grey")
            )
        panels.append(
            CurvePanel(
                series,
                experiment.x_label,
                "linear probe accuracy (test)",
                title,
                experiment.x_scale,
                (0.0, 1.02),
            )
        )
    return panels


def _write(experiment, rows, output_dir, config, seed, started, status, extra=None) -> None:
    written = write_results(
        output_dir,
        rows=rows,
        config=config,
        seed=seed,
        wall_time_s=time.perf_counter() - started,
        status=status,
        extra={"experiment": experiment.name, **(extra or {})},
    )
    if written and rows:  # the plot shows what results.json holds
        plot_rows(experiment, rows, os.path.join(output_dir, f"{experiment.name}.png"))


def save_examples(
    experiment: Experiment, jobs: Sequence[Job], folder: str, images: int = 4
) -> list[str]:
    """Writes `folder/<point and variant>.png` for every point and variant of `jobs`: two
    augmented views (as the contrastive model sees them, view transform included) of the
    first `images` training images of its first job's batch order. Returns the paths."""
    paths = []
    seen = set()
    for job in jobs:
        key = tuple({**job.point, **job.variant}.items())
        if key in seen:
            continue
        seen.add(key)
        data = experiment.build_data(job)
        config = dataclasses.replace(job.pretrain, batch_size=images)
        (view1, view2), _ = next(iter(training_views(config, data)))
        pairs = np.stack([view1.numpy(), view2.numpy()], axis=1).reshape(-1, *view1.shape[1:])
        name = "_".join(f"{k}={v}" for k, v in key)
        path = os.path.join(folder, f"{name}.png")
        save_example_grid(
            pairs,
            path,
            labels=[f"image {i // 2 + 1} view {i % 2 + 1}" for i in range(len(pairs))],
            ncols=2 * images,
            title=f"{experiment.name} {name.replace('_', ' ')}: two views of each image",
            image_channels=data.image_channels,
        )
        paths.append(path)
    return paths


def table(experiment: Experiment, rows: Sequence[Mapping[str, Any]]) -> str:
    """The printed table: knob, model, temperature, the parameters some rows have, seed,
    linear probes, seconds."""
    columns = [experiment.x, "model", "temperature"]
    columns += [c for c in PARAMETER_COLUMNS if any(c in r for r in rows)]
    columns.append("seed")
    columns += [
        f"linear_{k}" for k in experiment.probe_titles if any(f"linear_{k}" in r for r in rows)
    ]
    return format_table(rows, columns + ["seconds"])
