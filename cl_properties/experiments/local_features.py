r"""Local features from global objectives (paper section 3): block-group k-means and scores.

Trains a small ResNet contrastively on offline MultiDigits (or loads `--checkpoint`), then,
per block group, for the trained encoder, the same architecture at random initialization
and raw pixel patches: a dense linear probe of the digit class at foreground locations of
held-out images (the main number) and the k-means / semantic-mask ARI (all pixels and
digit pixels); plus the paper's picture, k-means cluster maps drawn over the images.

    python -m cl_properties.experiments.local_features \
        --flagfile=experiments/local_features/default.flags [--output_dir=runs/local_features]

Writes to --output_dir: results.json / results.csv (one row per model x block group),
overlays.png (trained encoder; images x block groups x k), overlays_random_init.png,
encoder.keras (the trained encoder, reusable as --checkpoint).
"""

from __future__ import annotations

import os
import sys
import time

import keras
from absl import flags

from cl_properties.data import (
    DigitArrays,
    crop_augment,
    load_dataset,
    make_multidigits,
    source_arrays,
    source_from_arrays,
)
from cl_properties.evaluation.local_features import (
    LocalFeatureConfig,
    local_feature_scores,
    overlay_maps,
)
from cl_properties.experiments import cli, runtime
from cl_properties.models import build_encoder, load_encoder
from cl_properties.plotting.overlays import save_cluster_overlay_grid
from cl_properties.results import format_table, write_results
from cl_properties.training.evaluate import DataSpec, EvalConfig, train_and_evaluate

FLAGS = flags.FLAGS
NUM_CLASSES = 10


def define_flags() -> None:
    """Defines this program's flags (when it runs as a program: importing it defines none)."""
    cli.define_pretrain_flags()
    runtime.define_runtime_flags()
    flags.DEFINE_alias("steps", "train_steps")
    # Defaults of this experiment (the CPU-scale study of the benchmark); flagfiles set them too.
    for name, value in {
        "encoder": "resnet_small",
        "optimizer": "adam",
        "learning_rate": 3e-3,
        "lr_scaling": "none",
        "weight_decay": 0.0,
        "head_output_dim": 64,
        "steps_per_loop": 100,
    }.items():
        FLAGS.set_default(name, value)
    flags.DEFINE_integer("canvas", 56, "MultiDigits canvas side in pixels.", lower_bound=8)
    flags.DEFINE_integer("num_digits", 3, "Digits per canvas.", lower_bound=1)
    flags.DEFINE_integer("digit_size", 16, "Digit side in pixels.", lower_bound=1)
    flags.DEFINE_enum("layout", "random", ["random", "grid"], "Digit placement on the canvas.")
    cli.define_digits_flag()
    flags.DEFINE_string("data_dir", None, "TFDS data_dir for --digits=mnist (never downloads).")
    flags.DEFINE_integer(
        "num_train", 4096, "Pretraining images (digits of the train split).", lower_bound=1
    )
    flags.DEFINE_integer(
        "num_probe_train",
        512,
        "Images whose foreground locations train the dense probe (the first pretraining images).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "num_probe_test",
        256,
        "Held-out images (digits of the test split): dense-probe test and ARI.",
        lower_bound=1,
    )
    flags.DEFINE_float(
        "crop_area_min", 0.2, "Smallest random-crop area fraction of the augmentation."
    )
    flags.register_validator(
        "crop_area_min", lambda a: 0 < a <= 1, message="--crop_area_min must be in (0, 1]"
    )
    flags.DEFINE_list("ks", ["2", "4", "6", "8"], "k values of the overlay picture.")
    flags.DEFINE_integer("ari_k", 4, "k of the k-means used for the ARI scores.", lower_bound=2)
    flags.DEFINE_integer("probe_epochs", 30, "Epochs of the dense linear probe.", lower_bound=1)
    flags.DEFINE_integer(
        "probe_grid",
        None,
        "Side of the common probe grid (default: the finest block group's).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "raw_window",
        None,
        "Raw-patch side in pixels (default: the block group's cell).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "linear_epochs",
        30,
        "Epochs of the global linear evaluation after pretraining.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "overlay_images", 6, "Held-out images drawn in the overlay PNGs.", lower_bound=1
    )
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Score this saved model instead of training: a .keras ContrastiveModel or encoder, or an "
        "encoder .weights.h5 (built from --encoder/--width_multiplier).",
    )


def _multidigits(n: int, seed: int, split: str):
    digits = DigitArrays(*source_arrays(load_dataset(FLAGS.digits, split, data_dir=FLAGS.data_dir)))
    return make_multidigits(
        n,
        canvas=FLAGS.canvas,
        num_digits=FLAGS.num_digits,
        digit_size=FLAGS.digit_size,
        layout=FLAGS.layout,
        seed=seed,
        digits=digits,
        split=split,
    )


def main(argv: list[str]) -> None:
    del argv
    started = time.perf_counter()
    run_config = runtime.runtime_from_flags()
    strategy = run_config.start()
    ks = cli.list_flag("ks", minimum=1)
    if not 1 <= FLAGS.num_probe_train <= FLAGS.num_train:
        raise ValueError(f"--num_probe_train must be in [1, --num_train={FLAGS.num_train}]")
    output_dir = FLAGS.output_dir or os.path.join("runs", "local_features")
    scoring = LocalFeatureConfig(
        ari_k=FLAGS.ari_k,
        probe_grid=FLAGS.probe_grid,
        probe_epochs=FLAGS.probe_epochs,
        raw_window=FLAGS.raw_window,
        seed=FLAGS.seed,
    )
    input_shape = (FLAGS.canvas, FLAGS.canvas, 1)
    # Bad training flags and a bad --checkpoint are reported before the output folder is touched.
    config = run_config.configure(
        cli.pretrain_config_from_flags(num_train_examples=FLAGS.num_train)
    )
    encoder = None
    if FLAGS.checkpoint:
        encoder = load_encoder(
            FLAGS.checkpoint,
            input_shape=input_shape,
            build_encoder=lambda: build_encoder(
                FLAGS.encoder, input_shape=input_shape, width_multiplier=FLAGS.width_multiplier
            ),
        )
    run_flags = cli.flag_values(cli.__name__, runtime.__name__, __name__)
    with runtime.output_run(output_dir, config=run_flags, seed=FLAGS.seed, fresh=FLAGS.fresh):
        finished = runtime.start_run(output_dir, run_flags, seed=FLAGS.seed)
        if finished:
            rows = finished["rows"]
            print(
                f"{output_dir} holds this run, completed (results.json); pass --fresh to run it "
                "again",
                file=sys.stderr,
            )
        else:
            rows = _train_and_score(
                output_dir,
                input_shape,
                encoder,
                config,
                run_config,
                strategy,
                scoring,
                ks,
                run_flags,
                started,
            )
            print(f"wrote {output_dir}/results.json, results.csv, overlays.png", file=sys.stderr)
    print(format_table(rows, ["model", "tap", "grid", "dense_probe", "ari_all", "ari_foreground"]))


def _train_and_score(
    output_dir, input_shape, encoder, config, run_config, strategy, scoring, ks, run_flags, started
) -> list[dict]:
    """Trains (unless `encoder`, from --checkpoint, is given), scores the encoder and its
    random initialization, draws the overlays and writes the results; returns the rows."""
    train = _multidigits(FLAGS.num_train, FLAGS.seed, "train")
    test = _multidigits(FLAGS.num_probe_test, FLAGS.seed + 1, "test")
    pretrain_metrics: dict[str, float] = {}
    extra: dict = {}
    if encoder is None:
        data = DataSpec(
            train=source_from_arrays(train.images, train.labels),
            test=source_from_arrays(test.images, test.labels),
            input_shape=input_shape,
            probes={name: NUM_CLASSES for name in train.labels},
            augment=crop_augment(crop_area=(FLAGS.crop_area_min, 1.0)),
        )
        result, pretrain_metrics = train_and_evaluate(
            config,
            data,
            evaluation=EvalConfig(linear_epochs=FLAGS.linear_epochs),
            strategy=strategy,
            model_dir=output_dir,
            checkpoints=run_config.checkpoints,
            verbose=2,
        )
        extra["distribution"] = result.distribution
        encoder = result.model.encoder
        encoder.save(os.path.join(output_dir, "encoder.keras"))
    # The same architecture with fresh weights from the seed (clone_model re-initializes).
    keras.utils.set_random_seed(FLAGS.seed)
    random_encoder = keras.models.clone_model(encoder)

    n = FLAGS.num_probe_train
    rows = local_feature_scores(
        {"trained": encoder, "random_init": random_encoder},
        train.images[:n],
        train.semantic_masks[:n],
        test.images,
        test.semantic_masks,
        num_classes=NUM_CLASSES,
        config=scoring,
    )
    shown = test.images[: FLAGS.overlay_images]
    for name, model in (("overlays.png", encoder), ("overlays_random_init.png", random_encoder)):
        maps = overlay_maps(model, shown, ks, seed=FLAGS.seed)
        save_cluster_overlay_grid(shown, maps, os.path.join(output_dir, name))
    write_results(
        output_dir,
        rows=rows,
        config=run_flags,
        seed=FLAGS.seed,
        wall_time_s=time.perf_counter() - started,
        extra={"pretrain_metrics": pretrain_metrics, **extra},
    )
    return rows


if __name__ == "__main__":
    define_flags()
    cli.run(main)
