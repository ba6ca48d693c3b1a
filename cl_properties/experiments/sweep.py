r"""Runs a set of flagfiles, one subprocess each, and collects their results into one table.

    python -m cl_properties.experiments.sweep --output_root=runs/figure1 \
        experiments/figure1/cifar10_*.flags [-- --data_dir=/path/to/tfds]

Each flagfile names its entry point with `--experiment=cifar|imagenet` (its own line or a
nested flagfile's) and runs as `python -m cl_properties.experiments.<experiment>
--flagfile=<file> --output_dir=<output_root>/<file name without .flags> <flags after -->`,
with its output appended to `<run dir>/log.txt`. Every run starts, completed ones too: a run
whose results.json says "completed" only reports it again (in seconds), after checking that
its settings are the ones it was measured with; if the flagfile or the flags after `--`
changed, it fails in one line naming the differences, and the sweep reports it failed rather
than the old numbers. An interrupted run resumes from its checkpoints. The output root is
locked while the sweep runs (each run locks its own folder); Ctrl-C or SIGTERM stops the
runs in progress, which resume when the sweep is rerun.
`--parallel=N` runs N at a time (each sees every device: use it for CPU runs or one run per
host, not to share accelerators). At the end, one row per flagfile (its status and its
run's results row) goes to `<output_root>/results.json` and `results.csv`, and the table is
printed. Exit status 1 if any run failed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from absl import flags

from cl_properties.experiments import cli
from cl_properties.results import (
    RESULTS_JSON,
    ResultsFileError,
    format_table,
    lock_output_dir,
    read_results,
    write_results,
)

FLAGS = flags.FLAGS
LOG = "log.txt"
TABLE_COLUMNS = (
    "run",
    "status",
    "dataset",
    "loss",
    "head_depth",
    "linear_label",
    "knn_label",
    "online_label",
    "wall_time_s",
    "error",
)


def define_flags() -> None:
    """Defines the sweep's flags (when it runs as a program, so that importing it defines none)."""
    flags.DEFINE_string(
        "output_root",
        "runs/sweep",
        "Folder of the runs' output directories and of the collected table.",
    )
    flags.DEFINE_integer("parallel", 1, "Runs at a time.", lower_bound=1)
    flags.DEFINE_boolean("dry_run", False, "Print the commands and run nothing.")


def entry_point(flagfile: str) -> str:
    """The `--experiment` a flagfile sets (directly or through nested flagfiles; the last
    one wins, as in absl). Raises ValueError when it sets none or cannot be read."""
    try:
        lines = flags.FlagValues().read_flags_from_files([f"--flagfile={flagfile}"])
    except flags.Error as error:
        raise ValueError(f"cannot read {flagfile}: {' '.join(str(error).split())}") from None
    values = [line.split("=", 1)[1] for line in lines if line.startswith("--experiment=")]
    if not values:
        raise ValueError(
            f"{flagfile} sets no --experiment=cifar|imagenet, so its entry point is unknown"
        )
    return values[-1]


def run_name(flagfile: str) -> str:
    """The run's folder name: the flagfile's name without `.flags`."""
    return os.path.splitext(os.path.basename(flagfile))[0]


def command(flagfile: str, output_dir: str, extra_flags: Sequence[str]) -> list[str]:
    """The command line of one run (the current interpreter)."""
    module = f"cl_properties.experiments.{entry_point(flagfile)}"
    return [
        sys.executable,
        "-m",
        module,
        f"--flagfile={flagfile}",
        f"--output_dir={output_dir}",
        *extra_flags,
    ]


def _results(output_dir: str) -> dict | str | None:
    """The run's results document; None when it has none; the reason (naming the file)
    when its results.json is unreadable, which counts as not completed."""
    try:
        return read_results(output_dir)
    except FileNotFoundError:
        return None
    except ResultsFileError as error:
        return str(error)


def _completed(output_dir: str) -> bool:
    document = _results(output_dir)
    if isinstance(document, str):
        print(f"warning: {document}; running it again", file=sys.stderr, flush=True)
    return isinstance(document, dict) and document["status"] == "completed"


def _last_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else ""


def run_one(
    argv: Sequence[str], output_dir: str, running: set[subprocess.Popen] | None = None
) -> int:
    """Runs one command with its output appended to `<output_dir>/log.txt` (an earlier
    run's log is kept); returns its exit status. While it runs, its process is in `running`
    (so that a stopped sweep can stop it)."""
    os.makedirs(output_dir, exist_ok=True)
    running = set() if running is None else running
    with open(os.path.join(output_dir, LOG), "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT)
        running.add(process)
        try:
            return process.wait()
        finally:
            running.discard(process)


def collect(
    runs: Sequence[tuple[str, str]], exit_codes: Mapping[str, int] | None = None
) -> list[dict]:
    """One row per (flagfile, output_dir): run, flagfile, status, wall_time_s and the run's
    results row. A run whose command exited with an error (`exit_codes`, by flagfile) or
    left no results gets status "failed" (or "missing" when it never ran) and the last line
    of its log as `error`, whatever an earlier results.json says; one with an unreadable
    results.json gets status "failed" and an error naming the file."""
    rows = []
    for flagfile, output_dir in runs:
        row = {"run": run_name(flagfile), "flagfile": flagfile}
        document = _results(output_dir)
        if (exit_codes or {}).get(flagfile, 0) != 0:
            row.update(status="failed", error=_last_line(os.path.join(output_dir, LOG)))
        elif isinstance(document, str):
            row.update(status="failed", error=document)
        elif document is not None:
            row.update(status=document["status"], wall_time_s=document.get("wall_time_s"))
            row.update(
                document["rows"][0] if document["rows"] else {"error": document.get("error", "")}
            )
        else:
            log = os.path.join(output_dir, LOG)
            row.update(status="failed" if os.path.exists(log) else "missing")
            row["error"] = _last_line(log) if os.path.exists(log) else ""
        rows.append(row)
    return rows


def main(argv: Sequence[str]) -> None:
    flagfiles = [a for a in argv[1:] if not a.startswith("-")]
    extra_flags = [a for a in argv[1:] if a.startswith("-")]
    if not flagfiles:
        raise ValueError("give the flagfiles to run, e.g. experiments/figure1/cifar10_*.flags")
    missing = [f for f in flagfiles if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"no such flagfile(s): {', '.join(missing)}")
    names = [run_name(f) for f in flagfiles]
    if len(set(names)) != len(names):
        raise ValueError(
            "two flagfiles have the same name; their runs would share an output directory"
        )
    started = time.perf_counter()
    runs = [(f, os.path.join(FLAGS.output_root, run_name(f))) for f in flagfiles]
    for _, output_dir in runs:
        if os.path.exists(output_dir) and not os.path.isdir(output_dir):
            raise ValueError(f"a run's output folder {output_dir} is an existing file")
    commands = {f: command(f, d, extra_flags) for f, d in runs}  # reads every flagfile first
    holding = contextlib.nullcontext() if FLAGS.dry_run else lock_output_dir(FLAGS.output_root)
    with holding:  # each run locks its own folder below it
        completed = sum(_completed(d) for _, d in runs)
        print(
            f"{len(runs)} runs, {completed} completed before (each checks its settings and "
            f"reports its results again), {FLAGS.parallel} at a time",
            flush=True,
        )
        if FLAGS.dry_run:
            for f, _ in runs:
                print(" ".join(commands[f]))
            return
        rows = collect(runs, _launch_all(runs, commands))
        write_results(
            FLAGS.output_root,
            rows=rows,
            config={"flagfiles": flagfiles, "extra_flags": extra_flags, "parallel": FLAGS.parallel},
            seed=0,  # the sweep draws nothing; each row has its run's seed
            wall_time_s=time.perf_counter() - started,
            status="completed" if all(r["status"] == "completed" for r in rows) else "failed",
            keep_completed=False,  # a collection of every run's status: the newest is the truth
        )
    print(format_table(rows, [c for c in TABLE_COLUMNS if any(c in r for r in rows)]))
    print(f"wrote {os.path.join(FLAGS.output_root, RESULTS_JSON)} and results.csv", file=sys.stderr)
    if any(r["status"] != "completed" for r in rows):
        sys.exit(1)


def _launch_all(todo: Sequence[tuple[str, str]], commands: dict[str, list[str]]) -> dict[str, int]:
    """Runs the (flagfile, output_dir) pairs, FLAGS.parallel at a time, printing each outcome;
    returns each flagfile's exit status. Ctrl-C / SIGTERM stops the runs in progress with
    SIGTERM (each records "interrupted" and resumes when the sweep is rerun) before it is
    re-raised."""
    running: set[subprocess.Popen] = set()

    def launch(item: tuple[str, str]) -> tuple[str, int]:
        flagfile, output_dir = item
        t0 = time.perf_counter()
        status = run_one(commands[flagfile], output_dir, running)
        outcome = (
            "ok" if status == 0 else f"exit {status}: {_last_line(os.path.join(output_dir, LOG))}"
        )
        print(f"{run_name(flagfile)}: {outcome} ({time.perf_counter() - t0:.0f} s)", flush=True)
        return flagfile, status

    pool = ThreadPoolExecutor(max_workers=FLAGS.parallel)
    try:
        exit_codes = dict(pool.map(launch, todo))
    except KeyboardInterrupt:
        for process in list(running):
            process.terminate()
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()
    return exit_codes


if __name__ == "__main__":
    define_flags()
    cli.run(main)
