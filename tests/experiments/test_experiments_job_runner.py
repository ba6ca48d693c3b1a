"""The job runner of the feature-suppression experiments, in-process, with a tiny data
builder: rows, series, resume after a failure or an interrupt, plots, tables, examples."""

import dataclasses
import io
import json
import os
import signal

import keras
import matplotlib.image
import numpy as np
import pytest

from cl_properties.data import RandBit, crop_augment, source_from_arrays
from cl_properties.experiments import cli, job_runner
from cl_properties.losses import loss_uses
from cl_properties.models import BitMatchedContrastiveModel, auxiliary_arguments
from cl_properties.optimization import OptimizerConfig
from cl_properties.training import DataSpec, EvalConfig, Interrupted, PretrainConfig, callbacks
from cl_properties.training.baselines import VaeConfig
from cl_properties.training.config import (
    AuxiliaryConfig,
    EncoderConfig,
    HeadConfig,
    LossConfig,
)


def _document(output_dir) -> dict:
    with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def _tiny_data(job: job_runner.Job) -> DataSpec:
    if job.point["n"] == -2:
        raise KeyboardInterrupt  # as Ctrl-C does, mid-sweep
    if job.point["n"] < 0:
        raise RuntimeError("this job fails on purpose")
    rng = np.random.default_rng(0)
    images = rng.random((24, 16, 16, 1)).astype("float32")
    labels = {"label": (np.arange(24) % 3).astype("int32")}
    source = source_from_arrays(images, labels)
    return DataSpec(source, source, (16, 16, 1), {"label": 3}, crop_augment())


TINY_EXPERIMENT = job_runner.Experiment(
    name="tiny",
    build_data=_tiny_data,
    x="n",
    points_flag="ns",
    x_label="n",
    probe_titles={"label": "label probe"},
)


def _job(
    n: int, model: str = "contrastive", temperature: float = 0.1, variant: dict | None = None
) -> job_runner.Job:
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
    variant = variant or {}
    return job_runner.Job(
        {"n": n},
        model,
        config,
        EvalConfig(linear_epochs=1, knn_k=3),
        VaeConfig(latent_dim=4),
        None,
        variant,
    )


def test_job_series_and_description():
    assert _job(1).series == "contrastive tau=0.1" and _job(1).temperature == 0.1
    vae = _job(2, "vae")
    assert vae.series == "vae" and vae.temperature is None
    assert vae.describe() == "n=2 vae"
    per_view = _job(3, variant={"bit_mode": "per_view"})
    assert per_view.series == "contrastive per_view tau=0.1"
    assert job_runner.job_key(per_view) != job_runner.job_key(_job(3))


def _ifm_job(n: int, epsilon: float, alpha: float = 0.5) -> job_runner.Job:
    job = _job(n, "ifm")
    loss = LossConfig("ifm", {"temperature": 0.2, "epsilon": epsilon, "alpha": alpha})
    return dataclasses.replace(job, pretrain=dataclasses.replace(job.pretrain, loss=loss))


def _auxiliary_job(n: int, model: str, name: str, **arguments) -> job_runner.Job:
    job = _job(n, model)
    auxiliary = AuxiliaryConfig(name, arguments)
    return dataclasses.replace(job, pretrain=dataclasses.replace(job.pretrain, auxiliary=auxiliary))


def test_auxiliary_jobs_record_and_are_told_apart_by_their_parameters():
    recon = _auxiliary_job(1, "recon_hybrid", "reconstruction", weight=3.0)
    assert recon.parameters == {"recon_weight": 3.0, "recon_weighting": "groups"}
    assert recon.series == "recon_hybrid tau=0.1 weight=3 weighting=groups"
    uniform = _auxiliary_job(1, "recon_hybrid", "reconstruction", weight=3.0, weighting="uniform")
    rotation = _auxiliary_job(1, "rotation_aux", "rotation")
    assert rotation.parameters == {"rotation_weight": 10.0}
    matched = _auxiliary_job(1, "bit_matched", "bit_matched")
    assert (matched.parameters, matched.series) == ({}, "bit_matched tau=0.1")
    keys = {job_runner.job_key(j) for j in (recon, uniform, rotation, matched, _job(1))}
    assert len(keys) == 5
    assert set(job_runner.PARAMETER_COLUMNS) >= {"recon_weight", "recon_weighting"}


def test_every_parameter_column_names_a_flag_and_an_argument_of_its_loss_or_objective():
    # The loss columns are the flags cli.LOSS_PARAMETER_FLAGS maps to the same arguments, and
    # some loss of the family has them; each member's columns are arguments of its objective.
    family_losses = {
        "nt_xent",
        *filter(None, (m.loss for m in job_runner.CONTRASTIVE_FAMILY.values())),
    }
    for column, argument in job_runner.LOSS_COLUMNS.items():
        assert cli.LOSS_PARAMETER_FLAGS[column] == argument
        assert any(loss_uses(loss, argument) for loss in family_losses), column
    for model, member in job_runner.CONTRASTIVE_FAMILY.items():
        if member.columns:
            preset = auxiliary_arguments(member.auxiliary)
            assert set(member.columns.values()) <= set(preset), model


@pytest.mark.slow
def test_an_auxiliary_job_trains_the_model_of_its_objective():
    job = _auxiliary_job(1, "recon_hybrid", "reconstruction", weighting="uniform")
    job = dataclasses.replace(job, variant={"bit_mode": "shared"})
    row = job_runner.run_job(job, _bits_data, [_ModelOfTheJob()])
    model = _ModelOfTheJob.seen
    # 1 image channel + 3 bit planes: uniform weights all four alike.
    assert model.TERM == "recon_loss" and model.channel_weights == [0.25] * 4
    assert model.image_channels == 1
    assert (row["recon_weight"], row["recon_weighting"]) == (10.0, "uniform")
    assert "train_recon_loss" in row and "online_label" in row
    header = job_runner.table(TINY_EXPERIMENT, [row]).splitlines()[0].split()
    assert header[:5] == ["n", "model", "temperature", "recon_weight", "recon_weighting"]


@pytest.mark.slow
def test_a_bit_matched_job_trains_the_oracle_with_the_channel_layout():
    job = _auxiliary_job(1, "bit_matched", "bit_matched")
    job = dataclasses.replace(job, variant={"bit_mode": "shared"})
    row = job_runner.run_job(job, _bits_data, [_ModelOfTheJob()])
    model = _ModelOfTheJob.seen
    assert isinstance(model, BitMatchedContrastiveModel) and model.image_channels == 1
    assert row["model"] == "bit_matched" and "online_label" in row


class _ModelOfTheJob(keras.callbacks.Callback):
    seen = None

    def on_train_begin(self, logs=None):
        type(self).seen = self.model


class _LossOfTheModel(keras.callbacks.Callback):
    """Keeps the config of the loss the trained model was built with."""

    def on_train_begin(self, logs=None):
        self.config = self.model.contrastive_loss.get_config()


def test_ifm_jobs_are_told_apart_by_their_loss_parameters():
    job = _ifm_job(1, epsilon=0.3)
    assert (job.temperature, job.parameters) == (0.2, {"ifm_epsilon": 0.3, "ifm_alpha": 0.5})
    assert job.series == "ifm tau=0.2 epsilon=0.3 alpha=0.5" and job.steps == 2
    assert job_runner.job_key(job) != job_runner.job_key(_ifm_job(1, epsilon=0.1))
    assert _job(1).parameters == {} and _job(1, "vae").parameters == {}


@pytest.mark.slow
def test_an_ifm_job_trains_the_contrastive_model_with_its_ifm_loss():
    loss = _LossOfTheModel()
    row = job_runner.run_job(_ifm_job(1, epsilon=0.3), _tiny_data, [loss])
    assert {k: loss.config[k] for k in ("method", "temperature", "epsilon", "alpha")} == {
        "method": "ifm",
        "temperature": 0.2,
        "epsilon": 0.3,
        "alpha": 0.5,
    }
    assert (row["model"], row["temperature"], row["ifm_epsilon"], row["ifm_alpha"]) == (
        "ifm",
        0.2,
        0.3,
        0.5,
    )
    assert row["series"] == "ifm tau=0.2 epsilon=0.3 alpha=0.5" and "online_label" in row
    header = job_runner.table(TINY_EXPERIMENT, [row]).splitlines()[0].split()
    assert header[:5] == ["n", "model", "temperature", "ifm_epsilon", "ifm_alpha"]


def _measured_again(job: job_runner.Job) -> DataSpec:
    raise RuntimeError(f"{job.describe()} measured again")


def test_resume_keeps_an_ifm_row_only_for_the_same_epsilon_and_alpha(tmp_path):
    measured = {
        "n": 1,
        "model": "ifm",
        "temperature": 0.2,
        "ifm_epsilon": 0.3,
        "ifm_alpha": 0.5,
        "series": "ifm tau=0.2 epsilon=0.3 alpha=0.5",
        "linear_label": 0.5,
        "seconds": 1.0,
    }
    experiment = dataclasses.replace(TINY_EXPERIMENT, build_data=_measured_again)

    def run(job: job_runner.Job) -> list[dict]:
        return job_runner.run_jobs(
            experiment,
            [job],
            output_dir=str(tmp_path),
            config={},
            seed=0,
            measured=[measured],
            stream=io.StringIO(),
        )

    assert run(_ifm_job(1, epsilon=0.3)) == [measured]
    for other in (_ifm_job(1, epsilon=0.1), _ifm_job(1, epsilon=0.3, alpha=1.0)):
        with pytest.raises(RuntimeError, match=f"{other.series} measured again"):
            run(other)
        assert _document(tmp_path)["rows"] == [measured]  # kept beside the new run


def test_step_timer_leaves_out_the_first_step(monkeypatch):
    # Step ends; the first step's tracing lies before its end, the origin of the timing.
    clock = iter([10.0, 10.5, 11.0, 11.5])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    timer = callbacks.StepTimer()
    assert timer.mean_seconds is None
    timer.on_train_batch_end(0)
    assert timer.mean_seconds is None  # only the tracing step so far
    for batch in (1, 0, 1):  # Keras numbers batches per epoch
        timer.on_train_batch_end(batch)
    assert timer.mean_seconds == pytest.approx(0.5)
    with pytest.raises(ValueError, match="skip must be >= 1"):
        callbacks.StepTimer(skip=0)


def test_rows_of_trained_models_record_their_mean_step_seconds():
    trained = job_runner.run_job(dataclasses.replace(_job(1), pretrain=_steps(3)), _tiny_data)
    assert 0 < trained["step_seconds"] < trained["seconds"]
    floor = job_runner.run_job(_job(1, "random_init"), _tiny_data)
    assert "step_seconds" not in floor  # nothing trains


def _steps(n: int) -> PretrainConfig:
    return dataclasses.replace(_job(1).pretrain, train_steps=n, steps_per_loop=1)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="unknown model 'per_view'"):
        job_runner.run_job(_job(1, "per_view"), _tiny_data)


def _bits_data(job: job_runner.Job) -> DataSpec:
    spec = _tiny_data(job)
    transform = RandBit(3, mode=job.variant["bit_mode"], seed=0)
    return DataSpec(spec.train, spec.test, (16, 16, 4), spec.probes, spec.augment, transform)


def test_examples_show_two_views_per_point_and_variant(tmp_path):
    experiment = job_runner.Experiment(
        "bits", _bits_data, "n", "ns", "n", {"label": "label probe"}, variant_flags=("bit_mode",)
    )
    jobs = [
        _job(n, model, variant={"bit_mode": mode})
        for n in (1, 2)
        for mode in ("shared", "per_view")
        for model in ("contrastive", "vae")
    ]
    paths = job_runner.save_examples(experiment, jobs, str(tmp_path / "examples"), images=3)
    assert [os.path.basename(p) for p in paths] == [
        "n=1_bit_mode=shared.png",
        "n=1_bit_mode=per_view.png",
        "n=2_bit_mode=shared.png",
        "n=2_bit_mode=per_view.png",
    ]
    picture = matplotlib.image.imread(paths[0])
    assert picture.shape[1] == 4 + 6 * (96 + 4)  # 3 images x 2 views, 16 px upscaled to 96


@pytest.mark.slow
def test_failed_sweep_keeps_the_finished_rows(tmp_path):
    progress = io.StringIO()
    with pytest.raises(RuntimeError, match="on purpose"):
        job_runner.run_jobs(
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
    with pytest.raises(
        Interrupted, match=r"interrupted after 1 of 3 runs.*rerun the same command"
    ) as stopped:
        job_runner.run_jobs(
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
    rows = job_runner.run_jobs(
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
    rows = job_runner.run_jobs(
        TINY_EXPERIMENT,
        [_job(2)],
        output_dir=str(tmp_path),
        config={"a": 1},
        seed=0,
        measured=rows,
        stream=io.StringIO(),
    )
    assert [r["n"] for r in rows] == [1, 3, 2]


def test_a_completed_sweep_extended_keeps_each_new_row_and_a_rerun_keeps_its_record(tmp_path):
    def sweep(*ns):
        return job_runner.run_jobs(
            TINY_EXPERIMENT,
            [_job(n) for n in ns],
            output_dir=str(tmp_path),
            config={"a": 1},
            seed=0,
            measured=_document(tmp_path)["rows"] if (tmp_path / "results.json").exists() else (),
            stream=io.StringIO(),
        )

    sweep(1)
    completed = _document(tmp_path)
    assert completed["status"] == "completed" and "written_at" in completed
    # More points, interrupted at the third: the second's row is saved beside the first's.
    with pytest.raises(Interrupted):
        sweep(1, 2, -2)
    document = _document(tmp_path)
    assert document["status"] == "interrupted" and [r["n"] for r in document["rows"]] == [1, 2]
    sweep(1, 2)
    finished = _document(tmp_path)
    assert finished["status"] == "completed" and [r["n"] for r in finished["rows"]] == [1, 2]
    (tmp_path / "tiny.png").unlink()
    sweep(2, 1)  # nothing left to measure: the record of the run that measured stays
    assert _document(tmp_path) == finished and not (tmp_path / "tiny.png").exists()


def test_rows_record_their_code_version_and_a_resume_names_rows_of_other_code(tmp_path):
    from cl_properties.results import code_version

    def run(jobs, measured=()):
        progress = io.StringIO()
        rows = job_runner.run_jobs(
            TINY_EXPERIMENT,
            jobs,
            output_dir=str(tmp_path),
            config={"a": 1},
            seed=0,
            measured=measured,
            stream=progress,
        )
        return rows, progress.getvalue()

    first, _ = run([_job(1)])
    assert first[0]["code_version"] == code_version()
    assert _document(tmp_path)["code_version"] == code_version()
    older = [{**first[0], "code_version": "0123456789ab"}]  # as if measured before a commit
    rows, progress = run([_job(1), _job(2)], measured=older)
    assert [r["code_version"] for r in rows] == ["0123456789ab", code_version()]
    assert (
        f"rows kept from other code (0123456789ab) beside this code's ({code_version()}): "
        "pass --fresh" in progress
    )
    _, progress = run([_job(2)], measured=rows[1:])
    assert "other code" not in progress


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
    job_runner.plot_rows(TINY_EXPERIMENT, rows, str(tmp_path / "p.png"))
    assert matplotlib.image.imread(tmp_path / "p.png").shape[1] >= 400
    text = job_runner.table(TINY_EXPERIMENT, rows)
    assert text.splitlines()[0].split() == [
        "n",
        "model",
        "temperature",
        "seed",
        "linear_label",
        "seconds",
    ]
    assert len(text.splitlines()) == 4


def test_each_panel_draws_the_chance_level_measured_at_each_point():
    rows = [
        {"n": n, "series": s, "linear_label": a, "chance_label": c}
        for n, s, a, c in [
            (1, "contrastive", 1.0, 1.0),  # one class in the test set: chance is 1
            (10, "contrastive", 0.4, 0.1),
            (1, "vae", 1.0, 1.0),
        ]
    ]
    (panel,) = job_runner.probe_panels(TINY_EXPERIMENT, rows)
    chance = [s for s in panel.series if s.label == "chance"]
    assert len(chance) == 1 and list(chance[0].x) == [1, 10] and list(chance[0].y) == [1.0, 0.1]
    assert [s.label for s in panel.series] == ["contrastive", "vae", "chance"]


def test_run_jobs_rejects_no_jobs_and_bad_workers(tmp_path):
    with pytest.raises(ValueError, match="no jobs"):
        job_runner.run_jobs(TINY_EXPERIMENT, [], output_dir=str(tmp_path), config={}, seed=0)
    with pytest.raises(ValueError, match="workers"):
        job_runner.run_jobs(
            TINY_EXPERIMENT, [_job(1)], output_dir=str(tmp_path), config={}, seed=0, workers=0
        )
