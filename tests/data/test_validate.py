"""The validator lists every violation of a broken dataset and nothing for a good one."""

import numpy as np
import pytest
import torch

from physml.data import attach_statistics, build_dataset, compute_statistics, validate, write_dataset
from physml.systems import get_system


@pytest.fixture
def good():
    pendulum = get_system("damped_pendulum")()
    y0 = pendulum.sample_initial_conditions(3, torch.Generator().manual_seed(1))
    times = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    ys = pendulum.simulate(y0, times, method="dopri5").ys
    dataset = build_dataset(
        pendulum,
        times,
        ys,
        split="test",
        seed_spawn_keys=["2-0-0", "2-0-1", "2-0-2"],
        seeds=[5, 6, 7],
        solver={"method": "dopri5", "rtol": 1e-6, "atol": 1e-8},
        seed_entropy=3,
        seed_rule="spawn",
        attributes={"license": "CC0-1.0", "product_version": "1", "physml_dt_save": 0.25},
    )
    return attach_statistics(dataset, compute_statistics(dataset))


def test_a_good_dataset_has_no_violations(good, tmp_path):
    assert validate(good) == []
    assert validate(write_dataset(good, tmp_path / "test.nc")) == []


# Each breakage and a fragment of the message the validator must print for it.
BREAKAGES = {
    "missing attribute": (lambda ds: ds.attrs.pop("license"), "missing global attribute 'license'"),
    "empty attribute": (lambda ds: ds.attrs.update(title=" "), "global attribute 'title' is empty"),
    "config not JSON": (
        lambda ds: ds.attrs.update(physml_config="{oops"),
        "'physml_config' must be a JSON string",
    ),
    "bad tolerance": (
        lambda ds: ds.attrs.update(physml_rtol="tight"),
        "'physml_rtol' must be a positive number",
    ),
    "bad date": (lambda ds: ds.attrs.update(date_created="yesterday"), "'date_created' must be ISO 8601"),
    "missing units": (lambda ds: ds["q"].attrs.pop("units"), "data variable 'q' has no 'units'"),
    "missing long name": (
        lambda ds: ds["time"].attrs.pop("long_name"),
        "coordinate 'time' has no 'long_name'",
    ),
    "time since": (
        lambda ds: ds["time"].attrs.update(units="seconds since 2000-01-01"),
        "not '... since ...'",
    ),
    "save interval": (lambda ds: ds.attrs.update(physml_dt_save=0.5), "disagrees with physml_dt_save = 0.5"),
    "missing coordinate": (
        lambda ds: ds.__delitem__("seed_spawn_key"),
        "missing coordinate 'seed_spawn_key'",
    ),
    "missing parameter": (
        lambda ds: ds.__delitem__("alpha"),
        "missing coordinate 'alpha' for physical parameter",
    ),
    "unknown split": (
        lambda ds: ds["split"].values.__setitem__(0, "holdout"),
        "unknown split name(s) ['holdout']",
    ),
    "flag outside values": (
        lambda ds: ds["qc_flag"].values.__setitem__(1, 7),
        "value(s) [7] outside flag_values",
    ),
    "flag meanings": (
        lambda ds: ds["qc_flag"].attrs.pop("flag_meanings"),
        "needs CF attributes 'flag_values' and",
    ),
    "non-finite unflagged": (
        lambda ds: ds["p"].values.__setitem__((2, 3), np.inf),
        "sample 2 of 'p' holds non-finite values but qc_flag is 0",
    ),
    "statistics": (
        lambda ds: ds["p"].attrs.pop("physml_train_std"),
        "'p' lacks train statistics attribute(s)",
    ),
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_each_violation_is_reported(good, kind):
    breakage, message = BREAKAGES[kind]
    breakage(good)
    problems = validate(good)
    assert any(message in problem for problem in problems), problems


def test_all_violations_are_listed_at_once(good, tmp_path):
    for breakage, _ in BREAKAGES.values():
        breakage(good)
    good["q"] = good["q"].transpose("time", "sample")  # wrong dimension order, too
    problems = validate(write_dataset(good, tmp_path / "broken.nc"))
    for kind, (_, message) in BREAKAGES.items():
        assert any(message in problem for problem in problems), (kind, problems)
    assert any("'q' has dims ('time', 'sample')" in problem for problem in problems)
    assert len(problems) >= len(BREAKAGES)


def test_unreadable_paths_are_violations(tmp_path):
    (tmp_path / "junk.nc").write_text("not netCDF")
    assert "cannot open" in validate(tmp_path / "junk.nc")[0]
    assert "cannot open" in validate(tmp_path / "missing.nc")[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert validate(empty) == [f"{empty}: no .nc or .zarr split files in this directory"]
