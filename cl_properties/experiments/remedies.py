r"""Remedies for feature suppression, compared on every testbed at its most suppressed point.

Each testbed is a suppression experiment (`TESTBEDS`), run by its own machinery
(`suppression.jobs_from_flags` and `suppression.main`) at one point of its knob, where the
suppression is strongest: RandBit with 20 shared bits (the main job's 14 px digits in 500 steps
of batch 128: its images in twice the updates), RandBit on the grey shapes with 20 (1200 steps
of batch 128; the testbed that passes the studies' fitness rule), DigitOnImages with K = 1000
unique digits, MultiDigits with the other digit at 24 px, colour shapes without colour jitter.
Every model of --models (the contrastive family, `job_runner.CONTRASTIVE_FAMILY`, and the
controls) runs there; the contrastive model also runs at the testbed's unsuppressed point (0
bits, K = 1, a 6 px other digit, jitter 1), the level a remedy would restore. The table has one
row per model, and per testbed the linear probe of the suppressed feature, of the suppressing
one (colour is not probed), and the model's mean training step relative to the contrastive
model's in the same run.

    python -m cl_properties.experiments.remedies \
        --flagfile=experiments/remedies/default.flags  # 30 configurations, ~15 minutes on 2 cores

Writes to --output_dir (default runs/remedies): <testbed>/ (that experiment's own outputs:
results.json, plot, examples; a rerun resumes there, job by job), remedies.md (the table),
remedies.csv (the same), remedies.png (grouped bars per testbed) and results.json (one row
per testbed, point and model).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from absl import flags

from cl_properties.experiments import (
    cli,
    color_shapes,
    digit_on_images,
    multidigits,
    randbit,
    runtime,
    suppression,
)
from cl_properties.experiments.job_runner import Experiment, Job
from cl_properties.plotting.bars import BarPanel, save_bar_panels
from cl_properties.results import (
    atomic_write_text,
    lock_output_dir,
    previous_results,
    remove_results,
    write_results,
)

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Testbed:
    """A suppression experiment as a testbed of the remedies.

    options: its typed data options at the experiment's defaults (--num_train and
      --num_test replace theirs when given).
    suppressed / suppressing: the probe keys of the suppressed feature and of the feature
      suppressing it (None: not probed).
    point: its knob at the most suppressed value; reference: the unsuppressed value, run for
      the contrastive model only.
    variant: its data variant ({}: the experiment has none).
    flag_defaults: the experiment's own defaults of shared flags, used unless given.
    """

    experiment: Experiment
    options: Any
    suppressed: str
    suppressing: str | None
    point: Mapping[str, Any]
    reference: Mapping[str, Any]
    variant: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    flag_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# Testbed name -> testbed. The one place that says which probe is which feature and where
# each experiment is most suppressed (the far end of its default sweep).
TESTBEDS: Mapping[str, Testbed] = {
    "randbit": Testbed(
        randbit.EXPERIMENT,
        randbit.RandBitOptions(image_size=randbit.MAIN_JOB_IMAGE_SIZE),
        suppressed="label",
        suppressing="bit0",
        point={"bits": 20},
        reference={"bits": 0},
        variant={"bit_mode": "shared"},
        flag_defaults={**randbit.MAIN_JOB_DEFAULTS, **randbit.REMEDIES_DEFAULTS},
    ),
    # RandBit on a testbed that passes the studies' fitness rule, at 20 bits (where its
    # per-view control holds); its shapes are rotation-symmetric but for the triangle.
    "randbit_shapes": Testbed(
        randbit.EXPERIMENT,
        randbit.RandBitOptions(dataset="grey_shapes"),
        suppressed="label",
        suppressing="bit0",
        point={"bits": 20},
        reference={"bits": 0},
        variant={"bit_mode": "shared"},
        flag_defaults=randbit.GREY_SHAPES_DEFAULTS,
    ),
    "digit_on_images": Testbed(
        digit_on_images.EXPERIMENT,
        digit_on_images.DigitOnImagesOptions(),
        suppressed="object",
        suppressing="digit",
        point={"pool_size": 1000},
        reference={"pool_size": 1},
    ),
    "multidigits": Testbed(
        multidigits.EXPERIMENT,
        multidigits.MultiDigitsOptions(),
        suppressed="fixed",
        suppressing="variable",
        point={"variable_size": 24},
        reference={"variable_size": 6},
    ),
    "color_shapes": Testbed(
        color_shapes.EXPERIMENT,
        color_shapes.ColorShapesOptions(),
        suppressed="shape",
        suppressing=None,  # colour is random per image: there is no colour label to probe
        point={"jitter_strength": 0.0},
        reference={"jitter_strength": 1.0},
        flag_defaults=color_shapes.TRAINING_DEFAULTS,
    ),
}
REFERENCE_MODEL = "contrastive"  # the step times' unit, and the model run unsuppressed too
OUTPUT_NAME = "remedies"


def define_flags() -> None:
    """The suppression experiments' shared flags (`suppression.define_flags`) and
    --testbeds, --num_train, --num_test."""
    suppression.define_flags(
        temperatures=(0.1,),
        models=(REFERENCE_MODEL, "ifm", "recon_hybrid", "rotation_aux", "random_init"),
    )
    flags.DEFINE_list(
        "testbeds", list(TESTBEDS), f"Testbeds, among {', '.join(TESTBEDS)}, in table order."
    )
    flags.DEFINE_integer(
        "num_train", None, "Training images of every testbed (default: each one's).", lower_bound=1
    )
    flags.DEFINE_integer(
        "num_test",
        None,
        "Test images of the generated testbeds (default: each one's; RandBit's test split is "
        "the dataset's).",
        lower_bound=1,
    )


@contextlib.contextmanager
def _testbed_flags(testbed: Testbed) -> Iterator[None]:
    """The testbed's `flag_defaults` as flag values while the block runs, unless given."""
    saved = {name: FLAGS[name].value for name in testbed.flag_defaults}
    try:
        for name, value in testbed.flag_defaults.items():
            if not FLAGS[name].present:
                FLAGS[name].value = value
        yield
    finally:
        for name, value in saved.items():
            FLAGS[name].value = value


def _options(testbed: Testbed) -> Any:
    fields = {f.name for f in dataclasses.fields(testbed.options)}
    given = {
        name: FLAGS[name].value
        for name in ("num_train", "num_test")
        if FLAGS[name].value is not None and name in fields
    }
    return dataclasses.replace(testbed.options, **given)


def testbed_jobs(testbed: Testbed, models: Sequence[str]) -> list[Job]:
    """The jobs of a testbed: every model at its most suppressed point, and the contrastive
    model (when in `models`) at its unsuppressed point. ValueError naming the flag for bad
    flag values."""
    jobs = suppression.jobs_from_flags(
        testbed.experiment,
        [testbed.point],
        _options(testbed),
        variants=[testbed.variant],
        models=models,
    )
    # The same job elsewhere on the knob (jobs_from_flags would reject a remedy's flags here).
    return jobs + [
        dataclasses.replace(job, point=dict(testbed.reference))
        for job in jobs
        if job.model == REFERENCE_MODEL
    ]


def _setting(testbed: Testbed, row: Mapping[str, Any]) -> str | None:
    """Whether the row is at the testbed's "suppressed" or "unsuppressed" point (else None)."""
    knob = testbed.experiment.x
    for setting, point in (("suppressed", testbed.point), ("unsuppressed", testbed.reference)):
        if row.get(knob) == point[knob] and all(
            row.get(k) == v for k, v in testbed.variant.items()
        ):
            return setting
    return None


def summary_rows(
    name: str, testbed: Testbed, rows: Sequence[Mapping[str, Any]], series: Collection[str]
) -> list[dict[str, Any]]:
    """One row per row of the testbed's run `rows` (its results.json rows) at either point
    whose `series` (model, variant, temperature, parameters) is one of the run's jobs' (rows
    kept from earlier runs of other models or settings are left out): the two probes (None
    when not measured) and the mean training step, also as a ratio to the contrastive
    model's at the same point (None without both)."""
    picked = [(r, _setting(testbed, r)) for r in rows if r.get("series") in series]
    picked = [(r, setting) for r, setting in picked if setting is not None]
    unit = {
        setting: r.get("step_seconds") for r, setting in picked if r["model"] == REFERENCE_MODEL
    }
    summary = []
    for row, setting in picked:
        step, reference = row.get("step_seconds"), unit.get(setting)
        knob = testbed.experiment.x
        summary.append(
            {
                "testbed": name,
                "setting": setting,
                "point": f"{knob}={row[knob]:g}",
                "model": row["model"],
                "suppressed_feature": testbed.suppressed,
                "suppressed_probe": row.get(f"linear_{testbed.suppressed}"),
                "suppressing_feature": testbed.suppressing,
                "suppressing_probe": row.get(f"linear_{testbed.suppressing}"),
                "step_seconds": step,
                "step_time_ratio": round(step / reference, 3) if step and reference else None,
            }
        )
    return summary


def comparison_table(summary: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict]]:
    """The table of `summary_rows` (testbeds in order of first appearance): columns
    "model", then per testbed "<testbed> <suppressed feature>", "<testbed> <suppressing
    feature>" (when probed) and "<testbed> step time / contrastive"; one row per model at the
    suppressed points, then "<model> (unsuppressed)" rows. A cell not measured is None."""
    columns = ["model"]
    cells: dict[str, dict[str, Any]] = {}
    for row in summary:
        bed = row["testbed"]
        values = {f"{bed} {row['suppressed_feature']}": row["suppressed_probe"]}
        if row["suppressing_feature"] is not None:
            values[f"{bed} {row['suppressing_feature']}"] = row["suppressing_probe"]
        values[f"{bed} step time / {REFERENCE_MODEL}"] = row["step_time_ratio"]
        columns += [c for c in values if c not in columns]
        label = row["model"] if row["setting"] == "suppressed" else f"{row['model']} (unsuppressed)"
        cells.setdefault(label, {"model": label}).update(values)
    order = sorted(cells, key=lambda label: label.endswith("(unsuppressed)"))  # stable
    return columns, [{c: cells[label].get(c) for c in columns} for label in order]


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if column.endswith(f"/ {REFERENCE_MODEL}"):
        return f"{value:.2f}x"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """`comparison_table` as a markdown table (probes with 3 decimals, ratios as 1.23x,
    cells not measured as –)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c), c) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _points_note(summary: Sequence[Mapping[str, Any]]) -> str:
    points: dict[str, dict[str, str]] = {}
    for row in summary:
        points.setdefault(row["setting"], {})[row["testbed"]] = row["point"]
    return "\n".join(
        f"{setting}: " + ", ".join(f"{bed} {point}" for bed, point in beds.items())
        for setting, beds in points.items()
    )


def write_outputs(output_dir: str, summary: Sequence[Mapping[str, Any]]) -> None:
    """remedies.md, remedies.csv and remedies.png in `output_dir`, from `summary_rows`."""
    columns, rows = comparison_table(summary)
    note = _points_note(summary)
    text = f"# Remedies for feature suppression: linear probes (test)\n\n{note}\n\n"
    atomic_write_text(
        os.path.join(output_dir, f"{OUTPUT_NAME}.md"), text + markdown_table(columns, rows)
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(output_dir, f"{OUTPUT_NAME}.csv"), buffer.getvalue())
    panels = []
    for bed in dict.fromkeys(r["testbed"] for r in summary):
        mine = [r for r in summary if r["testbed"] == bed]
        labels = [
            r["model"] if r["setting"] == "suppressed" else f"{r['model']} ({r['point']})"
            for r in mine
        ]
        bars = {
            f"suppressed: {mine[0]['suppressed_feature']}": [r["suppressed_probe"] for r in mine]
        }
        if mine[0]["suppressing_feature"] is not None:
            bars[f"suppressing: {mine[0]['suppressing_feature']}"] = [
                r["suppressing_probe"] for r in mine
            ]
        point = next(r["point"] for r in mine if r["setting"] == "suppressed")
        panels.append(BarPanel(labels, bars, "linear probe accuracy (test)", f"{bed} ({point})"))
    save_bar_panels(
        os.path.join(output_dir, f"{OUTPUT_NAME}.png"),
        panels,
        title="Remedies for feature suppression, at each testbed's most suppressed point",
    )


def _testbeds() -> list[str]:
    names = list(FLAGS.testbeds)
    if not names or any(n not in TESTBEDS for n in names) or len(set(names)) < len(names):
        raise ValueError(
            f"--testbeds must be distinct values among {', '.join(TESTBEDS)}, got {','.join(names)}"
        )
    return names


def main(argv: list[str]) -> None:
    del argv
    names = _testbeds()
    if len(FLAGS.temperatures) > 1:
        raise ValueError(
            f"--temperatures: the table compares the models at one temperature, got "
            f"{','.join(FLAGS.temperatures)}"
        )
    models = list(FLAGS.models)
    plan = {}
    for name in names:  # every bad value fails before any training
        with _testbed_flags(TESTBEDS[name]):
            plan[name] = testbed_jobs(TESTBEDS[name], models)
            if not FLAGS.dry_run:
                suppression.check_training_set(TESTBEDS[name].experiment, plan[name])
    output_dir = FLAGS.output_dir or os.path.join("runs", OUTPUT_NAME)

    def run(name: str) -> list[dict[str, Any]]:
        with _testbed_flags(TESTBEDS[name]):
            return suppression.main(
                TESTBEDS[name].experiment,
                plan[name],
                __name__,
                output_dir=os.path.join(output_dir, name),
                ignore=("testbeds",),
            )

    if FLAGS.dry_run:
        for name in names:
            print(f"{name}:")
            run(name)
        return
    config = cli.flag_values(cli.__name__, suppression.__name__, __name__)
    started = time.perf_counter()
    summary: list[dict[str, Any]] = []  # this run's testbeds' rows
    kept: list[dict[str, Any]] = []  # those of an earlier run's other testbeds, after them

    def record(status: str, **extra: Any) -> None:
        write_results(
            output_dir,
            rows=[*summary, *kept],
            config=config,
            seed=FLAGS.seed,
            wall_time_s=time.perf_counter() - started,
            status=status,
            extra={"experiment": OUTPUT_NAME, **extra},
        )

    with lock_output_dir(output_dir):  # the testbeds lock their own subfolders
        if FLAGS.fresh:
            remove_results(output_dir)
        # Another program's results here would be replaced by the table's rows.
        ignore = (*runtime.RUN_CONTROL_FLAGS, *suppression.JOB_LIST_FLAGS, "testbeds")
        earlier = previous_results(output_dir, config, ignore=ignore)
        kept += [r for r in (earlier or {}).get("rows", ()) if r.get("testbed") not in names]
        try:
            for name in names:
                series = {job.series for job in plan[name]}
                summary += summary_rows(name, TESTBEDS[name], run(name), series)
            write_outputs(output_dir, [*summary, *kept])
        except KeyboardInterrupt:
            record("interrupted", error="interrupted")  # a completed table is kept
            raise
        except BaseException as error:
            record("failed", error=repr(error))
            raise
        record("completed")
    columns, rows = comparison_table([*summary, *kept])
    print(markdown_table(columns, rows))
    print(
        f"wrote {os.path.join(output_dir, OUTPUT_NAME)}.md, .csv, .png and results.json "
        f"(each testbed's runs: {os.path.join(output_dir, '<testbed>')})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
