"""The xarray schema: built from a system, written atomically, read back identical; QC flags."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from physml.data import (
    QC_FLAG_MEANINGS,
    attach_statistics,
    build_dataset,
    checksums,
    compute_statistics,
    open_dataset,
    validate,
    write_dataset,
)
from physml.systems import get_system


@pytest.fixture
def pendulum():
    return get_system("damped_pendulum")()


def pendulum_dataset(pendulum, n=3, frames=6, broken_sample=None):
    y0 = pendulum.sample_initial_conditions(n, torch.Generator().manual_seed(0))
    times = torch.linspace(0.0, 2.5, frames, dtype=torch.float64)
    ys = pendulum.simulate(y0, times, method="dopri5", rtol=1e-8, atol=1e-10).ys.clone()
    if broken_sample is not None:
        ys[3:, broken_sample, 0] = float("nan")
    dataset = build_dataset(
        pendulum,
        times,
        ys,
        split=["train"] * n,
        environment=0,
        seed_spawn_keys=[f"0-0-{i}" for i in range(n)],
        seeds=np.arange(n),
        solver={"method": "dopri5", "rtol": 1e-8, "atol": 1e-10, "internal_dt": None},
        seed_entropy=7,
        seed_rule="spawn",
        config={"note": "test"},
        attributes={"license": "CC0-1.0", "product_version": "0.1", "physml_dt_save": 0.5},
    )
    return attach_statistics(dataset, compute_statistics(dataset))


def test_layout_units_and_sample_coordinates(pendulum):
    dataset = pendulum_dataset(pendulum)
    assert dataset["q"].dims == ("sample", "time") and dataset["q"].attrs["units"] == "rad"
    assert dataset["p"].attrs["long_name"] == "angular velocity"
    assert dataset["time"].attrs["units"] == "s" and "since" not in dataset["time"].attrs["units"]
    for name in ("split", "environment", "seed_spawn_key", "seed", "qc_flag", "omega0_squared", "alpha"):
        assert dataset[name].dims == ("sample",), name
    assert dataset["alpha"].attrs["units"] == "s-1"
    np.testing.assert_array_equal(dataset["qc_flag"].attrs["flag_values"], [0, 1, 2])
    assert dataset["qc_flag"].attrs["flag_meanings"] == QC_FLAG_MEANINGS
    attrs = dataset.attrs
    assert attrs["Conventions"].startswith("CF-") and attrs["physml_system"] == "damped_pendulum"
    assert attrs["physml_dt_internal"] == "adaptive" and attrs["physml_dt_save"] == 0.5
    assert json.loads(attrs["physml_config"]) == {"note": "test"}
    assert validate(dataset) == []


def test_wrong_trajectory_shape_is_rejected(pendulum):
    with pytest.raises(ValueError, match=r"trajectories must have shape \(n_time, n_sample, \*state_shape\)"):
        build_dataset(pendulum, np.arange(4.0), np.zeros((4, 3, 3)))


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_write_then_read_is_identical(pendulum, tmp_path, suffix):
    dataset = pendulum_dataset(pendulum, broken_sample=1)
    path = write_dataset(dataset, tmp_path / f"train{suffix}")
    with open_dataset(path) as loaded:
        loaded = loaded.load()
    xr.testing.assert_identical(loaded, dataset)
    assert checksums(loaded) == checksums(dataset)
    assert loaded["time"].dtype == np.float64  # never decoded to timedelta
    assert np.isnan(loaded["q"].values[1, 3:]).all()  # NaN survives the fill-value machinery


def test_write_is_atomic_and_refuses_to_overwrite(pendulum, tmp_path, monkeypatch):
    dataset = pendulum_dataset(pendulum)
    path = write_dataset(dataset, tmp_path / "train.nc")
    with pytest.raises(FileExistsError, match="train.nc' already exists; pass overwrite=True"):
        write_dataset(dataset, path)

    # A failure while writing leaves neither a partial final file nor a temporary file behind.
    def failing(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(dataset, tmp_path / "test.nc")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["train.nc"]


def test_non_finite_trajectories_are_flagged_not_dropped(pendulum):
    dataset = pendulum_dataset(pendulum, n=4, broken_sample=2)
    assert dataset.sizes["sample"] == 4
    assert dataset["qc_flag"].values.tolist() == [0, 0, 1, 0]
    # Statistics skip the flagged sample instead of turning NaN.
    statistics = compute_statistics(dataset)
    assert np.isfinite(statistics["q"]["mean"]) and statistics["q"]["samples"] == 3
    failed = build_dataset(pendulum, np.arange(2.0), np.zeros((2, 2, 2)), solver_failed=[False, True])
    assert failed["qc_flag"].values.tolist() == [0, 2]


def test_statistics_match_numpy(pendulum):
    dataset = pendulum_dataset(pendulum)
    statistics = compute_statistics(dataset)
    q = dataset["q"].values
    assert statistics["q"]["mean"] == pytest.approx(q.mean())
    assert statistics["q"]["std"] == pytest.approx(q.std())
    assert statistics["q"]["increment_std"] == pytest.approx(np.diff(q, axis=1).std())
    assert dataset["q"].attrs["physml_train_rms"] == pytest.approx(np.sqrt((q**2).mean()))


def test_checksums_see_every_value(pendulum):
    dataset = pendulum_dataset(pendulum)
    changed = dataset.copy(deep=True)
    changed["p"].values[0, 0] = np.nextafter(changed["p"].values[0, 0], 10.0)
    before, after = checksums(dataset), checksums(changed)
    assert before["p"] != after["p"] and before["q"] == after["q"]
