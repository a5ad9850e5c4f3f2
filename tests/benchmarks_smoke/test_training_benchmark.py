"""Smoke test of benchmarks/training.py: a --quick run writes a JSON and a markdown report that agree.

The fast tier runs the CoDA workload only (about 10 s); the slow tier runs all three workloads.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    path = REPOSITORY_ROOT / "benchmarks" / "training.py"
    specification = importlib.util.spec_from_file_location("benchmarks_training_under_test", path)
    module = importlib.util.module_from_spec(specification)
    sys.modules[specification.name] = module
    specification.loader.exec_module(module)
    return module


def run_quick(tmp_path, only):
    benchmark = load_benchmark()
    output = tmp_path / "training.md"
    assert benchmark.main(["--threads", "1", "--quick", "--repeats", "1", "--only", only,
                           "--output", str(output)]) == 0
    data = json.loads(output.with_suffix(".json").read_text())
    return benchmark, output, data


def check_report(benchmark, output, data, workloads):
    assert data["benchmark"] == "training" and data["quick"] is True
    run = data["runs"]["1"]
    assert list(run["workloads"]) == workloads
    for key, workload in run["workloads"].items():
        # Same work: from identical weights and the same RK4 rule, the first losses agree to float32 rounding.
        assert workload["check"]["max_relative_difference_classical"] < 1e-5, key
        for section in workload["sections"]:
            rows = {row["key"]: row for row in section["rows"]}
            assert {"physml", "official"} <= set(rows)
            assert rows["official"]["physml_over_row"] > 0
            assert rows["physml"]["median_per_iteration_s"] > 0
    assert {target["workload"] for target in data["targets"]} == set(workloads)
    text = output.read_text()
    assert "Quick smoke run" in text and "## Targets" in text
    # The markdown is rendered from the JSON alone.
    rerendered = output.with_name("rerendered.md")
    assert benchmark.main(["--from-json", str(output.with_suffix(".json")), "--output", str(rerendered)]) == 0
    assert rerendered.read_text() == text


def test_quick_run_coda(tmp_path):
    benchmark, output, data = run_quick(tmp_path, "coda_lv")
    check_report(benchmark, output, data, ["coda_lv"])
    sections = data["runs"]["1"]["workloads"]["coda_lv"]["sections"]
    assert {section["restart_probability"] for section in sections} == {0.99, 0.0}


@pytest.mark.slow
def test_quick_run_all_workloads(tmp_path):
    benchmark, output, data = run_quick(tmp_path, "aphynity_pendulum,leads_lv,coda_lv")
    check_report(benchmark, output, data, ["aphynity_pendulum", "leads_lv", "coda_lv"])
    aphynity = data["runs"]["1"]["workloads"]["aphynity_pendulum"]
    assert "hand_rk4" in {row["key"] for row in aphynity["sections"][0]["rows"]}
