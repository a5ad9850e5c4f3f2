"""The APHYNITY, LEADS and CoDA studies run end to end at the smoke budget with the issue's names.

Outputs go to ``tmp_path``; the generated ``mini``-scale datasets are kept in the studies' own (git-ignored)
data directory, ``studies/results/data``, so only the first run pays for their generation.
"""

import json

import pytest

from studies import (
    aphynity_pendulum,
    aphynity_rd,
    aphynity_wave,
    coda_go,
    coda_gs,
    coda_lv,
    coda_ns,
    leads_gs,
    leads_lv,
    leads_ns,
)
from studies.harness import RESULTS_DIRECTORY

DATA_DIRECTORY = RESULTS_DIRECTORY / "data"
APHYNITY_METHODS = {"neural_ode", "physics_only", "true_physics", "aphynity"}
LEADS_METHODS = {"one_for_all", "one_per_env", "leads_no_min", "leads"}
CODA_METHODS = {"one_per_env", "leads", "coda_l2", "coda_l1"}


def run_smoke(module, name, tmp_path):
    data = module.main(["--budget", "smoke", "--output-dir", str(tmp_path),
                        "--data-dir", str(DATA_DIRECTORY)])
    assert json.loads((tmp_path / f"{name}_smoke.json").read_text()) == data
    assert data["study"] == name and data["budget"] == "smoke" and data["seeds"] == [0]
    assert data["deviations"], "every study lists its deviations from the paper"
    assert data["figures"] == [f"{name}_smoke.png"]
    assert (tmp_path / f"{name}_smoke.png").stat().st_size > 5_000
    assert (tmp_path / f"{name}_smoke.md").read_text().count("| method |") >= 1
    return data


def metrics_of(data, method, **group):
    return {row["metric"] for row in data["results"] if row["method"] == method
            and all(row.get(key) == value for key, value in group.items())}


def metric_mean(data, method, metric, **group):
    (value,) = [row["mean"] for row in data["results"] if row["method"] == method and row["metric"] == metric
                and all(row.get(key) == value for key, value in group.items())]
    return value


@pytest.mark.parametrize("module, name, parameters", [
    (aphynity_pendulum, "aphynity_pendulum", {"omega0_squared"}),
    (aphynity_rd, "aphynity_rd", {"a", "b"}),
    (aphynity_wave, "aphynity_wave", {"wave_speed"}),
])
def test_aphynity_studies_write_every_method_and_metric_per_physics_group(module, name, parameters, tmp_path):
    data = run_smoke(module, name, tmp_path)
    for physics in ("incomplete", "complete"):
        methods = {row["method"] for row in data["results"] if row.get("physics") == physics}
        ablations = {"aphynity_lambda100"} if (name, physics) == ("aphynity_rd", "incomplete") else set()
        assert methods == APHYNITY_METHODS | {"min_norm_optimum"} | ablations
        # The complete prior's minimum-norm fit must land on the data's own parameters (the truth field is
        # the data generator), whatever the incomplete one does.
        assert metric_mean(data, "min_norm_optimum", "param_rel_error", physics="complete") < 1e-4
        for method in APHYNITY_METHODS:
            assert {"test_mse", "log10_test_mse"} <= metrics_of(data, method, physics=physics)
        for method in ("physics_only", "aphynity"):
            metrics = metrics_of(data, method, physics=physics)
            assert {"param_rel_error", "param_rel_error_mean"} <= metrics
            assert {f"param_rel_error_{parameter}" for parameter in parameters} <= metrics
    # The largest relative error is never below the mean one.
    for physics in ("incomplete", "complete"):
        rows = {row["metric"]: row["mean"] for row in data["results"]
                if row["method"] == "aphynity" and row.get("physics") == physics}
        assert rows["param_rel_error"] >= rows["param_rel_error_mean"]
    if name in ("aphynity_pendulum", "aphynity_rd"):
        assert len(data["targets"]) == 2 and all(isinstance(row["met"], bool) for row in data["targets"])


@pytest.mark.parametrize("module, name", [(leads_lv, "leads_lv"), (leads_gs, "leads_gs"),
                                          (leads_ns, "leads_ns")])
def test_leads_studies_write_every_method(module, name, tmp_path):
    data = run_smoke(module, name, tmp_path)
    assert {row["method"] for row in data["results"]} == LEADS_METHODS
    for method in LEADS_METHODS:
        assert "test_mse" in metrics_of(data, method)
    assert any(row["paper"] is not None for row in data["results"] if row["method"] == "leads")
    if name == "leads_lv":
        assert [row["met"] for row in data["targets"]] and len(data["targets"]) == 2


@pytest.mark.parametrize("module, name", [(coda_lv, "coda_lv"), (coda_go, "coda_go"), (coda_gs, "coda_gs"),
                                          (coda_ns, "coda_ns")])
def test_coda_studies_write_indomain_and_adaptation_errors(module, name, tmp_path):
    data = run_smoke(module, name, tmp_path)
    assert {row["method"] for row in data["results"]} == CODA_METHODS
    for method in CODA_METHODS:
        assert {"indomain_mse", "adapt_mse"} <= metrics_of(data, method)
    assert data["targets"][0]["target"].startswith("coda_l1 adapt_mse below leads")


def test_a_finished_smoke_run_is_reused_from_its_cache(tmp_path, monkeypatch):
    first = run_smoke(leads_lv, "leads_lv", tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("a cached unit was trained again")

    monkeypatch.setattr("studies.dynamics_common.fit", fail)
    again = run_smoke(leads_lv, "leads_lv", tmp_path)
    assert [row["values"] for row in again["results"]] == [row["values"] for row in first["results"]]
