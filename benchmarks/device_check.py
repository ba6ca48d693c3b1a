r"""The accelerator check: one unattended run (< 8 minutes on one GPU), one printed table.

1. Train step, images/s (source images; each gives two views) of our `ContrastiveModel`'s
   compiled step against a bare step (same encoder, head, NT-Xent and LARS in one
   `tf.function`; `bench_framework_overhead`), for ResNet-18 on CIFAR (32 px) and
   ResNet-50 at 224 px, in float32 and mixed_bfloat16, without and with XLA.
2. Losses: NT-Xent and SWD (normal prior) value + gradient, ms per call, at batch 4096 and
   16384 (d = 128; `bench_loss_speed`).
3. Input pipeline: `two_view_dataset` images/s with ImageNet augmentation to 224 px on all
   cores, against the best ResNet-50 step rate (goal: ratio >= 1, the pipeline keeps up).

The checks run cheapest first; once --budget_s is spent the rest are listed as skipped, so
the table always comes out. --tiny runs every check at toy sizes (ConvN, 16 px, batch 8): a
CPU test of the script, not a measurement.

    python benchmarks/device_check.py [--budget_s=420] [--output_dir=runs/device_check]
    python benchmarks/device_check.py --tiny
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_framework_overhead import Case, _median_seconds, bare_step, contrastive_model  # noqa: E402
from bench_input_pipeline import measure as pipeline_images_per_second  # noqa: E402
from bench_loss_speed import losses_to_time, median_seconds, value_and_gradient  # noqa: E402

from cl_properties.data import cifar_augment, crop_augment, imagenet_augment  # noqa: E402
from cl_properties.results import format_table, write_results  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
LOSSES = ("nt_xent", "swd_normal")
EMBEDDING_DIM = 128


def _setup(tiny: bool) -> dict:
    """Sizes of every check: the real ones, or toy ones for --tiny."""
    if tiny:
        return {
            "steps": {"convn_16px": Case("convn", (16, 16, 1), 8, crop_augment())},
            "step_repeats": 2,
            "loss_batches": (16, 32),
            "pipeline": ((40, 40, 3), imagenet_augment(output_size=32), 8, 2),
            "pipeline_case": "convn_16px",
        }
    return {
        "steps": {
            "resnet18_cifar": Case("resnet18", (32, 32, 3), 512, cifar_augment()),
            "resnet50_224px": Case("resnet50", (224, 224, 3), 128, imagenet_augment()),
        },
        "step_repeats": 10,
        "loss_batches": (4096, 16384),
        # Source images larger than the crop, as ImageNet's are: (shape, augment, batch, batches).
        "pipeline": ((256, 256, 3), imagenet_augment(), 128, 10),
        "pipeline_case": "resnet50_224px",
    }


def _step_rates(case: Case, precision: str, jit: bool, repeats: int) -> dict:
    """Images/s of the model's compiled step and the bare step (alternating, medians)."""
    keras.config.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        view1, view2 = (
            tf.constant(rng.random((case.batch_size, *case.shape), dtype=np.float32))
            for _ in range(2)
        )
        labels = {"label": tf.constant(rng.integers(0, 10, case.batch_size), tf.int32)}
        iterator = iter(tf.data.Dataset.from_tensors(((view1, view2), labels)).repeat())
        step = bare_step(case, jit_compile=jit)
        model = contrastive_model(case, jit_compile=jit)
        model.make_train_function()
        step(view1, view2).numpy()  # trace, compile, warm up
        float(model.train_function(iterator)["loss"])
        seconds = _median_seconds(
            {
                "bare": lambda: step(view1, view2).numpy(),
                "model": lambda: float(model.train_function(iterator)["loss"]),
            },
            repeats,
        )
    finally:
        keras.config.set_dtype_policy("float32")
    return {name: case.batch_size / value for name, value in seconds.items()}


def _loss_ms(name: str, batch: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    z1, z2 = (tf.constant(rng.normal(size=(batch, EMBEDDING_DIM)), tf.float32) for _ in range(2))
    loss = losses_to_time(tf.constant([0, 0], tf.int32))[name]
    step = value_and_gradient(loss)
    return 1000 * median_seconds(step, [z1, z2], warmup=2, repeats=repeats)


def checks(setup: dict) -> list[tuple[dict, Callable[[], dict]]]:
    """(row identity, measurement -> the rest of the row), cheapest first."""
    planned = []
    for name in LOSSES:
        for batch in setup["loss_batches"]:
            planned.append(
                (
                    {"check": "loss fwd+bwd", "case": name, "batch": batch},
                    lambda name=name, batch=batch: {
                        "value": _loss_ms(name, batch, setup["step_repeats"]),
                        "unit": "ms",
                    },
                )
            )
    for jit in (False, True):
        for precision in PRECISIONS:
            for label, case in setup["steps"].items():
                identity = {
                    "check": "train step",
                    "case": label,
                    "precision": precision,
                    "xla": jit,
                    "batch": case.batch_size,
                }

                def measure(case=case, precision=precision, jit=jit):
                    rates = _step_rates(case, precision, jit, setup["step_repeats"])
                    return {
                        "value": rates["model"],
                        "unit": "img/s",
                        "bare_img_s": rates["bare"],
                        "overhead": rates["bare"] / rates["model"] - 1.0,
                    }

                planned.append((identity, measure))
    shape, augment, batch, batches = setup["pipeline"]
    planned.append(
        (
            {"check": "input pipeline", "case": f"{shape[0]}px -> {augment.output_size}px"},
            lambda: {
                "value": pipeline_images_per_second(
                    shape,
                    augment,
                    batch_size=batch,
                    batches=batches,
                    warmup=2,
                    num_images=4 * batch,
                ),
                "unit": "img/s",
                "batch": batch,
            },
        )
    )
    return planned


def main(argv: list[str] | None = None) -> list[dict]:
    """Runs the checks within the budget, prints the table and returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes: a CPU test of the script")
    parser.add_argument(
        "--budget_s", type=float, default=420.0, help="start no check after this many seconds"
    )
    parser.add_argument("--output_dir", default=None, help="also write results.json / .csv here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(
        f"device check: TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"devices {devices}",
        flush=True,
    )
    setup = _setup(args.tiny)
    rows = []
    for identity, measure in checks(setup):
        elapsed = time.perf_counter() - started
        if elapsed > args.budget_s:
            rows.append({**identity, "note": f"skipped: budget {args.budget_s:.0f} s spent"})
            continue
        begin = time.perf_counter()
        try:
            rows.append({**identity, **measure()})
        except (tf.errors.OpError, ValueError, RuntimeError) as error:  # e.g. out of memory
            rows.append({**identity, "note": f"failed: {type(error).__name__}"})
        rows[-1]["seconds"] = round(time.perf_counter() - begin, 1)
        print(format_table(rows[-1:]), flush=True)
    steps = [
        r["value"]
        for r in rows
        if r.get("check") == "train step"
        and r.get("case") == setup["pipeline_case"]
        and "value" in r
    ]
    pipeline = rows[-1]
    if steps and "value" in pipeline:
        pipeline["vs_best_step"] = pipeline["value"] / max(steps)
    columns = [
        "check",
        "case",
        "precision",
        "xla",
        "batch",
        "value",
        "unit",
        "bare_img_s",
        "overhead",
        "vs_best_step",
        "seconds",
        "note",
    ]
    print(
        f"\nsummary ({time.perf_counter() - started:.0f} s; goal: input pipeline vs_best_step >= 1)"
    )
    print(format_table(rows, columns))
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
