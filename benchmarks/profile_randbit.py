"""Where the time of one RandBit configuration goes, phase by phase, in one process.

    python benchmarks/profile_randbit.py [--bits=10] [--steps=300] [--linear_epochs=90]
        [--image_size=N] [--jit_compile=auto|on|off]

Builds the job the main job's defaults describe (ConvN, head 256 -> 64, Adam, batch 256,
tau 0.1) and times each phase of `train_and_evaluate` separately: dataset build, the first
training loop (tracing and compilation included), the other loops, the online-probe
evaluation, frozen-feature extraction, the linear probe and kNN per probe key. The process
start-up (Python, TensorFlow, Keras imports) is timed before anything else runs.
"""

from __future__ import annotations

import time

_started = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from cl_properties.evaluation import extract_features, knn_accuracy, linear_eval  # noqa: E402
from cl_properties.experiments import randbit, suppression  # noqa: E402
from cl_properties.training import pretrain  # noqa: E402
from cl_properties.training.evaluate import eval_batches, training_views  # noqa: E402

IMPORTS_S = time.perf_counter() - _started


class _LoopTimer(keras.callbacks.Callback):
    """Seconds of each Keras epoch (one loop of steps_per_loop steps)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._begin = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._begin)


def profile(
    bits: int, steps: int, linear_epochs: int, jit: str, image_size: int | None = None
) -> list[tuple[str, float]]:
    """[(phase, seconds)] of one configuration, in the order they run."""
    randbit.define_flags()
    flags.FLAGS(
        [
            "profile",
            f"--bits={bits}",
            "--temperatures=0.1",
            "--models=contrastive",
            f"--steps={steps}",
            f"--linear_epochs={linear_epochs}",
        ]
    )
    options = randbit.RandBitOptions(image_size=image_size)
    job = suppression.jobs_from_flags(
        randbit.EXPERIMENT, [{"bits": bits}], options, variants=[{"bit_mode": "shared"}]
    )[0]
    jit_compile = {"auto": None, "on": True, "off": False}[jit]
    job = dataclasses.replace(
        job, pretrain=dataclasses.replace(job.pretrain, jit_compile=jit_compile)
    )
    phases = [("process start-up: imports", IMPORTS_S)]

    def timed(name, fn):
        begin = time.perf_counter()
        value = fn()
        phases.append((name, time.perf_counter() - begin))
        return value

    data = timed("dataset build (digits, RandBit labels)", lambda: randbit.build_data(job))
    timer = _LoopTimer()
    result = timed(
        "pretraining (total)",
        lambda: pretrain(
            job.pretrain,
            input_shape=data.input_shape,
            probes=data.probes,
            train_data=lambda context, start: training_views(
                job.pretrain, data, input_context=context, start_step=start
            ),
            callbacks=[timer],
            verbose=0,
        ),
    )
    loop = job.pretrain.steps_per_loop
    phases.append((f"  first loop of {loop} steps (tracing included)", timer.seconds[0]))
    rest = sum(timer.seconds[1:])
    phases.append((f"  other {len(timer.seconds) - 1} loops", rest))
    if len(timer.seconds) > 1:
        per_image = (len(timer.seconds) - 1) * loop * job.pretrain.batch_size / rest
        print(f"steady training: {per_image:.0f} images/s (pairs of views)", file=sys.stderr)
    timed(
        "online-probe evaluation",
        lambda: result.model.evaluate(
            eval_batches(data, data.test, job.evaluation), verbose=0, return_dict=True
        ),
    )
    train_x, train_y = timed(
        "features: train split",
        lambda: extract_features(result.model, eval_batches(data, data.train, job.evaluation)),
    )
    test_x, test_y = timed(
        "features: test split",
        lambda: extract_features(result.model, eval_batches(data, data.test, job.evaluation)),
    )
    for key, classes in data.probes.items():
        timed(
            f"linear probe '{key}' ({linear_epochs} epochs)",
            lambda key=key, classes=classes: linear_eval(
                train_x,
                train_y[key],
                test_x,
                test_y[key],
                epochs=linear_epochs,
                batch_size=job.evaluation.batch_size,
                learning_rate=job.evaluation.linear_learning_rate,
                seed=0,
                num_classes=classes,
            ),
        )
        timed(
            f"kNN '{key}' (k={job.evaluation.knn_k})",
            lambda key=key, classes=classes: knn_accuracy(
                train_x,
                train_y[key],
                test_x,
                test_y[key],
                k=job.evaluation.knn_k,
                temperature=job.evaluation.knn_temperature,
                num_classes=classes,
            ),
        )
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--linear_epochs", type=int, default=90)
    parser.add_argument("--jit_compile", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--image_size", type=int, default=None, help="digits' side (28)")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    phases = profile(args.bits, args.steps, args.linear_epochs, args.jit_compile, args.image_size)
    total = time.perf_counter() - _started
    width = max(len(name) for name, _ in phases)
    for name, seconds in phases:
        print(f"{name:<{width}}  {seconds:7.2f} s")
    print(f"{'total (wall)':<{width}}  {total:7.2f} s")


if __name__ == "__main__":
    main()
