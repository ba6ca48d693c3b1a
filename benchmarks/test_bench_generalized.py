"""The generalized contrastive loss family at CI scale (paper Section 2, Figure 1, Appendix A).

Every run: procedural shapes at 16 x 16 (`_shapes`: 6 kinds, 1,437 train / 360 test images, the
sizes of scikit-learn's digits split, on which these studies ran until 2026-12-06: an untrained
encoder probed the digits at ~0.95, so training barely moved any probe), with DigitOnImages'
former augmentation (crop area 0.3-1, flip, colour jitter 0.5), ConvN encoder (128-d
representation), Adam 1e-3 with polynomial decay to 0 and no weight decay, `STEPS` steps of
`BATCH_SIZE` (the tau x lambda study: `TAU_LAMBDA_TRAINING`, the same images in twice the
updates), seed 0, through `cl_properties.training.train_and_evaluate`, beside the studies' two
controls measured in the same run: the encoder trained supervised on the shape (upper reference) and
untrained (random-init floor). The measured numbers are test accuracies on frozen encoder
features: the linear probe's (`linear_label`, SimCLR protocol, `LINEAR_EPOCHS` epochs), the
claims' measure, and the weighted kNN's (`knn_label`, k=`KNN_K`), recorded. Only the data and
the training length are scaled down; the losses are the registry's
(`cl_properties.losses.LOSSES`) with their paper presets (decoupled NT-Xent tau 1 and lambda
0.1, SWD lambda 5: the official conventions, which this library follows, so the paper's values
carry over) and NT-Xent at CIFAR-10's tau 0.2. Projection head: `depth` layers, hidden width
256, output 64 (depth 0 = the representation).

Baselines hold the seed-0 curve (what CI measures) with a band per point.
`pytest benchmarks --update-baselines` also runs `SPREAD_SEEDS` and seed 0 with other
kernels, and sizes each band by that point's range over these runs (`bands.spread_bands`:
seeds and machines, at least `MIN_BAND`), storing every run's values in the baseline. The
qualitative claims are asserted for every run measured.
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest

from cl_properties.data import dataset_classes, default_splits, grey_shapes_augment, load_dataset
from cl_properties.optimization import OptimizerConfig
from cl_properties.plotting.curves import CurvePanel, Series, save_curve_panels
from cl_properties.plotting.heatmap import best_per_row, save_heatmap
from cl_properties.results import format_table
from cl_properties.training import EncoderConfig, HeadConfig, LossConfig, PretrainConfig
from cl_properties.training.baselines import probe_random_init, train_supervised
from cl_properties.training.evaluate import DataSpec, EvalConfig, train_and_evaluate

from bands import (
    FIT_GAP,
    FIT_REFERENCE,
    Run,
    call_in,
    record_extra,
    runs_to_measure,
    spread_bands,
)

STEPS = 200
BATCH_SIZE = 256
LINEAR_EPOCHS = 30
KNN_K = 20  # of 1,437 training images, ~240 a class
HEAD_HIDDEN, HEAD_OUTPUT = 256, 64
# The paper's five members of the family (Figure 1), by their registry names.
FIGURE1_LOSSES = ("nt_xent", "decoupled", "swd_hypersphere", "swd_hypercube", "swd_normal")
# Where a loss runs with other than its registry preset: NT-Xent at CIFAR-10's tau (paper-notes).
CI_ARGUMENTS = {"nt_xent": {"temperature": 0.2}}
MIN_BAND = 0.02  # 7 of the 360 test images: below this, bands would flag platform noise
SPREAD_SEEDS = (0, 1, 2)
COMMAND = "pytest -m benchmark benchmarks/test_bench_generalized.py"


# The testbed of every study here: the digits are too easy (an untrained ConvN probes ~0.95 on
# them), so the studies use the registry's grey shapes (`cl_properties.data.GREY_SHAPES`: 6 kinds,
# 1,437 / 360 images) at 16 px, with their augmentation (`grey_shapes_augment`: crop area 0.3-1,
# flip, colour jitter 0.5: the grey levels must not identify an image). Calibrated, seed 0:
# random init 0.517, NT-Xent 0.903 (head depth 2) / 0.839 (depth 0); with crop-only views NT-Xent
# reached 0.678 (learning the grey levels), at 32 px 0.592.
SHAPES_SIZE = 16
SPLITS = default_splits("grey_shapes")


def _unfit_runs(
    labels: list[str], per_run: dict[str, list[float]], trained: str, supervised: str, floor: str
) -> dict[str, dict[str, float]]:
    """{run: its three values} of the runs that fail the fitness rule: the `supervised` point
    below FIT_REFERENCE, or the `trained` point less than FIT_GAP above the `floor` point."""
    return {
        label: {key: per_run[key][i] for key in (supervised, trained, floor)}
        for i, label in enumerate(labels)
        if per_run[supervised][i] < FIT_REFERENCE
        or per_run[trained][i] < per_run[floor][i] + FIT_GAP
    }


@functools.cache
def _shapes() -> DataSpec:
    train, test = (load_dataset("grey_shapes", split, image_size=SHAPES_SIZE) for split in SPLITS)
    return DataSpec(
        train=train,
        test=test,
        input_shape=(SHAPES_SIZE, SHAPES_SIZE, 1),
        probes=dataset_classes("grey_shapes"),
        augment=grey_shapes_augment(),
    )


# The models of a cell: the contrastive model (the loss and head of the cell), and the two
# controls of the studies' rule, the encoder trained supervised and untrained.
REFERENCES = {"supervised": train_supervised, "random_init": probe_random_init}


# Every study measures the same two control cells (`REFERENCES` at the defaults); a process
# measures each once: one seed with one kernel set gives the same numbers again.
@functools.cache
def _probe_accuracies(
    loss: str = "nt_xent",
    *,
    seed: int,
    depth: int = 2,
    batch_size: int = BATCH_SIZE,
    steps: int = STEPS,
    model: str = "contrastive",
    **loss_overrides,
) -> dict[str, float]:
    """{"linear": linear-probe, "knn": kNN} test accuracy of one run of `model` (contrastive
    pretraining, or a `REFERENCES` control) on the shapes (`_shapes`)."""
    config = PretrainConfig(
        encoder=EncoderConfig(name="convn"),
        head=HeadConfig(depth=depth, hidden_dim=HEAD_HIDDEN, output_dim=HEAD_OUTPUT),
        loss=LossConfig(loss, {**CI_ARGUMENTS.get(loss, {}), **loss_overrides}),
        optimizer=OptimizerConfig(
            name="adam",
            learning_rate=1e-3,
            lr_scaling="none",
            schedule="polynomial",
            weight_decay=0.0,
        ),
        batch_size=batch_size,
        train_steps=steps,
        steps_per_loop=steps,
        seed=seed,
    )
    data, evaluation = _shapes(), EvalConfig(linear_epochs=LINEAR_EPOCHS, knn_k=KNN_K)
    if model == "contrastive":
        _, metrics = train_and_evaluate(config, data, evaluation=evaluation, verbose=0)
    else:
        metrics = REFERENCES[model](config, data, evaluation=evaluation)
    return {"linear": metrics["linear_label"], "knn": metrics["knn_label"]}


def _measure_cells(cells: dict[str, dict], seed: int) -> dict[str, dict[str, float]]:
    """Every cell (keyword arguments of `_probe_accuracies`) with one seed."""
    return {key: _probe_accuracies(**kwargs, seed=seed) for key, kwargs in cells.items()}


def _measure(cells: dict[str, dict], runs: tuple[Run, ...]) -> dict[str, list[dict[str, float]]]:
    """Every cell for every run, each with its kernels (`bands.call_in`): {cell: [per run]}."""
    per_run = [call_in(run, _measure_cells, cells, run.seed) for run in runs]
    return {key: [measured[key] for measured in per_run] for key in cells}


def _setup(batch_size: int = BATCH_SIZE, steps: int = STEPS) -> str:
    return (
        f"shapes {SHAPES_SIZE}px (6 kinds, DigitOnImages' backgrounds and augmentation), ConvN, "
        f"head hidden {HEAD_HIDDEN} -> {HEAD_OUTPUT}, Adam 1e-3 polynomial, batch {batch_size}, "
        f"{steps} steps, linear probe {LINEAR_EPOCHS} epochs, kNN k={KNN_K}"
    )


def _report(name: str, started: float, runs: int) -> None:
    seconds = time.perf_counter() - started
    print(f"[{name}] {runs} runs in {seconds:.0f} s ({seconds / runs:.1f} s a run)")


HEAD_DEPTHS = (0, 2)  # shallow vs SimCLR's 2-layer head (1 and 3 do not fit the CI budget)


def _spread(values: list[float]) -> float:
    return max(values) - min(values)


@pytest.mark.benchmark
def test_head_depth_loss(baseline, results_dir):
    """Figure 1 at CI scale: the five losses differ less with the deeper projection head.

    On the shapes testbed (`_shapes`: 6 kinds of shape at 16 px, DigitOnImages' backgrounds
    and augmentation before 2026-12-06), with the studies' two controls measured in the same
    run: the encoder trained supervised on the shape (upper reference) and untrained
    (random-init floor).
    Fitness, for every run measured: the supervised reference >= FIT_REFERENCE and NT-Xent
    with the depth-2 head >= FIT_GAP above the floor. Claim, for every run measured: spread
    (max - min linear accuracy over the five losses) at depth 2 < spread at depth 0.
    """
    started, runs = time.perf_counter(), runs_to_measure(baseline.update, SPREAD_SEEDS)
    cells = {
        f"{loss}/depth{depth}": dict(loss=loss, depth=depth)
        for depth in HEAD_DEPTHS
        for loss in FIGURE1_LOSSES
    }
    cells.update({model: dict(model=model) for model in REFERENCES})
    per_run = {
        key: [result["linear"] for result in results]
        for key, results in _measure(cells, runs).items()
    }
    points = {key: values[0] for key, values in per_run.items()}

    grid = np.array([[points[f"{loss}/depth{d}"] for d in HEAD_DEPTHS] for loss in FIGURE1_LOSSES])
    save_heatmap(
        os.path.join(results_dir, "head_depth_loss.png"),
        grid,
        row_labels=list(FIGURE1_LOSSES),
        column_labels=[str(d) for d in HEAD_DEPTHS],
        row_title="loss",
        column_title="projection head depth",
        title=(
            f"Linear probe accuracy, shapes {SHAPES_SIZE}px, ConvN, {STEPS} steps, seed 0\n"
            f"(supervised {points['supervised']:.3f}, random init {points['random_init']:.3f})"
        ),
        value_label="linear probe accuracy",
    )
    spreads = {
        run.label: {
            d: _spread([per_run[f"{loss}/depth{d}"][i] for loss in FIGURE1_LOSSES])
            for d in HEAD_DEPTHS
        }
        for i, run in enumerate(runs)
    }
    rows = [
        {"loss": loss, **{f"depth {d}": points[f"{loss}/depth{d}"] for d in HEAD_DEPTHS}}
        for loss in FIGURE1_LOSSES
    ]
    rows.append(
        {
            "loss": "spread (max-min)",
            **{f"depth {d}": spreads[runs[0].label][d] for d in HEAD_DEPTHS},
        }
    )
    rows += [{"loss": f"{model} (encoder)", "depth 0": points[model]} for model in REFERENCES]
    print("\n" + format_table(rows))
    _report("head_depth_loss", started, len(cells) * len(runs))

    baseline.check(
        "head_depth_loss",
        points,
        tolerance=spread_bands(per_run, MIN_BAND),
        description=f"linear probe accuracy per loss x head depth ({_setup()})",
        command=f"{COMMAND}::test_head_depth_loss",
        extra=record_extra(runs, MIN_BAND, per_run),
    )
    shallow, deep = HEAD_DEPTHS[0], HEAD_DEPTHS[-1]
    labels = [run.label for run in runs]
    unfit = _unfit_runs(labels, per_run, f"nt_xent/depth{deep}", "supervised", "random_init")
    assert not unfit, f"the shapes testbed is not fit (supervised, NT-Xent, floor): {unfit}"
    failed = {label: s for label, s in spreads.items() if not s[deep] < s[shallow]}
    assert not failed, f"spread across losses not smaller with the depth-{deep} head: {failed}"


TAUS = (0.1, 1.0, 10.0)
LAMBDAS = (0.01, 0.1, 1.0, 10.0)
# The tau x lambda study's training, its cells and controls alike: the other studies' images
# (200 steps of batch 256) in twice the updates. At 200 x 256 the decoupled preset was
# 0.247-0.331 above the floor over the six recorded runs, short of FIT_GAP on seed 0 with one
# thread per op (0.839 against 0.592); at 400 x 128 that run gives 0.911 (supervised 0.981),
# with the same best lambda per tau (0.01 / 0.1 / 10).
TAU_LAMBDA_TRAINING = {"batch_size": 128, "steps": 400}


# The cell whose probe the fitness rule compares with the floor: the decoupled loss at its
# paper preset.
TAU_LAMBDA_PRESET = "tau1/lambda0.1"


@pytest.fixture(scope="module")
def tau_lambda_runs(baseline, results_dir) -> tuple[tuple[Run, ...], dict[str, list[float]]]:
    """Decoupled NT-Xent over temperature x lambda, with the studies' two controls:
    (runs, {point: [value per run]}), checked against the baseline. The heatmap is the linear
    probe's, the best lambda of each tau outlined; kNN recorded too."""
    started, runs = time.perf_counter(), runs_to_measure(baseline.update, SPREAD_SEEDS)
    cells = {
        f"tau{tau:g}/lambda{lam:g}": dict(
            loss="decoupled", temperature=tau, lambda_weight=lam, **TAU_LAMBDA_TRAINING
        )
        for tau in TAUS
        for lam in LAMBDAS
    }
    cells.update({model: dict(model=model, **TAU_LAMBDA_TRAINING) for model in REFERENCES})
    results = _measure(cells, runs)
    per_run = {
        f"{key}/{probe}": [r[probe] for r in results[key]]
        for key in cells
        for probe in ("linear", "knn")
    }
    points = {key: values[0] for key, values in per_run.items()}
    controls = ", ".join(f"{model} {points[f'{model}/linear']:.3f}" for model in REFERENCES)
    save_heatmap(
        os.path.join(results_dir, "tau_lambda.png"),
        _tau_lambda_grid(per_run, "linear"),
        row_labels=[f"{t:g}" for t in TAUS],
        column_labels=[f"{lam:g}" for lam in LAMBDAS],
        row_title="temperature tau",
        column_title="lambda",
        title=(
            f"Decoupled NT-Xent, linear probe accuracy, {TAU_LAMBDA_TRAINING['steps']} steps of "
            f"batch {TAU_LAMBDA_TRAINING['batch_size']}, seed 0 (red: the best lambda at each "
            f"tau)\n(encoder {controls})"
        ),
        value_label="linear probe accuracy",
        mark_best_per_row=True,
    )
    for probe in ("linear", "knn"):
        print(f"\n{probe} accuracy (rows tau, columns lambda), seed 0:")
        rows = [
            {"tau": f"{t:g}", **{f"{lam:g}": v for lam, v in zip(LAMBDAS, row)}}
            for t, row in zip(TAUS, _tau_lambda_grid(per_run, probe))
        ]
        print(format_table(rows))
    print(f"controls (encoder): {controls}")
    _report("tau_lambda", started, len(cells) * len(runs))

    baseline.check(
        "tau_lambda",
        points,
        tolerance=spread_bands(per_run, MIN_BAND),
        description=(
            "decoupled NT-Xent linear and kNN accuracy per tau x lambda "
            f"({_setup(**TAU_LAMBDA_TRAINING)}), with "
            "the supervised reference and the random-init floor"
        ),
        command=f"{COMMAND}::test_tau_lambda",
        extra={
            **record_extra(runs, MIN_BAND, per_run),
            "best_lambda_per_tau": _best_lambdas(runs, per_run),
        },
    )
    return runs, per_run


def _tau_lambda_grid(per_run: dict[str, list[float]], probe: str, i: int = 0) -> np.ndarray:
    """Run i's accuracies, rows TAUS, columns LAMBDAS."""
    return np.array(
        [[per_run[f"tau{t:g}/lambda{lam:g}/{probe}"][i] for lam in LAMBDAS] for t in TAUS]
    )


def _best_lambdas(runs: tuple[Run, ...], per_run: dict[str, list[float]]) -> dict:
    """{run: [the lambda of the best linear probe (first of ties), per tau]}."""
    return {
        run.label: [LAMBDAS[j] for j in best_per_row(_tau_lambda_grid(per_run, "linear", i))]
        for i, run in enumerate(runs)
    }


@pytest.mark.benchmark
def test_tau_lambda(tau_lambda_runs):
    """Decoupled NT-Xent over temperature x lambda: the best lambda rises with tau.

    The paper: tau is (within a range) inversely related to lambda, i.e. a higher
    temperature weakens the distribution term, which a larger lambda compensates. Claim, for
    every run measured: the best lambda by the linear probe (arg-max over LAMBDAS, first of
    ties) never falls as tau rises, and it is higher at the largest tau than at the smallest.
    On the digits, where the linear probe was saturated (0.89-0.98, neighbours one or two of
    the 360 test images apart), the claim was asserted on the kNN probe instead.
    """
    runs, per_run = tau_lambda_runs
    best = _best_lambdas(runs, per_run)
    print(f"best lambda per tau {TAUS}: {best}")
    failed = {
        label: b
        for label, b in best.items()
        if any(x > y for x, y in zip(b, b[1:])) or not b[-1] > b[0]
    }
    assert not failed, f"best lambda does not rise with tau {TAUS} in these runs: {failed}"


@pytest.mark.benchmark
def test_tau_lambda_testbed_is_fit_on_every_recorded_run(baseline, tau_lambda_runs):
    """The studies' fitness rule, for every recorded run (every spread seed and kernel set,
    which a comparing run does not measure; `tau_lambda_runs` records them first when
    recording): the supervised reference >= FIT_REFERENCE and the decoupled loss at its
    preset (`TAU_LAMBDA_PRESET`) >= FIT_GAP above the floor."""
    runs, per_run = baseline.recorded_runs("tau_lambda")
    unfit = _unfit_runs(
        runs, per_run, f"{TAU_LAMBDA_PRESET}/linear", "supervised/linear", "random_init/linear"
    )
    assert not unfit, f"the shapes testbed is not fit (supervised, decoupled, floor): {unfit}"


BATCH_SIZES = (32, 128, 512)
BATCH_LOSSES = ("nt_xent", "decoupled", "swd_hypersphere")
# The least gain in linear accuracy from batch 32 to 512 the claim asks of every loss and run
# (calibration on the shapes, seeds 0 / 1: 0.18-0.25; on the digits, where this study ran
# before, an untrained encoder already probes ~0.95 and the gain was -0.006 to 0.017).
MIN_BATCH_GAIN = 0.05


@pytest.fixture(scope="module")
def batch_size_runs(baseline, results_dir) -> tuple[tuple[Run, ...], dict[str, list[float]]]:
    """Sensitivity of NT-Xent and the generalized losses to the batch size (fixed steps):
    (runs, {point: [value per run]}), checked against the baseline.

    On the head-depth study's shapes testbed (`_shapes`), with the studies' two controls of
    the curve measured in the same run: the encoder trained supervised on the shape (upper
    reference, batch `BATCH_SIZE`) and untrained (random-init floor). Reported: accuracy vs
    batch size, a line per loss, with both controls, and each loss's range over batch sizes.
    At a fixed number of steps the larger batch also sees more images.
    """
    started, runs = time.perf_counter(), runs_to_measure(baseline.update, SPREAD_SEEDS)
    cells = {
        f"{loss}/batch{b}": dict(loss=loss, batch_size=b)
        for loss in BATCH_LOSSES
        for b in BATCH_SIZES
    }
    cells.update({model: dict(model=model) for model in REFERENCES})
    results = _measure(cells, runs)
    per_run = {
        f"{key}/{probe}": [r[probe] for r in results[key]]
        for key in cells
        for probe in ("linear", "knn")
    }
    points = {key: values[0] for key, values in per_run.items()}

    def series(probe: str) -> list[Series]:
        return [
            Series(
                loss, list(BATCH_SIZES), [points[f"{loss}/batch{b}/{probe}"] for b in BATCH_SIZES]
            )
            for loss in BATCH_LOSSES
        ]

    save_curve_panels(
        os.path.join(results_dir, "batch_size.png"),
        [
            CurvePanel(
                series(probe),
                "batch size",
                f"{name} accuracy",
                title=name,
                x_scale="log",
                reference_lines={
                    f"{model} (batch {BATCH_SIZE})": points[f"{model}/{probe}"]
                    for model in REFERENCES
                },
            )
            for probe, name in (("linear", "linear probe"), ("knn", f"kNN (k={KNN_K})"))
        ],
        title=f"Batch size, shapes {SHAPES_SIZE}px, ConvN, head depth 2, {STEPS} steps (seed 0)",
    )
    rows = [
        {
            "loss": loss,
            **{f"batch {b}": points[f"{loss}/batch{b}/linear"] for b in BATCH_SIZES},
            "range": _spread([points[f"{loss}/batch{b}/linear"] for b in BATCH_SIZES]),
        }
        for loss in BATCH_LOSSES
    ]
    controls = ", ".join(f"{model} {points[f'{model}/linear']:.3f}" for model in REFERENCES)
    print(f"\nlinear accuracy, seed 0:\n{format_table(rows)}")
    print(f"controls (batch {BATCH_SIZE}): {controls}")
    _report("batch_size", started, len(cells) * len(runs))

    baseline.check(
        "batch_size",
        points,
        tolerance=spread_bands(per_run, MIN_BAND),
        description=(
            f"linear and kNN accuracy per loss x batch size ({_setup()}; batch as "
            "given), with the supervised reference and the random-init floor"
        ),
        command=f"{COMMAND}::test_batch_size_curve",
        extra=record_extra(runs, MIN_BAND, per_run),
    )
    return runs, per_run


@pytest.mark.benchmark
def test_batch_size_curve(batch_size_runs):
    """Every point within its band of the baseline (checked by the fixture), on a fit testbed:
    for every run measured, the supervised reference >= FIT_REFERENCE and NT-Xent at the
    largest batch >= FIT_GAP above the floor."""
    runs, per_run = batch_size_runs
    unfit = _unfit_runs(
        [run.label for run in runs],
        per_run,
        f"nt_xent/batch{BATCH_SIZES[-1]}/linear",
        "supervised/linear",
        "random_init/linear",
    )
    assert not unfit, f"the shapes testbed is not fit (supervised, NT-Xent, floor): {unfit}"


@pytest.mark.benchmark
def test_larger_batch_is_better(batch_size_runs):
    """Claim (SimCLR's finding that contrastive learning benefits from larger batches; the
    paper finds larger batches help slightly against feature suppression too), for every
    run measured: for every loss, linear accuracy at the largest batch >= MIN_BATCH_GAIN
    above that at the smallest."""
    runs, per_run = batch_size_runs
    small, large = BATCH_SIZES[0], BATCH_SIZES[-1]
    failed = [
        (
            run.label,
            loss,
            per_run[f"{loss}/batch{small}/linear"][i],
            per_run[f"{loss}/batch{large}/linear"][i],
        )
        for i, run in enumerate(runs)
        for loss in BATCH_LOSSES
        if per_run[f"{loss}/batch{large}/linear"][i]
        < per_run[f"{loss}/batch{small}/linear"][i] + MIN_BATCH_GAIN
    ]
    assert not failed, (
        f"(run, loss, accuracy at batch {small}, at {large}) where the larger batch does not "
        f"gain {MIN_BATCH_GAIN}: {failed}"
    )
