"""The spec keys beyond plain initial-value sweeps: spatial stride, stored velocity, reference solutions,
deterministic initial conditions, adaptation environments, per-environment options, per-scale overrides."""

import numpy as np
import pytest
import torch

from physml.data import (
    SpecError,
    checksums,
    generate,
    load_spec,
    open_dataset,
    parse_spec,
    plan_shards,
    sample_seed,
    validate,
)
from physml.data._generate import _coerce_options, build_system, strided_grid
from physml.systems import Grid, get_system


def shipped(name: str, **changes) -> dict:
    """A shipped spec as a dict, with top-level keys replaced."""
    data = load_spec(name).to_dict()
    data.update(changes)
    return data


def test_strided_grid_keeps_every_kth_point_and_both_bounded_ends():
    periodic = Grid(dims=("x",), shape=(8,), lower=(0.0,), upper=(1.0,), boundary=("periodic",))
    assert strided_grid(periodic, 4).coordinates()["x"].tolist() == [0.0, 0.5]
    bounded = Grid(dims=("x",), shape=(9,), lower=(0.0,), upper=(1.0,), boundary=("dirichlet",))
    assert strided_grid(bounded, 4).coordinates()["x"].tolist() == [0.0, 0.5, 1.0]
    assert strided_grid(periodic, 1) is periodic
    with pytest.raises(ValueError, match="stride 3 must divide the 8 grid intervals along 'x'"):
        strided_grid(periodic, 3)


def test_spatial_stride_stores_every_fourth_point_of_the_fine_solve(tmp_path):
    data = shipped("pdenet_burgers2d")
    data["scales"] = {"mini": {"train": 1, "system_options": {"points": 32}, "time": {"frames": 3}}}
    report = generate(parse_spec(data), "mini", out=tmp_path, progress=False)
    assert validate(report.directory) == []
    with open_dataset(report.files["train"]) as train:
        train = train.load()
    assert dict(train.sizes) == {"sample": 1, "time": 3, "y": 8, "x": 8}
    assert train.attrs["physml_spatial_stride"] == 4
    np.testing.assert_allclose(train["x"].values, 2 * np.pi / 8 * np.arange(8), atol=1e-12)
    system = get_system("burgers_2d")(points=32, viscosity=0.05)
    y0 = system.sample_initial_conditions(1, torch.Generator().manual_seed(int(train["seed"][0])))
    fine = system.simulate(y0, torch.tensor(train["time"].values), step_size=2.5e-3).ys[:, 0]
    stored = np.stack([train["u"].values[0], train["v"].values[0]], axis=1)
    np.testing.assert_allclose(stored, fine[..., ::4, ::4].numpy(), rtol=0, atol=1e-5)  # float32 storage
    assert not np.allclose(stored, fine[..., 1::4, 1::4].numpy(), atol=1e-3)  # the right points

    data["scales"]["mini"]["system_options"]["points"] = 30
    with pytest.raises(SpecError, match="key 'output.spatial_stride' at scale 'mini': stride 4 must divide"):
        generate(parse_spec(data, "pdenet.toml"), "mini", out=tmp_path / "bad", progress=False)


def test_sst_velocity_is_stored_per_sample_whatever_the_shard_size(tmp_path):
    data = shipped("sst_advection")
    data["scales"] = {
        "mini": {
            "train": 3,
            "samples_per_shard": 3,
            "time": {"frames": 3},
            "system_options": {"grid_shape": [16, 16], "grid_spacing": 40.0, "warm_up": 1.0},
        }
    }
    batched = generate(parse_spec(data), "mini", out=tmp_path / "batched", progress=False)
    data["scales"]["mini"]["samples_per_shard"] = 1
    single = generate(parse_spec(data), "mini", out=tmp_path / "single", progress=False)
    assert validate(batched.directory) == []
    with open_dataset(batched.files["train"]) as one, open_dataset(single.files["train"]) as other:
        # Each sample is integrated with its own flow: batching three of them changes nothing.
        assert checksums(one) == checksums(other)
        train = one.load()
    assert [train[name].attrs["units"] for name in ("sst", "u", "v")] == ["K", "km day-1", "km day-1"]
    assert train["u"].attrs["standard_name"] == "eastward_sea_water_velocity"
    assert train["u"].attrs["physml_role"] == "auxiliary" and train.attrs["physml_state_variables"] == "sst"
    # Sample 1 rebuilt alone from its seed: same initial temperature, same currents at every saved time.
    system = get_system("sst_advection_diffusion")(grid_shape=(16, 16), grid_spacing=40.0, warm_up=1.0)
    y0 = system.sample_initial_conditions(1, torch.Generator().manual_seed(int(train["seed"][1])))
    np.testing.assert_allclose(train["sst"].values[1, 0], y0[0, 0].numpy(), rtol=1e-6)
    velocity = system.velocity(torch.tensor(train["time"].values))[:, 0]
    np.testing.assert_allclose(train["u"].values[1], velocity[:, 0].numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(train["v"].values[1], velocity[:, 1].numpy(), rtol=1e-5, atol=1e-4)
    assert not np.allclose(train["u"].values[0], train["u"].values[1], atol=1.0)  # flows differ per sample


def test_velocity_output_needs_a_system_that_prescribes_one(tmp_path):
    data = shipped("aphynity_rd", output={"velocity": True})
    with pytest.raises(SpecError, match="'output.velocity' = true needs a system with 'velocity_variables'"):
        generate(parse_spec(data, "rd.toml"), "mini", out=tmp_path, progress=False)


def test_reference_dataset_stores_the_reference_function(tmp_path):
    from simulators.burgers import raissi_reference

    report = generate("raissi_burgers", "mini", out=tmp_path, progress=False)
    with open_dataset(report.files["train"]) as train:
        train = train.load()
    x, t, u = raissi_reference(256, 100, final_time=0.99)
    assert train["u"].dims == ("sample", "time", "x")
    np.testing.assert_array_equal(train["u"].values[0], u.numpy())
    np.testing.assert_allclose(train["x"].values, x.numpy(), atol=1e-15)
    assert train["seed"].values.tolist() == [-1] and train.attrs["physml_seed_rule"] == "deterministic"
    assert train.attrs["physml_rtol"] == "not applicable" == train.attrs["physml_dt_internal"]
    assert "raissi_reference" in train.attrs["physml_solver"]
    assert train["viscosity"].values.tolist() == [0.01 / np.pi]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["system_options"].update(points=128),
            r"coordinate 'x' of reference function 'raissi_reference'",
        ),
        (lambda d: d["reference"].update(nt=50), r"the times of reference function 'raissi_reference'"),
        (
            lambda d: d["reference"].update(function="exact"),
            r"'reference.function' = 'exact' is not a function of "
            r"module 'simulators.burgers'",
        ),
    ],
)
def test_reference_mismatches_are_spec_errors(edit, message, tmp_path):
    data = shipped("raissi_burgers")
    edit(data)
    with pytest.raises(SpecError, match=message):
        generate(parse_spec(data, "raissi.toml"), "mini", out=tmp_path, progress=False)


def test_deterministic_initial_condition_is_the_systems_paper_state(tmp_path):
    report = generate("pdefind_ks", "mini", out=tmp_path, progress=False)
    with open_dataset(report.files["train"]) as train:
        u0 = train["u"].values[0, 0]
        assert train["seed"].values.tolist() == [-1]
        assert train.attrs["physml_initial_condition"].startswith("system method paper_initial_condition()")
    expected = get_system("kuramoto_sivashinsky")(points=128).paper_initial_condition()
    # ETDRK4 returns the first frame through a Fourier round trip: equal to rounding.
    np.testing.assert_allclose(u0, expected.reshape(-1).numpy(), rtol=0, atol=1e-14)
    assert np.abs(u0 - np.roll(expected.reshape(-1).numpy(), 1)).max() > 1e-2


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["seeds"].update(rule="spawn", entropy=1), r"the rule 'deterministic' goes with"),
        (lambda d: d.pop("initial_condition"), r"the rule 'deterministic' goes with"),
        (
            lambda d: d.update(reference={"function": "f"}, solver=None) or d.pop("solver"),
            r"give 'initial_condition' or \[reference\], not both",
        ),
    ],
)
def test_deterministic_rule_and_fixed_initial_states_go_together(edit, message):
    data = shipped("pdefind_ks")
    edit(data)
    with pytest.raises(SpecError, match=message):
        parse_spec(data, "ks.toml")


def test_initial_condition_must_name_a_system_method(tmp_path):
    data = shipped("pdefind_ks", initial_condition="sample_initial_condition")
    with pytest.raises(SpecError, match="'initial_condition' = 'sample_initial_condition' is not a method"):
        generate(parse_spec(data, "ks.toml"), "mini", out=tmp_path, progress=False)


def test_reference_spec_needs_no_solver_and_rejects_one():
    data = shipped("raissi_burgers", solver={"method": "dopri5", "rtol": 1e-8, "atol": 1e-8})
    with pytest.raises(SpecError, match=r"remove the \[solver\] table"):
        parse_spec(data, "raissi.toml")


def tiny_lotka_volterra(**scale) -> dict:
    """Two in-domain environments and one adaptation environment of Lotka-Volterra."""
    return {
        "name": "tiny_lv",
        "system": "lotka_volterra",
        "title": "t",
        "summary": "s",
        "references": "r",
        "license": "CC0-1.0",
        "product_version": "1",
        "dtype": "float64",
        "environments": [
            {"id": 0, "beta": 0.5},
            {"id": 1, "beta": 1.0},
            {"id": 7, "beta": 0.75, "adaptation": True},
        ],
        "time": {"start": 0.0, "frames": 4, "save_interval": 0.5},
        "solver": {"method": "dopri5", "rtol": 1e-8, "atol": 1e-10},
        "seeds": {"rule": "paper_index", "entropy": 3},
        "scales": {"mini": {"train": 2, "test": 1, "adaptation_train": 1, "adaptation_test": 2, **scale}},
    }


def test_adaptation_environments_fill_their_own_splits(tmp_path):
    spec = parse_spec(tiny_lotka_volterra())
    assert [(shard.split, shard.environment) for shard in plan_shards(spec, "mini")] == [
        ("train", 0),
        ("train", 1),
        ("test", 0),
        ("test", 1),
        ("adaptation_train", 7),
        ("adaptation_test", 7),
    ]
    assert spec.split_totals("mini") == {"train": 4, "test": 2, "adaptation_train": 1, "adaptation_test": 2}
    report = generate(spec, "mini", out=tmp_path, progress=False)
    assert validate(report.directory) == []
    assert sorted(path.name for path in report.directory.glob("*.nc")) == [
        "adaptation_test.nc",
        "adaptation_train.nc",
        "test.nc",
        "train.nc",
    ]
    with (
        open_dataset(report.files["adaptation_test"]) as adaptation,
        open_dataset(report.files["train"]) as train,
    ):
        assert adaptation["environment"].values.tolist() == [7, 7]
        assert adaptation["beta"].values.tolist() == [0.75, 0.75]
        assert adaptation["seed"].values.tolist() == [2**31 - 1, 2**31 - 2]  # CoDA: test seeds
        # The statistics come from the in-domain train split only.
        assert report.statistics["x"]["mean"] == pytest.approx(float(train["x"].mean()))
        assert report.statistics["x"]["samples"] == 4
    assert sample_seed(spec, "adaptation_train", 7, 0) == ("3-7-0", 0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["environments"].pop(),
            r"gives sizes for \['adaptation_test', 'adaptation_train'\] but no "
            r"environment has 'adaptation = true'",
        ),
        (
            lambda d: [env.update(adaptation=True) for env in d["environments"]],
            r"needs at least one environment without 'adaptation = true'",
        ),
        (
            lambda d: d["environments"][0].update(adaptation="yes"),
            r"key 'environments\[0\].adaptation' must be true or false",
        ),
    ],
)
def test_adaptation_mistakes_name_the_key(edit, message):
    data = tiny_lotka_volterra()
    edit(data)
    with pytest.raises(SpecError, match=message):
        parse_spec(data, "tiny.toml")


def test_paper_index_reversed_swaps_train_and_test_seeds():
    spec = load_spec("aphynity_wave")
    assert sample_seed(spec, "train", 0, 0) == ("0-0-0", 2**31 - 1)
    assert sample_seed(spec, "test", 0, 0) == ("2-0-0", 0)
    assert sample_seed(spec, "validation", 0, 0)[1] not in (0, 2**31 - 1)


def test_scale_time_and_solver_merge_over_the_spec():
    data = tiny_lotka_volterra(time={"frames": 2}, solver={"rtol": 1e-4})
    spec = parse_spec(data)
    assert spec.time_for("mini").frames == 2 and spec.time.frames == 4
    assert spec.time_for("mini").save_interval == 0.5
    assert (spec.solver_for("mini").rtol, spec.solver_for("mini").atol) == (1e-4, 1e-10)
    data["scales"]["mini"]["time"] = {"end": 0.75}
    with pytest.raises(
        SpecError, match=r"key 'scales.mini.time.end' = 0.75 must be start \+ k \* save_interval"
    ):
        parse_spec(data, "tiny.toml")
    data = shipped("raissi_burgers")
    data["scales"]["mini"]["solver"] = {"method": "rk4"}
    with pytest.raises(
        SpecError, match=r"'scales.mini.solver' overrides a \[solver\] table the spec does not have"
    ):
        parse_spec(data, "raissi.toml")


def test_tolerances_are_optional_only_for_fixed_step_solves(tiny_spec_data, tmp_path):
    tiny_spec_data["solver"] = {"method": "rk4"}
    with pytest.raises(SpecError, match="required key 'solver.rtol' is missing"):
        parse_spec(tiny_spec_data, "tiny.toml")
    tiny_spec_data["solver"] = {"method": "rk4", "internal_dt": 0.05}
    spec = parse_spec(tiny_spec_data)
    assert spec.solver.simulate_arguments() == {"method": "rk4", "options": {"step_size": 0.05}}
    report = generate(spec, out=tmp_path, progress=False)
    assert validate(report.directory) == []
    with open_dataset(report.files["train"]) as train:
        assert train.attrs["physml_rtol"] == "not applicable" == train.attrs["physml_atol"]
        assert train.attrs["physml_dt_internal"] == 0.05
        bad = train.load()
    bad.attrs["physml_dt_internal"] = "tiny"
    assert any("'physml_dt_internal' must be a positive number" in problem for problem in validate(bad))


def test_toml_tables_become_dataclass_options():
    from simulators.navier_stokes import NavierStokes2D, WarmUp

    options = _coerce_options(
        NavierStokes2D, {"warm_up": {"duration": 2.0, "forcing": "f1", "viscosity": 5e-4}, "grid_size": 8}
    )
    assert options == {"warm_up": WarmUp(2.0, "f1", 5e-4), "grid_size": 8}
    # A table for an argument annotated with no dataclass reaches the constructor as it is (which rejects it).
    assert _coerce_options(NavierStokes2D, {"time_step": {"value": 1.0}}) == {"time_step": {"value": 1.0}}


def test_environment_options_reach_their_shards_and_become_coordinates(tmp_path):
    data = shipped("leads_ns")
    data["scales"] = {
        "mini": {
            "train": 1,
            "time": {"frames": 3},
            "solver": {"internal_dt": 0.01},
            "system_options": {
                "grid_size": 8,
                "time_step": 0.01,
                "warm_up": {"duration": 0.5, "forcing": "f0", "viscosity": 1e-3},
            },
        }
    }
    spec = parse_spec(data)
    assert build_system(spec, "mini", {}, spec.environments[2]).forcing_names == ["f2"]
    report = generate(spec, "mini", out=tmp_path, progress=False)
    assert validate(report.directory) == []
    with open_dataset(report.files["train"]) as train:
        assert train["forcing"].values.tolist() == ["f0", "f1", "f2", "f3"]
        vorticity = train["vorticity"].values
    # LEADS: the same spun-up initial state in every environment, different dynamics afterwards.
    np.testing.assert_array_equal(vorticity[:, 0], np.broadcast_to(vorticity[0, 0], vorticity[:, 0].shape))
    assert np.abs(vorticity[1, -1] - vorticity[0, -1]).max() > 1e-3
