"""Generation: aphynity_pendulum mini is valid and correct; runs are deterministic, resumable and safe."""

import json

import numpy as np
import pytest
import torch

import physml
import physml.data._generate as generation
from physml.data import SpecError, checksums, generate, load_spec, open_dataset, parse_spec, validate
from physml.systems import get_system


def split_checksums(directory) -> dict:
    """Per-variable SHA-256 of the values of every split (file bytes differ: they embed dates)."""
    result = {}
    for split in ("train", "validation", "test"):
        path = directory / f"{split}.nc"
        if path.exists():
            with open_dataset(path) as dataset:
                result[split] = checksums(dataset)
    return result


def test_aphynity_pendulum_mini_is_valid(pendulum_mini):
    assert validate(pendulum_mini.directory) == []
    assert sorted(pendulum_mini.files) == ["test", "train", "validation"]
    with open_dataset(pendulum_mini.files["test"]) as test:
        assert dict(test.sizes) == {"sample": 4, "time": 40}
        assert set(test["split"].values.tolist()) == {"test"}
        assert test["seed"].values.tolist() == [2**31 - 1 - i for i in range(4)]
        assert test["seed_spawn_key"].values.tolist() == [f"2-0-{i}" for i in range(4)]
        assert test.attrs["physml_solver"] == "dopri8" and test.attrs["physml_rtol"] == 1e-10
        assert test.attrs["physml_seed_rule"] == "paper_index" and test.attrs["physml_dt_save"] == 0.5
        config = json.loads(test.attrs["physml_config"])
        assert config["dataset"] == "aphynity_pendulum" and config["scale"] == "mini"
        # Every split file carries the train statistics.
        assert test["q"].attrs["physml_train_mean"] == pendulum_mini.statistics["q"]["mean"]
    manifest = json.loads((pendulum_mini.directory / "manifest.json").read_text())
    assert manifest["samples"] == {"train": 4, "validation": 4, "test": 4}
    assert not (pendulum_mini.directory / "shards").exists()


def test_trajectories_match_solve_ode_and_scipy_from_the_recorded_seeds(pendulum_mini):
    pendulum = get_system("damped_pendulum")()
    with open_dataset(pendulum_mini.files["train"]) as train:
        train = train.load()
    assert train["seed"].values.tolist() == [0, 1, 2, 3]  # paper_index: train sample i uses seed i
    y0 = torch.cat(
        [
            pendulum.sample_initial_conditions(1, torch.Generator().manual_seed(int(seed)))
            for seed in train["seed"].values
        ]
    )
    stored = np.stack([train["q"].values, train["p"].values], axis=-1)
    np.testing.assert_array_equal(stored[:, 0], y0.numpy())  # the initial states come from those seeds
    times = torch.tensor(train["time"].values)
    for index in range(len(y0)):  # one sample at a time: a different batch than the generator's shard
        solution = physml.solve_ode(
            pendulum, y0[index : index + 1], times, method="dopri8", rtol=1e-10, atol=1e-10
        )
        np.testing.assert_allclose(stored[index], solution.ys[:, 0].numpy(), rtol=0, atol=1e-8)
    # An independent check: SciPy's DOP853, the paper's integrator.
    from scipy.integrate import solve_ivp

    def field(t, y):
        return [y[1], -pendulum.omega0_squared.item() * np.sin(y[0]) - pendulum.alpha.item() * y[1]]

    reference = solve_ivp(
        field,
        (0.0, 19.5),
        y0[0].numpy(),
        method="DOP853",
        rtol=1e-12,
        atol=1e-13,
        t_eval=train["time"].values,
    )
    np.testing.assert_allclose(stored[0], reference.y.T, rtol=0, atol=1e-8)


def test_same_seed_gives_identical_data(tiny_spec, tmp_path):
    first = generate(tiny_spec, out=tmp_path / "first")
    second = generate(tiny_spec, out=tmp_path / "second")
    sums = split_checksums(first.directory)
    assert sums and sums == split_checksums(second.directory)
    # A different root entropy changes the data (so the comparison above can fail).
    data = tiny_spec.to_dict()
    data["seeds"]["entropy"] += 1
    third = generate(parse_spec(data), out=tmp_path / "third")
    assert split_checksums(third.directory)["train"]["q"] != sums["train"]["q"]


def test_dask_workers_give_the_same_data_as_serial(tiny_spec, tmp_path):
    serial = generate(tiny_spec, out=tmp_path / "serial")
    parallel = generate(tiny_spec, out=tmp_path / "dask", workers=2)
    assert parallel.shards_run == 5
    assert split_checksums(parallel.directory) == split_checksums(serial.directory)


def test_a_crash_leaves_no_final_file_and_the_rerun_skips_finished_shards(tiny_spec, tmp_path, monkeypatch):
    real = generation.simulate_shard
    calls = []

    def crash_on_second_shard(system, initial_states, times, spec, scale):
        calls.append(len(initial_states))
        if len(calls) == 2:
            raise RuntimeError("injected crash")
        return real(system, initial_states, times, spec, scale)

    monkeypatch.setattr(generation, "simulate_shard", crash_on_second_shard)
    with pytest.raises(RuntimeError, match="injected crash"):
        generate(tiny_spec, out=tmp_path)
    directory = tmp_path / "tiny_pendulum" / "mini"
    leftovers = sorted(path.name for path in directory.rglob("*") if path.is_file())
    # Only the finished first shard and the run's config: no split file, no manifest, no temporary file.
    assert leftovers == ["config.json", "train-environment0000-samples0000000-0000002.nc"]

    calls.clear()
    monkeypatch.setattr(generation, "simulate_shard", real)
    report = generate(tiny_spec, out=tmp_path)
    assert (report.shards_run, report.shards_skipped) == (4, 1)
    assert validate(report.directory) == []
    # The resumed dataset equals one generated in a single run.
    fresh = generate(tiny_spec, out=tmp_path / "fresh")
    assert split_checksums(report.directory) == split_checksums(fresh.directory)


def test_existing_output_is_never_overwritten_without_permission(tiny_spec, tmp_path):
    report = generate(tiny_spec, out=tmp_path)
    before = split_checksums(report.directory)
    data = tiny_spec.to_dict()
    data["seeds"]["entropy"] = 99
    other = parse_spec(data)
    with pytest.raises(FileExistsError, match="already holds a dataset .*pass overwrite=True"):
        generate(other, out=tmp_path)
    assert split_checksums(report.directory) == before
    replaced = generate(other, out=tmp_path, overwrite=True)
    assert split_checksums(replaced.directory) != before and validate(replaced.directory) == []


def test_statistics_come_from_the_train_split_only(tiny_spec_data, tmp_path):
    first = generate(parse_spec(tiny_spec_data), out=tmp_path / "a")
    tiny_spec_data["scales"]["mini"]["test"] = 6  # a different test split ...
    second = generate(parse_spec(tiny_spec_data), out=tmp_path / "b")
    assert second.statistics == first.statistics  # ... leaves the statistics unchanged
    with open_dataset(first.files["train"]) as train, open_dataset(first.files["test"]) as test:
        q_train, q_test = train["q"].values, test["q"].values
        assert test["q"].attrs["physml_train_mean"] == pytest.approx(q_train.mean())
    assert first.statistics["q"]["mean"] == pytest.approx(q_train.mean())
    assert first.statistics["q"]["mean"] != pytest.approx(np.concatenate([q_train, q_test]).mean())
    stored = json.loads((first.directory / "statistics.json").read_text())
    assert stored["variables"]["q"]["std"] == pytest.approx(q_train.std())


def test_non_finite_trajectories_are_flagged_and_kept(tiny_spec, tmp_path, monkeypatch):
    real = generation.simulate_shard

    def blow_up_first_sample(system, initial_states, times, spec, scale):
        solution = real(system, initial_states, times, spec, scale)
        solution.ys[4:, 0, 1] = float("nan")
        return solution

    monkeypatch.setattr(generation, "simulate_shard", blow_up_first_sample)
    report = generate(tiny_spec, out=tmp_path)
    with open_dataset(report.files["train"]) as train:
        assert train.sizes["sample"] == 5  # nothing dropped
        assert train["qc_flag"].values.tolist() == [1, 0, 1, 0, 1]  # the first sample of each shard
    assert report.qc_counts["train"] == {"good": 2, "non_finite": 3, "solver_failure": 0}
    assert validate(report.directory) == []
    assert report.statistics["p"]["samples"] == 2 and np.isfinite(report.statistics["p"]["mean"])


def test_spec_parameters_are_checked_against_the_system(tiny_spec_data, tmp_path):
    tiny_spec_data["environments"] = [{"id": 0, "alpha": 0.1}, {"id": 1, "gamma": 0.3}]
    with pytest.raises(
        SpecError, match=r"key\(s\) \['environments\[1\].gamma'\] are not parameters of system"
    ):
        generate(parse_spec(tiny_spec_data, "tiny.toml"), out=tmp_path)
    assert not (tmp_path / "tiny_pendulum").exists()


def test_environments_get_their_own_parameters(tiny_spec_data, tmp_path):
    tiny_spec_data["environments"] = [{"id": 0, "alpha": 0.1}, {"id": 4, "alpha": 0.5}]
    tiny_spec_data["scales"]["mini"] = {"train": 2, "test": 1}
    report = generate(parse_spec(tiny_spec_data), out=tmp_path)
    with open_dataset(report.files["train"]) as train:
        assert train["environment"].values.tolist() == [0, 0, 4, 4]
        assert train["alpha"].values.tolist() == [0.1, 0.1, 0.5, 0.5]
        # The same spawn index in two environments gets different seeds (the spawn key holds the environment).
        assert train["seed_spawn_key"].values.tolist() == ["0-0-0", "0-0-1", "0-4-0", "0-4-1"]
        assert len(set(train["seed"].values.tolist())) == 4
        # Each environment's trajectories solve that environment's equations.
        times = torch.tensor(train["time"].values)
        for index, alpha in ((0, 0.1), (3, 0.5)):
            system = get_system("damped_pendulum")(alpha=alpha)
            y0 = torch.tensor([[train["q"].values[index, 0], train["p"].values[index, 0]]])
            expected = physml.solve_ode(system, y0, times, method="dopri5", rtol=1e-10, atol=1e-12).ys[:, 0]
            np.testing.assert_allclose(train["p"].values[index], expected[:, 1].numpy(), atol=1e-6)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="give workers or scheduler, not both"):
        generate("aphynity_pendulum", out=tmp_path, workers=2, scheduler="tcp://localhost:8786")
    with pytest.raises(ValueError, match="workers must be a positive integer or None, got 0"):
        generate("aphynity_pendulum", out=tmp_path, workers=0)
    with pytest.raises(ValueError, match="scale 'large' is not defined"):
        generate("aphynity_pendulum", "large", out=tmp_path)
    with pytest.raises(ValueError, match="store must be 'netcdf' or 'zarr'"):
        generate(load_spec("aphynity_pendulum"), out=tmp_path, store="hdf5")


def test_leads_lv_mini_has_ten_environments_sharing_initial_states(tmp_path):
    spec = load_spec("leads_lv")
    report = generate(spec, "mini", out=tmp_path)
    assert validate(report.directory) == []
    with open_dataset(report.files["test"]) as test:
        test = test.load()
    assert test.sizes["sample"] == 40 and sorted(set(test["environment"].values.tolist())) == list(range(10))
    for environment in spec.environments:
        members = test.where(test["environment"] == environment.id, drop=True)
        assert set(members["alpha"].values.tolist()) == {environment.parameters["alpha"]}
        assert set(members["gamma"].values.tolist()) == {environment.parameters["gamma"]}
        assert set(members["beta"].values.tolist()) == {0.5} == set(members["delta"].values.tolist())
        # LEADS seeds by the index within the environment: every environment starts from the same states.
        assert members["seed"].values.tolist() == [2**31 - 1 - i for i in range(4)]
        np.testing.assert_array_equal(members["x"].values[:, 0], test["x"].values[:4, 0])
    # The dynamics differ between environments (the first integral of each one is conserved).
    system = get_system("lotka_volterra")(**spec.environment_parameters(spec.environments[3]))
    states = torch.tensor(
        np.stack([test["x"].values, test["y"].values], axis=-1)[test["environment"].values == 3]
    )
    invariant = system.first_integral(states)
    assert (invariant - invariant[:, :1]).abs().max() < 1e-8
    other = get_system("lotka_volterra")(**spec.environment_parameters(spec.environments[0])).first_integral(
        states
    )
    assert (other - other[:, :1]).abs().max() > 1e-2


def test_scale_system_options_reach_the_system(tiny_spec_data, tmp_path):
    tiny_spec_data.update(system="lotka_volterra", parameters={"beta": 0.5})
    tiny_spec_data["system_options"] = {"initial_condition_range": [1.0, 2.0]}
    tiny_spec_data["scales"]["mini"]["system_options"] = {"initial_condition_range": [3.0, 4.0]}
    report = generate(parse_spec(tiny_spec_data), out=tmp_path)
    with open_dataset(report.files["train"]) as train:
        start = np.stack([train["x"].values[:, 0], train["y"].values[:, 0]])
    assert start.min() >= 3.0 and start.max() < 4.0  # the scale's override, not the spec-wide option
    tiny_spec_data["scales"]["mini"]["system_options"] = {"resolution": 64}
    with pytest.raises(
        SpecError, match=r"system 'lotka_volterra' rejects system_options \{.*'resolution': 64"
    ):
        generate(parse_spec(tiny_spec_data, "tiny.toml"), out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_zarr_store_replaces_a_netcdf_dataset_with_the_same_values(tiny_spec, tmp_path):
    netcdf = generate(tiny_spec, out=tmp_path)
    sums = split_checksums(netcdf.directory)
    zarr = generate(tiny_spec, out=tmp_path, store="zarr", overwrite=True)
    names = sorted(path.name for path in zarr.directory.iterdir())
    assert names == ["manifest.json", "statistics.json", "test.zarr", "train.zarr"]  # no stale .nc left
    assert validate(zarr.directory) == []
    with open_dataset(zarr.directory, split="train") as train:
        assert checksums(train) == sums["train"]


def test_parameters_varying_within_a_shard_become_batched_tensors(tiny_spec):
    system = generation.build_system(tiny_spec, "mini", {"alpha": np.array([0.1, 0.4, 0.4])})
    assert system.alpha.shape == (3,) and system.batch_size() == 3
    uniform = generation.build_system(tiny_spec, "mini", {"alpha": np.array([0.2, 0.2])})
    assert uniform.alpha.ndim == 0 and float(uniform.alpha) == 0.2
    y0 = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    times = torch.linspace(0, 1, 3, dtype=torch.float64)
    batched = system.simulate(y0, times, method="dopri5", rtol=1e-10).ys
    single = get_system("damped_pendulum")(alpha=0.1).simulate(y0[:1], times, method="dopri5", rtol=1e-10).ys
    np.testing.assert_allclose(batched[:, 0].numpy(), single[:, 0].numpy(), atol=1e-9)
    assert not np.allclose(batched[:, 0].numpy(), batched[:, 1].numpy())
