"""Smoke runs of the equation-discovery studies: they finish and write the issue's metric names."""

import json

from studies import pdefind_table, pdenet_burgers2d


def test_pdefind_table_smoke(tmp_path):
    data = pdefind_table.main(
        ["--budget", "smoke", "--output-dir", str(tmp_path), "--data-dir", str(tmp_path / "data")]
    )
    on_disk = json.loads((tmp_path / "pdefind_table_smoke.json").read_text())
    assert on_disk["results"] == data["results"]
    rows = {(row["method"], row["metric"], row["equation"]) for row in on_disk["results"]}
    for equation in ("burgers", "kdv", "ks", "rd"):
        for method in ("strong_clean", "strong_noisy", "weak_noisy"):
            for metric in ("coef_rel_error_mean", "coef_rel_error_max", "n_spurious_terms", "terms_correct"):
                assert (method, metric, equation) in rows
    burgers_clean = next(
        row
        for row in on_disk["results"]
        if row["method"] == "strong_clean"
        and row["metric"] == "coef_rel_error_mean"
        and row["equation"] == "burgers"
    )
    assert burgers_clean["paper"] == 0.0015 and burgers_clean["n"] == 1
    assert len(on_disk["targets"]) == 3
    assert (tmp_path / "pdefind_table_smoke.png").stat().st_size > 0
    assert "## Identified equations (first seed)" in (tmp_path / "pdefind_table_smoke.md").read_text()


def test_pdenet_burgers2d_smoke(tmp_path):
    pdenet_burgers2d.main(["--budget", "smoke", "--output-dir", str(tmp_path)])
    on_disk = json.loads((tmp_path / "pdenet_burgers2d_smoke.json").read_text())
    metrics = {row["metric"] for row in on_disk["results"] if row["method"] == "pdenet"}
    assert metrics == {
        "transport_rel_error_max",
        "diffusion_rel_error_max",
        "n_spurious_terms",
        "prediction_error_t4",
    }
    assert all(row["n"] == 1 for row in on_disk["results"])
    assert len(on_disk["targets"]) == 3
    assert all(isinstance(target["met"], bool) and target["measured"] for target in on_disk["targets"])
    assert on_disk["config"]["learned"][0]["equations"][0].startswith("u_t = ")
    assert (tmp_path / "pdenet_burgers2d_smoke.png").stat().st_size > 0
