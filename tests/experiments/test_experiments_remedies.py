"""The remedies comparison: its table from synthetic rows, a tiny end-to-end run that
resumes, and its flagfile. Bad flag values are cases of test_experiments_bad_inputs.py."""

import csv
import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

from cl_properties.experiments import remedies

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--steps=2",
    "--batch_size=8",
    "--linear_epochs=1",
    "--knn_k=3",
    "--num_train=32",
    "--num_test=16",
]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cl_properties.experiments.remedies", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def _row(model: str, bits: int, label: float, bit0: float | None, step: float | None) -> dict:
    row = {"bits": bits, "bit_mode": "shared", "model": model, "series": f"{model} shared"}
    row["linear_label"] = label
    if bit0 is not None:
        row["linear_bit0"] = bit0
    if step is not None:
        row["step_seconds"] = step
    return row


RANDBIT_ROWS = [
    _row("contrastive", 20, 0.1, 1.0, 0.2),
    _row("rotation_aux", 20, 0.8, 0.9, 0.3),
    _row("random_init", 20, 0.15, 0.6, None),  # trains nothing: no step time
    _row("contrastive", 0, 0.98, None, 0.1),  # no bits, no bit probe
    _row("vae", 20, 0.5, 0.5, 0.1),  # kept from an earlier run, not asked for now
    {**_row("contrastive", 20, 0.3, 0.5, 0.2), "series": "contrastive shared tau=0.2"},  # kept
    _row("contrastive", 5, 0.3, 0.5, 0.2),  # another point of the knob
]
COLOUR = {"model": "contrastive", "series": "contrastive shared", "step_seconds": 0.1}
COLOUR_ROWS = [
    {**COLOUR, "jitter_strength": 0.0, "linear_shape": 0.4},
    {**COLOUR, "jitter_strength": 1.0, "linear_shape": 0.9},
]
SERIES = ["contrastive shared", "rotation_aux shared", "random_init shared"]  # the run's jobs


def test_summary_rows_pick_the_testbed_points_and_time_steps_against_contrastive():
    summary = remedies.summary_rows("randbit", remedies.TESTBEDS["randbit"], RANDBIT_ROWS, SERIES)
    assert [(r["model"], r["setting"], r["point"]) for r in summary] == [
        ("contrastive", "suppressed", "bits=20"),
        ("rotation_aux", "suppressed", "bits=20"),
        ("random_init", "suppressed", "bits=20"),
        ("contrastive", "unsuppressed", "bits=0"),
    ]
    assert [r["step_time_ratio"] for r in summary] == [1.0, pytest.approx(1.5), None, 1.0]
    assert summary[3]["suppressing_probe"] is None and summary[1]["suppressing_probe"] == 0.9


def test_comparison_table_rows_are_models_and_columns_testbed_probes():
    summary = remedies.summary_rows("randbit", remedies.TESTBEDS["randbit"], RANDBIT_ROWS, SERIES)
    summary += remedies.summary_rows(
        "color_shapes", remedies.TESTBEDS["color_shapes"], COLOUR_ROWS, SERIES
    )
    columns, rows = remedies.comparison_table(summary)
    assert columns == [
        "model",
        "randbit label",
        "randbit bit0",
        "randbit step time / contrastive",
        "color_shapes shape",  # colour is not probed: no column
        "color_shapes step time / contrastive",
    ]
    assert [r["model"] for r in rows] == [
        "contrastive",
        "rotation_aux",
        "random_init",
        "contrastive (unsuppressed)",
    ]
    assert rows[1] == {
        "model": "rotation_aux",
        "randbit label": 0.8,
        "randbit bit0": 0.9,
        "randbit step time / contrastive": pytest.approx(1.5),
        "color_shapes shape": None,  # not run there
        "color_shapes step time / contrastive": None,
    }
    assert rows[3]["color_shapes shape"] == 0.9 and rows[3]["randbit bit0"] is None
    lines = remedies.markdown_table(columns, rows).splitlines()
    assert lines[0].startswith("| model | randbit label |") and len(lines) == 2 + 4
    assert lines[4] == "| random_init | 0.150 | 0.600 | – | – | – |"  # header, rule, rows
    assert "| 1.50x |" in lines[3]


@pytest.mark.slow
def test_tiny_run_writes_the_table_and_resumes(tmp_path):
    args = [*TINY, "--testbeds=randbit,color_shapes", "--models=contrastive,ifm"]
    result = _run(*args, f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        document = json.load(f)
    assert document["status"] == "completed" and document["experiment"] == "remedies"
    assert [(r["testbed"], r["model"], r["point"]) for r in document["rows"]] == [
        ("randbit", "contrastive", "bits=20"),
        ("randbit", "ifm", "bits=20"),
        ("randbit", "contrastive", "bits=0"),
        ("color_shapes", "contrastive", "jitter_strength=0"),
        ("color_shapes", "ifm", "jitter_strength=0"),
        ("color_shapes", "contrastive", "jitter_strength=1"),
    ]
    for row in document["rows"]:
        assert 0.0 <= row["suppressed_probe"] <= 1.0 and row["step_seconds"] > 0
    with open(tmp_path / "remedies.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["model"] for r in table] == ["contrastive", "ifm", "contrastive (unsuppressed)"]
    assert list(table[0]) == [
        "model",
        "randbit label",
        "randbit bit0",
        "randbit step time / contrastive",
        "color_shapes shape",
        "color_shapes step time / contrastive",
    ]
    assert float(table[0]["randbit step time / contrastive"]) == 1.0
    markdown = (tmp_path / "remedies.md").read_text(encoding="utf-8")
    assert "suppressed: randbit bits=20, color_shapes jitter_strength=0" in markdown
    assert "| ifm |" in markdown and "| ifm |" in result.stdout
    assert matplotlib.image.imread(tmp_path / "remedies.png").shape[1] > 500
    for testbed in ("randbit", "color_shapes"):  # each testbed's own outputs
        assert os.path.exists(tmp_path / testbed / f"{testbed}.png")
        with open(tmp_path / testbed / "results.json", encoding="utf-8") as f:
            assert json.load(f)["config"]["train_steps"] == 2  # given: no testbed default

    # One testbed again: nothing measured again, and the other keeps its columns.
    again = _run(
        *TINY, "--testbeds=randbit", "--models=contrastive,ifm", f"--output_dir={tmp_path}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("3 measured before") == 1
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        assert {r["testbed"] for r in json.load(f)["rows"]} == {"randbit", "color_shapes"}
    assert (tmp_path / "remedies.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(
        table[0]
    )

    # A testbed's data options are not flags here: a folder measured on other data (as
    # before the colour testbed moved to 16 px) is refused, never resumed.
    colour_results = tmp_path / "color_shapes" / "results.json"
    document = json.loads(colour_results.read_text(encoding="utf-8"))
    assert document["config"]["data_options"]["image_size"] == 16
    document["config"]["data_options"]["image_size"] = 32
    colour_results.write_text(json.dumps(document), encoding="utf-8")
    other_data = _run(*args, f"--output_dir={tmp_path}")
    assert other_data.returncode == 2
    assert "holds results of another configuration (data_options.image_size: 32 -> 16" in (
        other_data.stderr
    )


@pytest.mark.slow
def test_the_flagfile_runs_every_model_on_every_testbed_at_its_scale():
    result = _run(
        f"--flagfile={os.path.join(ROOT, 'experiments', 'remedies', 'default.flags')}", "--dry_run"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("[6/6]") == 5  # 5 models + the contrastive model unsuppressed
    randbit_column = result.stdout.split("randbit:")[1].split("randbit_shapes:")[0]
    assert "[1/6] bits=20 contrastive shared tau=0.1 seed=0 steps=500" in randbit_column
    assert "[6/6] bits=0 contrastive shared tau=0.1 seed=0 steps=500" in randbit_column
    shapes = result.stdout.split("randbit_shapes:")[1]  # RandBit at the grey shapes' scale
    assert "[1/6] bits=20 contrastive shared tau=0.1 seed=0 steps=1200" in shapes
    assert "[6/6] bits=0 contrastive shared tau=0.1 seed=0 steps=1200" in shapes
    assert "[1/6] pool_size=1000 contrastive tau=0.1 seed=0 steps=300" in result.stdout
    colour = result.stdout.split("color_shapes:")[1]  # at the colour shapes' own scale
    assert "[1/6] jitter_strength=0.0 contrastive tau=0.1 seed=0 steps=600" in colour
    assert "recon_hybrid tau=0.1 weight=100 weighting=groups" in result.stdout
