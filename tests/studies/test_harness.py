"""The study harness: resumable units, the results contract, budgets never overwriting each other."""

import json
import math

import pytest

from studies.harness import Study, mean_of, summarize


def make_study(tmp_path, budget="smoke", extra=()):
    study = Study("toy_study", description="a test study")
    arguments = study.parse(["--budget", budget, "--output-dir", str(tmp_path), *extra])
    return study, arguments


def test_summarize_counts_failed_runs_instead_of_averaging_them():
    summary = summarize([1.0, 3.0, math.nan])
    assert summary["mean"] == 2.0 and summary["n"] == 2 and summary["n_failed"] == 1
    assert summary["std"] == pytest.approx(math.sqrt(2.0))
    assert summarize([math.nan])["n"] == 0


def test_results_contract_and_markdown_generated_from_json(tmp_path):
    study, arguments = make_study(tmp_path, extra=["--seeds", "3", "4"])
    assert arguments.seeds == [3, 4]
    for seed in arguments.seeds:
        study.record("icfm", {"w2": 0.3 + seed / 100}, seed=seed, dataset="moons")
    data = study.finish(config={"steps": 10}, paper={("icfm", "w2"): 0.30},
                        targets=[{"target": "w2 <= 0.31", "met": False, "measured": "0.335",
                                  "why": "too few steps"}])
    on_disk = json.loads((tmp_path / "toy_study_smoke.json").read_text())
    assert on_disk == data
    for key in ("study", "budget", "seeds", "wall_time_s", "machine", "git_sha", "config", "results"):
        assert key in on_disk
    (row,) = on_disk["results"]
    assert row["method"] == "icfm" and row["metric"] == "w2" and row["n"] == 2 and row["paper"] == 0.30
    assert row["mean"] == pytest.approx(0.335) and row["dataset"] == "moons"
    markdown = (tmp_path / "toy_study_smoke.md").read_text()
    assert "0.335" in markdown and "**missed**" in markdown and "too few steps" in markdown
    assert "dataset `moons`" in markdown


def test_cpu_budget_writes_the_committed_name_and_others_do_not(tmp_path):
    study, _ = make_study(tmp_path, budget="cpu")
    study.record("m", {"x": 1.0}, seed=0)
    study.finish(config={})
    assert (tmp_path / "toy_study.json").exists()
    assert mean_of(json.loads((tmp_path / "toy_study.json").read_text()), "m", "x") == 1.0


def test_units_are_cached_and_recomputed_when_their_settings_change(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    study, _ = make_study(tmp_path)
    assert study.run_unit(("m", 0), compute, config={"steps": 5})["value"] == 1
    resumed, _ = make_study(tmp_path)
    assert resumed.run_unit(("m", 0), compute, config={"steps": 5})["value"] == 1
    assert len(calls) == 1
    assert resumed.run_unit(("m", 0), compute, config={"steps": 6})["value"] == 2
    fresh, _ = make_study(tmp_path, extra=["--fresh"])
    assert fresh.run_unit(("m", 0), compute, config={"steps": 6})["value"] == 3


def test_bad_arguments_are_refused(tmp_path):
    study = Study("toy_study")
    with pytest.raises(SystemExit):
        study.parse(["--threads", "0", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        study.parse(["--seeds", "1", "1", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        study.parse(["--budget", "huge", "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="group keys"):
        study.record("m", {"x": 1.0}, seed=0, colour="red")


def test_report_only_writes_finished_units_and_lists_the_rest(tmp_path):
    study, _ = make_study(tmp_path)
    study.run_unit(("m", 0), lambda: {"value": 1.0})
    reporter, _ = make_study(tmp_path, extra=["--report-only"])

    def never():
        raise AssertionError("--report-only computed a unit")

    assert reporter.run_unit(("m", 0), never)["value"] == 1.0
    assert reporter.run_unit(("m", 1), never) is None
    reporter.record("m", {"x": 1.0}, seed=0)
    data = reporter.finish(config={})
    assert data["unfinished_units"] == ["m/1"]
    assert "Partial results" in (tmp_path / "toy_study_smoke.md").read_text()
    with pytest.raises(SystemExit):
        Study("toy_study").parse(["--fresh", "--report-only", "--output-dir", str(tmp_path)])


def test_compute_time_sums_units_across_resumed_runs(tmp_path):
    import time

    def slow():
        time.sleep(0.05)
        return {"value": 1}

    first, _ = make_study(tmp_path)
    first.run_unit(("m", 0), slow)
    resumed, _ = make_study(tmp_path)
    resumed.run_unit(("m", 0), slow)  # cached: costs nothing now, but its compute time still counts
    resumed.run_unit(("m", 1), slow)
    resumed.record("m", {"x": 1.0}, seed=0)
    data = resumed.finish(config={})
    # Only one 0.05 s unit ran in this invocation; the cached one adds the first run's 0.05 s.
    assert data["units_compute_seconds"] >= 0.1
    assert "compute time" in (tmp_path / "toy_study_smoke.md").read_text()


def test_device_option_is_offered_on_request_and_checked(tmp_path, capsys):
    import torch

    base = ["--budget", "smoke", "--output-dir", str(tmp_path)]
    study = Study("device_check")
    assert study.parse(base, study.parser(device=True)).device == "cpu"
    assert study.device == torch.device("cpu")
    with pytest.raises(SystemExit):
        Study("no_device").parse(base + ["--device", "cpu"])  # not offered by default
    for name, message in (("gpu0", "must name a torch device"), ("meta", "must be cpu or cuda")):
        study = Study("device_check")
        with pytest.raises(SystemExit):
            study.parse(base + ["--device", name], study.parser(device=True))
        assert message in capsys.readouterr().err
    if not torch.cuda.is_available():
        study = Study("device_check")
        with pytest.raises(SystemExit):
            study.parse(base + ["--device", "cuda"], study.parser(device=True))
        assert "torch.cuda.is_available() is False" in capsys.readouterr().err
