"""Forward + backward time of every loss of the family, and SWD's real sort against the
official colab's O(d n^2) rank trick, measured in the same run.

    python benchmarks/bench_loss_speed.py [--sizes 256 1024 4096 8192] [--dim 128]

n is the batch per view: z1, z2 are (n, d), so NT-Xent builds a (2n, 2n) similarity matrix
and SWD sorts m = 2n values per projected direction. Every timing is a tf.function computing
the loss and its gradient with respect to the inputs, warmed up first; the median of
`--repeats` runs is reported. Not a test: it asserts nothing about speed, it prints.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from cl_properties.losses import (
    PRIORS,
    generalized_contrastive_loss,
    nt_xent,
    sliced_wasserstein_loss,
    swd_draws,
)


def rank_sort_order(x: tf.Tensor, chunk: int) -> tf.Tensor:
    """For each row of x (k, m), the column indices that sort it, found with the colab's
    trick: rank_j = #{i: x_i < x_j} by pairwise comparison, then the inverse permutation by a
    one-hot contraction; O(k m^2) time and memory (rows are processed `chunk` at a time to
    bound memory). Ties are broken by position (rank_j also counts equal x_i with i < j):
    float32 batches of a few thousand values do contain ties, and tied ranks would break the
    permutation."""
    k, m = x.shape
    index = tf.range(m, dtype=tf.float32)
    earlier = tf.range(m)[None, :] < tf.range(m)[:, None]  # [j, i]: i < j

    def order_of(rows):  # (chunk, m) -> (chunk, m)
        smaller = rows[:, None, :] < rows[:, :, None]  # [c, j, i]: x_i < x_j
        tied_earlier = (rows[:, None, :] == rows[:, :, None]) & earlier
        rank = tf.reduce_sum(tf.cast(smaller | tied_earlier, tf.int32), axis=-1)
        one_hot = tf.one_hot(rank, m, dtype=tf.float32)  # [c, j, r]: x_j is r-th smallest
        return tf.cast(tf.einsum("cjr,j->cr", one_hot, index), tf.int32)

    chunks = tf.reshape(tf.stop_gradient(x), (k // chunk, chunk, m))
    order = tf.map_fn(order_of, chunks, fn_output_signature=tf.int32, parallel_iterations=1)
    return tf.reshape(order, (k, m))


def rank_sort_swd(states, prior_samples, projection, chunk: int):
    """`sliced_wasserstein_loss` with the rank-trick sort in place of tf.sort (the reference)."""
    projected = tf.transpose(states @ projection)
    projected_prior = tf.transpose(tf.stop_gradient(prior_samples) @ projection)
    sorted_states = tf.gather(projected, rank_sort_order(projected, chunk), batch_dims=1)
    sorted_prior = tf.gather(projected_prior, rank_sort_order(projected_prior, chunk), batch_dims=1)
    return tf.reduce_mean(tf.square(sorted_prior - sorted_states))


def rank_chunk(dim: int, m: int, budget_elements: int) -> int:
    """Rows per rank-trick chunk: the largest divisor of `dim` keeping chunk * m^2 in budget."""
    chunk = max(1, min(dim, budget_elements // (m * m)))
    while dim % chunk:
        chunk -= 1
    return chunk


def value_and_gradient(loss_of: Callable) -> Callable:
    """A tf.function returning the loss and its gradients with respect to every input."""

    @tf.function
    def step(*inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = loss_of(*inputs)
        return loss, tape.gradient(loss, inputs)

    return step


def median_seconds(step: Callable, inputs: Sequence[tf.Tensor], warmup: int, repeats: int) -> float:
    """Median wall time of `step(*inputs)`, its results copied to the host each time."""

    def run():
        loss, grads = step(*inputs)
        loss.numpy()
        for g in grads:
            g.numpy()

    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def losses_to_time(step_seed: tf.Tensor) -> dict[str, Callable]:
    losses = {
        "nt_xent": lambda z1, z2: nt_xent(z1, z2, temperature=0.1),
        "decoupled": lambda z1, z2: (
            generalized_contrastive_loss(z1, z2, temperature=1.0, lambda_weight=0.1).loss
        ),
    }
    for prior in PRIORS:
        losses[f"swd_{prior}"] = lambda z1, z2, prior=prior: (
            generalized_contrastive_loss(
                z1, z2, distribution="swd", prior=prior, lambda_weight=5.0, seed=step_seed
            ).loss
        )
    return losses


def check_reference(dim: int, budget: int) -> float:
    """Max |difference| between our SWD and the rank-trick reference, value and gradient."""
    rng = np.random.default_rng(0)
    states = tf.constant(rng.normal(size=(64, dim)), tf.float32)
    projection, samples = swd_draws("normal", 64, dim, seed=0)
    chunk = rank_chunk(dim, 64, budget)
    ours = value_and_gradient(lambda h: sliced_wasserstein_loss(h, samples, projection))(states)
    ref = value_and_gradient(lambda h: rank_sort_swd(h, samples, projection, chunk))(states)
    return max(abs(float(ours[0] - ref[0])), float(tf.reduce_max(tf.abs(ours[1][0] - ref[1][0]))))


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 1024, 4096, 8192],
        help="batch sizes n per view",
    )
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension d")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--rank-sort-repeats", type=int, default=3, help="repeats for the slow rank-trick reference"
    )
    parser.add_argument(
        "--rank-sort-max-n",
        type=int,
        default=4096,
        help="largest n for the rank-trick reference (it costs O(d (2n)^2))",
    )
    parser.add_argument(
        "--rank-sort-budget",
        type=int,
        default=2**27,
        help="elements per rank-trick chunk (d_chunk * (2n)^2)",
    )
    args = parser.parse_args(argv)

    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(
        f"device: {device}; TensorFlow {tf.__version__}; d = {args.dim}; n = batch per view, "
        f"SWD sorts m = 2n values per direction"
    )
    print(
        f"forward + backward, median of {args.repeats} after {args.warmup} warm-up runs "
        f"(rank trick: {args.rank_sort_repeats}), milliseconds"
    )
    difference = check_reference(args.dim, args.rank_sort_budget)
    print(
        f"rank-trick reference vs ours at n = 32: max |value or gradient difference| = "
        f"{difference:.2e}"
    )
    if difference > 1e-4:
        raise RuntimeError("the rank-trick reference disagrees with sliced_wasserstein_loss")

    seed = tf.constant([0, 1], tf.int64)
    timed_losses = losses_to_time(seed)
    names = [*timed_losses, "swd_term_sort", "swd_term_rank", "rank/sort", "sort ns/(m log2 m)"]
    print(" ".join([f"{'n':>6s}"] + [f"{name:>18s}" for name in names]))
    rows = []
    rng = np.random.default_rng(0)
    for n in args.sizes:
        m = 2 * n
        z1, z2 = (tf.constant(rng.normal(size=(n, args.dim)), tf.float32) for _ in range(2))
        row = {"n": n}
        for name, loss_of in timed_losses.items():
            step = value_and_gradient(loss_of)
            row[name] = median_seconds(step, (z1, z2), args.warmup, args.repeats)
        states = tf.concat([z1, z2], axis=0)
        projection, samples = swd_draws("normal", m, args.dim, seed)
        ours = value_and_gradient(lambda h: sliced_wasserstein_loss(h, samples, projection))
        row["swd_term_sort"] = median_seconds(ours, (states,), args.warmup, args.repeats)
        row["sort ns/(m log2 m)"] = 1e9 * row["swd_term_sort"] / (m * math.log2(m))
        if n <= args.rank_sort_max_n:
            chunk = rank_chunk(args.dim, m, args.rank_sort_budget)
            ref = value_and_gradient(lambda h: rank_sort_swd(h, samples, projection, chunk))
            row["swd_term_rank"] = median_seconds(ref, (states,), 1, args.rank_sort_repeats)
            row["rank/sort"] = row["swd_term_rank"] / row["swd_term_sort"]
        cells = [f"{n:>6d}"]
        for name in names:
            value = row.get(name)
            if value is None:
                cells.append(f"{'skipped':>18s}")
            elif name in ("rank/sort", "sort ns/(m log2 m)"):
                cells.append(f"{value:>18.1f}")
            else:
                cells.append(f"{1e3 * value:>18.2f}")
        print(" ".join(cells), flush=True)
        rows.append(row)
    if any(n > args.rank_sort_max_n for n in args.sizes):
        print(
            f"skipped: the rank trick beyond n = {args.rank_sort_max_n} (d * (2n)^2 = "
            f"{args.dim * (2 * max(args.sizes)) ** 2:.1e} comparisons at n = {max(args.sizes)}; "
            f"raise --rank-sort-max-n to run it, chunked to --rank-sort-budget elements)"
        )
    return rows


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")  # one tf.function per loss: TF warns about "retracing"
    main(sys.argv[1:])
