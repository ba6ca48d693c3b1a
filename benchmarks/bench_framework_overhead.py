r"""Framework overhead of the contrastive train step, and the augmentation pipeline against it.

1. Train step, images/s (source images; each gives two views): `ContrastiveModel`'s
   compiled train step (Keras's `train_function`, what `fit` runs per step: the loss with
   its alignment / distribution terms, contrastive accuracy, one online probe, metric
   trackers) and the whole `fit` loop, against a bare step: the same encoder and head
   architectures, `nt_xent` and the same optimizer (LARS, no weight decay) in one
   `tf.function`, on the same batch tensors. Overhead = bare rate / model rate - 1 (goal:
   <= 10%). The bare and the model step alternate step by step and their median step
   times count (robust to other work on a shared machine); `fit` is timed per call of
   `--fit-steps` steps, its setup included (pretraining makes one call per run).
2. Compute: the model step's achieved FLOP/s (3x the forward FLOPs of the encoder's and
   head's Conv2D / Dense layers, two views per image) against a 1024 x 1024 float32 matmul's
   FLOP/s measured in the same run (goal: flop_ratio >= 0.3).
3. Augmentation: images/s of `two_view_dataset` (the experiment's augmentation, same batch
   size; `bench_input_pipeline.measure`) against the model step's rate (goal: >= 3x).
   The pipeline is timed alone; in CPU-only training it shares the cores with the step.

Cases: ConvN on 28x28x1 at batch 256 (RandBit augmentation) and ResNet-18 with the CIFAR
stem on 32x32x3 at batch 32 (CIFAR augmentation). Not a test: it prints a table and, with
--output_dir, writes results.json / results.csv.

    python benchmarks/bench_framework_overhead.py \
        [--steps 20] [--fit-steps 10] [--cases convn resnet18]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_input_pipeline import measure as pipeline_images_per_second  # noqa: E402

from cl_properties.data import AugmentConfig, cifar_augment, crop_augment  # noqa: E402
from cl_properties.losses import ContrastiveLoss, nt_xent  # noqa: E402
from cl_properties.models import ProjectionHead, build_encoder  # noqa: E402
from cl_properties.models.contrastive import ContrastiveModel  # noqa: E402
from cl_properties.optimization import OptimizerConfig, build_optimizer  # noqa: E402
from cl_properties.results import format_table, write_results  # noqa: E402

TEMPERATURE = 0.1
NUM_CLASSES = 10
OPTIMIZER = OptimizerConfig(
    name="lars", learning_rate=0.1, lr_scaling="none", schedule="constant", weight_decay=0.0
)


@dataclass(frozen=True)
class Case:
    encoder: str
    shape: tuple[int, int, int]
    batch_size: int
    augment: AugmentConfig


CASES = {
    "convn": Case("convn", (28, 28, 1), 256, crop_augment()),
    "resnet18": Case("resnet18", (32, 32, 3), 32, cifar_augment()),
}


def _networks(case: Case) -> tuple[keras.Model, ProjectionHead]:
    encoder = build_encoder(case.encoder, input_shape=case.shape)
    head = ProjectionHead(depth=2, output_dim=128)
    head.build(encoder.output_shape)
    return encoder, head


def _optimizer(variables) -> keras.optimizers.Optimizer:
    optimizer = build_optimizer(OPTIMIZER, batch_size=1, total_steps=10**6)
    optimizer.build(variables)
    return optimizer


def bare_step(case: Case, jit_compile: bool = False):
    """A tf.function (view1, view2) -> loss: encoder, head, nt_xent, gradients, LARS."""
    encoder, head = _networks(case)
    variables = encoder.trainable_variables + head.trainable_variables
    optimizer = _optimizer(variables)

    @tf.function(jit_compile=jit_compile)
    def step(view1, view2):
        with tf.GradientTape() as tape:
            z = head(encoder(tf.concat([view1, view2], axis=0), training=True), training=True)
            z1, z2 = tf.split(tf.cast(z, tf.float32), 2)  # the loss in float32 (mixed precision)
            loss = nt_xent(z1, z2, temperature=TEMPERATURE)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def contrastive_model(case: Case, jit_compile: bool = False) -> ContrastiveModel:
    encoder, head = _networks(case)
    model = ContrastiveModel(
        encoder,
        head,
        ContrastiveLoss(method="nt_xent", temperature=TEMPERATURE),
        probes={"label": NUM_CLASSES},
    )
    model.compile(optimizer=_optimizer(model.trainable_variables), jit_compile=jit_compile)
    return model


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of one example through `model`'s Conv2D and Dense layers (nested
    models included; BN, activations and pooling are not counted)."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w, channels_in, _ = layer.kernel.shape
            total += 2 * height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return total


def matmul_flop_s(size: int = 1024, repeats: int = 20) -> float:
    """This machine's float32 matmul FLOP/s (size x size, the median of `repeats` calls)."""
    a, b = (tf.random.stateless_normal((size, size), seed=(0, i)) for i in range(2))
    matmul = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    matmul(a, b).numpy()
    seconds = _median_seconds({"matmul": lambda: matmul(a, b).numpy()}, repeats)["matmul"]
    return 2 * size**3 / seconds


def _median_seconds(runs: dict, count: int) -> dict[str, float]:
    """Median seconds of a call of each of `runs` (name -> callable), over `count` rounds
    that call them in turn, so that all see the same load."""
    seconds = {name: [] for name in runs}
    for _ in range(count):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def measure_case(
    case: Case,
    *,
    steps: int,
    fit_steps: int,
    fit_repeats: int,
    pipeline_batches: int,
    seed: int = 0,
) -> dict:
    """Images/s of the bare step, the model's compiled step, `fit` and the pipeline.

    Steps: the bare and the model step alternate, one synchronized step each, `steps`
    times; their median times give the rates (robust to other work on a shared machine).
    fit: the median of `fit_repeats` calls of `fit_steps` steps (a call's setup included).
    Overheads: bare rate / model rate - 1.
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    view1, view2 = (
        tf.constant(rng.random((case.batch_size, *case.shape), dtype=np.float32)) for _ in range(2)
    )
    labels = {"label": tf.constant(rng.integers(0, NUM_CLASSES, case.batch_size), tf.int32)}
    batches = tf.data.Dataset.from_tensors(((view1, view2), labels)).repeat()

    step = bare_step(case)
    model = contrastive_model(case)
    model.make_train_function()
    train_function = model.train_function  # what fit runs per step
    iterator = iter(batches)
    step(view1, view2).numpy()  # trace and warm up
    float(train_function(iterator)["loss"])
    model.fit(batches, epochs=1, steps_per_epoch=2, verbose=0)

    per_step = _median_seconds(
        {
            "bare": lambda: step(view1, view2).numpy(),
            "model_step": lambda: float(train_function(iterator)["loss"]),
        },
        steps,
    )
    fit = (
        _median_seconds(
            {"fit": lambda: model.fit(batches, epochs=1, steps_per_epoch=fit_steps, verbose=0)},
            fit_repeats,
        )["fit"]
        / fit_steps
    )
    rates = {name: case.batch_size / seconds for name, seconds in {**per_step, "fit": fit}.items()}
    # A train step is ~3x the forward pass (forward, input gradients, weight gradients), for
    # both views of each source image; the peak is a large matmul, measured now.
    step_flops = 3 * 2 * (forward_flops(model.encoder) + forward_flops(model.head))
    achieved = rates["model_step"] * step_flops
    peak = matmul_flop_s()
    pipeline = pipeline_images_per_second(
        case.shape,
        case.augment,
        batch_size=case.batch_size,
        batches=pipeline_batches,
        warmup=2,
        num_images=max(4 * case.batch_size, 1024),
        seed=seed,
    )
    return {
        "case": case.encoder,
        "input": "x".join(map(str, case.shape)),
        "batch": case.batch_size,
        "bare_img_s": rates["bare"],
        "model_step_img_s": rates["model_step"],
        "fit_img_s": rates["fit"],
        "step_overhead": rates["bare"] / rates["model_step"] - 1.0,
        "fit_overhead": rates["bare"] / rates["fit"] - 1.0,
        "pipeline_img_s": pipeline,
        "pipeline_ratio": pipeline / rates["model_step"],
        "step_gflop_s": achieved / 1e9,
        "matmul_gflop_s": peak / 1e9,
        "flop_ratio": achieved / peak,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    """Runs the cases, prints the table and returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), default=list(CASES))
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="timed steps of the bare and the model step (alternating)",
    )
    parser.add_argument("--fit-steps", type=int, default=10, help="steps per timed fit call")
    parser.add_argument("--fit-repeats", type=int, default=3, help="timed fit calls")
    parser.add_argument("--pipeline-batches", type=int, default=10, help="timed pipeline batches")
    parser.add_argument(
        "--output_dir", default=None, help="also write results.json / results.csv here"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    print(
        f"framework overhead and augmentation throughput, {os.cpu_count()} CPUs, TF "
        f"{tf.__version__}",
        flush=True,
    )
    rows = []
    for name in args.cases:
        rows.append(
            measure_case(
                CASES[name],
                steps=args.steps,
                fit_steps=args.fit_steps,
                fit_repeats=args.fit_repeats,
                pipeline_batches=args.pipeline_batches,
            )
        )
        print(format_table(rows[-1:]), flush=True)
    print("\nsummary (goals: step_overhead <= 0.10, pipeline_ratio >= 3, flop_ratio >= 0.3)")
    print(format_table(rows))
    if args.output_dir:
        write_results(
            args.output_dir,
            rows=rows,
            config=vars(args),
            seed=0,
            wall_time_s=time.perf_counter() - started,
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
