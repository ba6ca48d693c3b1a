"""The sweep launcher: entry points read from flagfiles, commands, collected results, and a
real sweep of the smoke flagfiles (subprocesses, as a user runs it)."""

import json
import os
import subprocess
import sys

import pytest

from cl_properties.experiments import sweep
from cl_properties.results import write_results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # nested --flagfile paths are relative to the repository root


def test_entry_point_is_read_through_nested_flagfiles():
    assert sweep.entry_point("experiments/figure1/cifar10_swd_normal_head0.flags") == "cifar"
    assert sweep.entry_point("experiments/figure1/imagenet_decoupled_head3.flags") == "imagenet"
    assert sweep.entry_point("experiments/smoke/imagenet_smoke.flags") == "imagenet"


def test_flagfile_without_an_experiment_or_with_a_missing_include_is_an_error(tmp_path):
    plain = tmp_path / "plain.flags"
    plain.write_text("# no entry point\n--loss=nt_xent\n")
    with pytest.raises(ValueError, match="sets no --experiment"):
        sweep.entry_point(str(plain))
    broken = tmp_path / "broken.flags"
    broken.write_text(f"--flagfile={tmp_path / 'absent.flags'}\n")
    with pytest.raises(ValueError, match="cannot read"):
        sweep.entry_point(str(broken))


def test_command_runs_the_flagfile_entry_point_into_its_own_directory():
    flagfile = "experiments/figure1/imagenet_nt_xent_head2.flags"
    assert sweep.run_name(flagfile) == "imagenet_nt_xent_head2"
    assert sweep.command(flagfile, "runs/x/imagenet_nt_xent_head2", ["--data_dir=/data"]) == [
        sys.executable,
        "-m",
        "cl_properties.experiments.imagenet",
        f"--flagfile={flagfile}",
        "--output_dir=runs/x/imagenet_nt_xent_head2",
        "--data_dir=/data",
    ]


def test_collect_reports_completed_failed_and_missing_runs(tmp_path):
    done, failed, missing = (str(tmp_path / name) for name in ("a", "b", "c"))
    write_results(
        done, rows=[{"loss": "nt_xent", "linear_label": 0.5}], config={}, seed=1, wall_time_s=2.0
    )
    os.makedirs(failed)
    with open(os.path.join(failed, sweep.LOG), "w", encoding="utf-8") as f:
        f.write("progress\nerror: something broke\n\n")
    rows = sweep.collect([("x/a.flags", done), ("x/b.flags", failed), ("x/c.flags", missing)])
    assert [(r["run"], r["status"]) for r in rows] == [
        ("a", "completed"),
        ("b", "failed"),
        ("c", "missing"),
    ]
    assert rows[0]["linear_label"] == 0.5 and rows[0]["wall_time_s"] == 2.0
    assert rows[1]["error"] == "error: something broke"


def test_a_corrupt_results_file_is_named_counts_as_not_completed_and_the_sweep_goes_on(
    tmp_path, capsys
):
    done, corrupt = str(tmp_path / "a"), str(tmp_path / "b")
    write_results(done, rows=[{"linear_label": 0.5}], config={}, seed=0, wall_time_s=1.0)
    os.makedirs(corrupt)
    with open(os.path.join(corrupt, "results.json"), "w", encoding="utf-8") as f:
        f.write('{"status": "completed", "rows": [')  # truncated by a crash or a full disk
    assert sweep._completed(done) and not sweep._completed(corrupt)
    assert f"warning: {corrupt}/results.json is not readable JSON" in capsys.readouterr().err
    rows = sweep.collect([("x/a.flags", done), ("x/b.flags", corrupt)])
    assert [(r["run"], r["status"]) for r in rows] == [("a", "completed"), ("b", "failed")]
    assert rows[1]["error"].startswith(f"{corrupt}/results.json is not readable JSON")


def _sweep(*args):
    return subprocess.run(
        [sys.executable, "-m", "cl_properties.experiments.sweep", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )


@pytest.mark.slow
def test_sweep_runs_flagfiles_collects_one_table_and_skips_completed_runs(tmp_path):
    flagfiles = ["experiments/smoke/cifar_smoke.flags", "experiments/smoke/imagenet_smoke.flags"]
    tiny = [
        "--num_train=32",
        "--num_test=16",
        "--batch_size=8",
        "--train_steps=2",
        "--steps_per_loop=2",
        "--encoder=convn",
        "--linear_epochs=1",
        "--knn_k=5",
        "--verbose=0",
    ]
    result = _sweep(f"--output_root={tmp_path}", "--parallel=2", *flagfiles, "--", *tiny)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    assert [(r["run"], r["status"], r["experiment"]) for r in rows] == [
        ("cifar_smoke", "completed", "cifar"),
        ("imagenet_smoke", "completed", "imagenet"),
    ]
    assert all(0.0 <= r["linear_label"] <= 1.0 for r in rows)
    assert os.path.exists(tmp_path / "cifar_smoke" / sweep.LOG)
    assert "linear_label" in result.stdout

    again = _sweep(f"--output_root={tmp_path}", *flagfiles, "--", *tiny)
    assert again.returncode == 0 and "2 runs, 2 completed before" in again.stdout
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        assert [r["linear_label"] for r in json.load(f)["rows"]] == [
            r["linear_label"] for r in rows
        ]
    assert "holds this run, completed" in (tmp_path / "cifar_smoke" / sweep.LOG).read_text()

    # Other settings: each run refuses its folder in one line; the old numbers are not reported.
    changed = _sweep(f"--output_root={tmp_path}", *flagfiles, "--", *tiny, "--train_steps=4")
    assert changed.returncode == 1
    assert "holds results of another configuration" in changed.stdout
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("train_steps" in r["error"] and "linear_label" not in r for r in rows)


def test_bad_arguments_are_errors_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="give the flagfiles to run"):
        sweep.main(["prog", "--data_dir=/data"])
    with pytest.raises(ValueError, match="no such flagfile"):
        sweep.main(["prog", str(tmp_path / "absent.flags")])
    with pytest.raises(ValueError, match="same name"):
        sweep.main(
            [
                "prog",
                "experiments/smoke/cifar_smoke.flags",
                "experiments/smoke/../smoke/cifar_smoke.flags",
            ]
        )


def test_a_run_folder_that_is_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "cifar_smoke").write_text("")
    result = _sweep(f"--output_root={tmp_path}", "experiments/smoke/cifar_smoke.flags")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path}/cifar_smoke is an existing file" in result.stderr.strip().splitlines()[-1]
