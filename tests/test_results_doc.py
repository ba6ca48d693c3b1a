"""docs/results.md is generated from the benchmark baselines and never goes stale."""

import json

import _benchmark_modules


def _results_doc():
    return _benchmark_modules.load("results_doc")


def test_results_page_matches_the_baselines():
    results_doc = _results_doc()
    assert results_doc.RESULTS_DOC.read_text(encoding="utf-8") == results_doc.render(), (
        "docs/results.md is stale: run python benchmarks/results_doc.py"
    )


def test_every_baseline_point_is_rendered_once_per_run(tmp_path):
    baseline = {
        "name": "toy",
        "description": "probe accuracy",
        "how": "recorded by hand",
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "git_commit": "abc",
        "versions": {"tensorflow-cpu": "2.21.0", "keras": "3.15.1"},
        "tolerance": {"a": 0.03, "b": 0.05},
        "points": {"a": 0.5, "b": 0.25},
        "extra": {
            "runs": ["seed0", "seed1"],
            "per_run": {"a": [0.5, 0.5625], "b": [0.25, 0.125]},
            "best": [1, 2],
        },
    }
    (tmp_path / "toy.json").write_text(json.dumps(baseline))
    page = _results_doc().render(tmp_path)
    assert "| `a` | 0.500 | 0.562 | +-0.030 |" in page
    assert "| `b` | 0.250 | 0.125 | +-0.050 |" in page
    assert "Probe accuracy." in page and "`best`: `[1, 2]`" in page
