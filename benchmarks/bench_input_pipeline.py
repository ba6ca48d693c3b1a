"""Throughput of the two-view augmentation pipeline (`two_view_dataset`) on random data.

For each case, builds the pipeline on random in-memory images, pulls `--warmup` batches
(tracing, autotuning, buffers), then times `--batches` more and prints source images per
second (each image gives two views) for the whole pipeline: shuffle, two augmentations,
batching and prefetch, on this machine's CPUs.

    python benchmarks/bench_input_pipeline.py [--batch-size 256] [--batches 20] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cl_properties.data import (  # noqa: E402
    AugmentConfig,
    cifar_augment,
    crop_augment,
    source_from_arrays,
    two_view_dataset,
)

CASES: dict[str, tuple[tuple[int, int, int], AugmentConfig]] = {
    "cifar (s=0.5)": ((32, 32, 3), cifar_augment()),
    "cifar + blur": ((32, 32, 3), cifar_augment(blur=True)),
    "randbit (MNIST)": ((28, 28, 1), crop_augment()),
}


def measure(
    shape: tuple[int, int, int],
    config: AugmentConfig,
    *,
    batch_size: int,
    batches: int,
    warmup: int,
    num_images: int,
    seed: int = 0,
) -> float:
    """Source images per second through `two_view_dataset` after `warmup` batches."""
    images = np.random.default_rng(seed).random((num_images, *shape), dtype=np.float32)
    source = source_from_arrays(images, {"label": np.zeros(num_images, np.int32)})
    dataset = two_view_dataset(
        source, config, batch_size=batch_size, seed=seed, shuffle_buffer=num_images
    )
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        (view1, view2), _ = next(iterator)
    view2.numpy()  # make sure the last batch is materialized
    return batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> list[dict]:
    """Runs every case, prints a table and returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    parser.add_argument("--num-images", type=int, default=4096, help="size of the random source")
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args(argv)

    rows = []
    print(f"two_view_dataset throughput, batch {args.batch_size}, {os.cpu_count()} CPUs")
    print(f"{'case':<18} {'image':<10} {'images/s':>10} {'views/s':>10}")
    for name in args.cases:
        shape, config = CASES[name]
        rate = measure(
            shape,
            config,
            batch_size=args.batch_size,
            batches=args.batches,
            warmup=args.warmup,
            num_images=args.num_images,
        )
        rows.append({"case": name, "shape": shape, "images_per_s": rate})
        print(f"{name:<18} {'x'.join(map(str, shape)):<10} {rate:>10.0f} {2 * rate:>10.0f}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
