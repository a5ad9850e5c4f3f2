"""The generative studies run end to end at the smoke budget and write the issue's metric names."""

import json

import pytest

from studies import generative_physics, generative_toy2d


def rows_by(data, **keys):
    return [row for row in data["results"] if all(row.get(key) == value for key, value in keys.items())]


def test_generative_toy2d_smoke_run_writes_every_method_and_metric(tmp_path):
    data = generative_toy2d.main(["--budget", "smoke", "--output-dir", str(tmp_path)])
    assert json.loads((tmp_path / "generative_toy2d_smoke.json").read_text()) == data
    assert (tmp_path / "generative_toy2d_smoke.png").stat().st_size > 10_000
    moons = {row["method"] for row in rows_by(data, dataset="moons")}
    assert moons >= {"vp_sde_reverse_sde", "vp_sde_pc", "vp_sde_flow_ode", "ve_sde_pc", "ffjord", "icfm",
                     "otcfm", "sbcfm", "target_fm"}
    pair = {row["method"] for row in rows_by(data, dataset="8gaussians_to_moons")}
    assert pair == {"icfm", "otcfm", "sbcfm", "target_resample"}
    for method in ("icfm", "vp_sde_flow_ode", "ffjord"):
        metrics = {row["metric"] for row in rows_by(data, dataset="moons", method=method)}
        assert metrics >= {"w2_adaptive", "nfe_adaptive", "w2_euler1", "w2_euler10", "test_nll"}
    # Stochastic samplers: fixed-step rows only, the fine-step one included.
    metrics = {row["metric"] for row in rows_by(data, dataset="moons", method="vp_sde_reverse_sde")}
    assert "w2_adaptive" not in metrics and "w2_euler50" in metrics
    assert all(row["n"] == 1 for row in data["results"])
    assert {target["target"].split()[0] for target in data["targets"]} == {"moons", "8gaussians->moons"}


def test_generative_toy2d_resumes_from_its_cache(tmp_path, monkeypatch):
    generative_toy2d.main(["--budget", "smoke", "--output-dir", str(tmp_path)])

    def fail(*args, **kwargs):
        raise AssertionError("a cached unit was recomputed")

    monkeypatch.setattr(generative_toy2d, "train_and_evaluate", fail)
    data = generative_toy2d.main(["--budget", "smoke", "--output-dir", str(tmp_path)])
    assert rows_by(data, method="otcfm", dataset="moons")


def test_generative_physics_smoke_run(tmp_path):
    data = generative_physics.main(["--budget", "smoke", "--output-dir", str(tmp_path)])
    assert (tmp_path / "generative_physics_smoke.png").exists()
    for split, metrics in (("unconditional", {"spectrum_log_error", "w2_summary", "nfe"}),
                           ("conditional", {"spectrum_log_error", "w2_summary", "class_match", "nfe"})):
        for method in ("vp_sde_flow_ode", "vp_sde_reverse_sde", "icfm"):
            assert {row["metric"] for row in rows_by(data, method=method, split=split)} == metrics
    # The training snapshots of each viscosity are closest to their own held-out class.
    (match,) = rows_by(data, method="train_snapshots", split="conditional", metric="class_match")
    assert match["mean"] == pytest.approx(1.0)
