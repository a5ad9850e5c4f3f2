"""Every shipped dataset: generated at mini scale and validated; paper-scale configs checked against the
papers and the cards without generating them."""

import math
import re

import numpy as np
import pytest

from physml.data import (
    SPLIT_IDS,
    available_datasets,
    dataset_card,
    generate,
    load_spec,
    open_dataset,
    parse_spec,
    plan_shards,
    sample_seed,
    validate,
)
from physml.data._generate import build_system, strided_grid
from physml.systems import get_system

SHIPPED = (
    "aphynity_pendulum",
    "aphynity_rd",
    "aphynity_wave",
    "coda_go",
    "coda_gs",
    "coda_lv",
    "coda_ns",
    "leads_gs",
    "leads_lv",
    "leads_ns",
    "ns_vorticity_generative",
    "pdefind_burgers",
    "pdefind_kdv",
    "pdefind_ks",
    "pdefind_rd",
    "pdenet_burgers2d",
    "raissi_burgers",
    "sst_advection",
)
TWO_PI = 2 * math.pi

#: The papers' data, as the reference notes give them (sizes are totals over environments; the
#: validation splits and the SST sizes are physml's, see the cards).  grid: stored shape; spacing: of
#: the stored grid; lower: first coordinate.
PAPER = {
    "aphynity_pendulum": dict(
        system="damped_pendulum",
        totals=dict(train=25, validation=25, test=25),
        frames=40,
        dt=0.5,
        rule="paper_index",
    ),
    "aphynity_rd": dict(
        system="fitzhugh_nagumo",
        totals=dict(train=1600, validation=320, test=320),
        frames=30,
        dt=0.1,
        rule="paper_index",
        grid=(32, 32),
        spacing=(2 / 32, 2 / 32),
        lower=(-1.0, -1.0),
    ),
    "aphynity_wave": dict(
        system="damped_wave",
        totals=dict(train=1, validation=1, test=1),
        frames=225,
        dt=1e-3,
        rule="paper_index_reversed",
        grid=(64, 64),
        spacing=(1.0, 1.0),
        lower=(0.0, 0.0),
    ),
    "leads_lv": dict(
        system="lotka_volterra",
        totals=dict(train=10, validation=40, test=320),
        frames=20,
        dt=0.5,
        rule="paper_index",
    ),
    "leads_gs": dict(
        system="gray_scott",
        totals=dict(train=3, validation=12, test=96),
        frames=10,
        dt=40.0,
        rule="paper_index",
        grid=(32, 32),
        spacing=(1.0, 1.0),
        lower=(0.0, 0.0),
    ),
    "leads_ns": dict(
        system="navier_stokes_2d",
        totals=dict(train=32, validation=16, test=128),
        frames=10,
        dt=1.0,
        rule="paper_index",
        grid=(32, 32),
        spacing=(1 / 32, 1 / 32),
        lower=(0.0, 0.0),
    ),
    "ns_vorticity_generative": dict(
        system="navier_stokes_2d",
        totals=dict(train=144, validation=12, test=48),
        frames=20,
        dt=1.0,
        rule="spawn",
        grid=(32, 32),
        spacing=(1 / 32, 1 / 32),
        lower=(0.0, 0.0),
    ),
    "coda_lv": dict(
        system="lotka_volterra",
        frames=20,
        dt=0.5,
        rule="paper_index",
        totals=dict(train=36, validation=36, test=288, adaptation_train=4, adaptation_test=128),
    ),
    "coda_go": dict(
        system="glycolytic_oscillator",
        frames=20,
        dt=0.05,
        rule="paper_index",
        totals=dict(train=288, validation=72, test=288, adaptation_train=4, adaptation_test=128),
    ),
    "coda_gs": dict(
        system="gray_scott",
        frames=10,
        dt=40.0,
        rule="paper_index",
        grid=(32, 32),
        spacing=(1.0, 1.0),
        lower=(0.0, 0.0),
        totals=dict(train=4, validation=16, test=128, adaptation_train=4, adaptation_test=128),
    ),
    "coda_ns": dict(
        system="navier_stokes_2d",
        frames=10,
        dt=1.0,
        rule="paper_index",
        grid=(32, 32),
        spacing=(1 / 32, 1 / 32),
        lower=(0.0, 0.0),
        totals=dict(train=80, validation=20, test=160, adaptation_train=4, adaptation_test=128),
    ),
    "pdefind_burgers": dict(
        system="burgers_1d",
        totals=dict(train=1),
        frames=101,
        dt=0.1,
        rule="deterministic",
        grid=(256,),
        spacing=(16 / 256,),
        lower=(-8.0,),
    ),
    "pdefind_kdv": dict(
        system="korteweg_de_vries",
        totals=dict(train=1),
        frames=201,
        dt=0.1,
        rule="spawn",
        grid=(512,),
        spacing=(60 / 512,),
        lower=(-30.0,),
    ),
    "pdefind_ks": dict(
        system="kuramoto_sivashinsky",
        totals=dict(train=1),
        frames=251,
        dt=0.4,
        rule="deterministic",
        grid=(1024,),
        spacing=(32 * math.pi / 1024,),
        lower=(0.0,),
    ),
    "pdefind_rd": dict(
        system="lambda_omega",
        totals=dict(train=1),
        frames=201,
        dt=0.05,
        rule="spawn",
        grid=(256, 256),
        spacing=(20 / 256, 20 / 256),
        lower=(-10.0, -10.0),
    ),
    "raissi_burgers": dict(
        system="burgers_1d",
        totals=dict(train=1),
        frames=100,
        dt=0.01,
        rule="deterministic",
        grid=(256,),
        spacing=(2 / 255,),
        lower=(-1.0,),
    ),
    "pdenet_burgers2d": dict(
        system="burgers_2d",
        totals=dict(train=850, validation=50, test=1000),
        frames=401,
        dt=0.01,
        rule="spawn",
        grid=(32, 32),
        spacing=(TWO_PI / 32, TWO_PI / 32),
        lower=(0.0, 0.0),
    ),
    "sst_advection": dict(
        system="sst_advection_diffusion",
        totals=dict(train=58, validation=14, test=15),
        frames=365,
        dt=1.0,
        rule="spawn",
        grid=(128, 128),
        spacing=(9.266243887046562, 9.266243887046562),
        lower=(0.0, 0.0),
    ),
}

#: Environment parameter sets of the multi-environment papers: (in-domain, adaptation).
ENVIRONMENTS = {
    "leads_gs": (("feed", "kill"), {(0.037, 0.060), (0.030, 0.062), (0.039, 0.058)}, set()),
    "coda_lv": (
        ("beta", "delta"),
        {(b, d) for b in (0.5, 0.75, 1.0) for d in (0.5, 0.75, 1.0)},
        {(b, d) for b in (0.625, 1.125) for d in (0.625, 1.125)},
    ),
    "coda_go": (
        ("k1", "K1"),
        {(a, b) for a in (100.0, 90.0, 80.0) for b in (1.0, 0.75, 0.5)},
        {(a, b) for a in (85.0, 95.0) for b in (0.625, 0.875)},
    ),
    "coda_gs": (
        ("feed", "kill"),
        {(0.030, 0.062), (0.039, 0.058), (0.030, 0.058), (0.039, 0.062)},
        {(f, k) for f in (0.033, 0.036) for k in (0.059, 0.061)},
    ),
    "coda_ns": (
        ("viscosity",),
        {(8e-4,), (9e-4,), (1.0e-3,), (1.1e-3,), (1.2e-3,)},
        {(8.5e-4,), (9.5e-4,), (1.05e-3,), (1.15e-3,)},
    ),
}


def stored_grid(spec, scale):
    """The grid the files hold at ``scale``: the system's (first environment), subsampled by the stride."""
    environment = spec.environment_list()[0]
    system = build_system(
        spec, scale, {name: np.ones(1) * value for name, value in spec.parameters.items()}, environment
    )
    return None if system.grid is None else strided_grid(system.grid, spec.output.spatial_stride)


def test_the_shipped_datasets_are_the_seventeen_benchmarks_and_the_generative_snapshots():
    assert tuple(available_datasets()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_mini_scale_generates_valid_data_with_the_spec_sizes_and_times(name, tmp_path):
    spec = load_spec(name)
    report = generate(spec, "mini", out=tmp_path, progress=False)
    assert validate(report.directory) == []
    totals = spec.split_totals("mini")
    assert sorted(report.files, key=SPLIT_IDS.get) == list(totals)
    time = spec.time_for("mini")
    grid = stored_grid(spec, "mini")
    system_class = get_system(spec.system)
    expected_variables = [variable.name for variable in system_class.state_variables]
    if spec.output.velocity:
        expected_variables += [variable.name for variable in system_class.velocity_variables]
    for split, path in report.files.items():
        with open_dataset(path) as dataset:
            dataset = dataset.load()
        assert dataset.sizes["sample"] == totals[split]
        assert dataset.sizes["time"] == time.frames
        np.testing.assert_array_equal(dataset["time"].values, time.times())
        assert dataset.attrs["physml_dt_save"] == time.save_interval
        assert list(dataset.data_vars) == expected_variables
        assert all(str(dataset[variable].dtype) == spec.dtype for variable in expected_variables)
        if grid is not None:
            assert tuple(dataset[dim].size for dim in grid.dims) == grid.shape
            for dim, values in grid.coordinates().items():
                np.testing.assert_allclose(dataset[dim].values, values, rtol=0, atol=1e-12)
        # Environments fill the splits of their group, each with the scale's size.
        environments = [env.id for env in spec.environments_for(split)]
        assert sorted(set(dataset["environment"].values.tolist())) == sorted(environments)
        # Every sample's seed follows the spec's rule, from its spawn key "split-environment-index".
        for key, seed, environment in zip(
            dataset["seed_spawn_key"].values,
            dataset["seed"].values,
            dataset["environment"].values,
            strict=True,
        ):
            split_id, key_environment, index = map(int, str(key).split("-"))
            assert (split_id, key_environment) == (SPLIT_IDS[split], environment)
            assert sample_seed(spec, split, int(environment), index) == (str(key), int(seed))
        # Mini configurations must be stable: nothing flagged.
        assert (dataset["qc_flag"].values == 0).all()
        for variable in expected_variables:
            assert np.isfinite(dataset[variable].values).all()


@pytest.mark.parametrize("name", SHIPPED)
def test_paper_scale_matches_the_paper(name):
    spec = load_spec(name)
    expected = PAPER[name]
    assert spec.system == expected["system"]
    assert spec.split_totals("paper") == expected["totals"]
    time = spec.time_for("paper")
    assert (time.start, time.frames) == (0.0, expected["frames"])
    assert time.save_interval == pytest.approx(expected["dt"], rel=1e-12)
    assert spec.seeds.rule == expected["rule"]
    grid = stored_grid(spec, "paper")
    if "grid" in expected:
        assert grid.shape == expected["grid"]
        np.testing.assert_allclose(grid.spacing, expected["spacing"], rtol=1e-12)
        np.testing.assert_allclose(grid.lower, expected["lower"], rtol=0, atol=1e-12)
    else:
        assert grid is None
    # Paper scale is the spec's own configuration: no scale-level overrides of grid, time or solver.
    paper = spec.scale("paper")
    assert paper.system_options == {} and paper.time is None and paper.solver is None


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_environments_are_the_papers(name):
    spec = load_spec(name)
    keys, in_domain, adaptation = ENVIRONMENTS[name]

    def values(group):
        return {tuple(spec.environment_parameters(env)[key] for key in keys) for env in group}

    assert values(spec.environments_for("train")) == in_domain
    assert values(spec.environments_for("adaptation_train")) == adaptation
    assert len(spec.environments_for("train")) == len(in_domain)


def test_navier_stokes_environments_differ_by_forcing_and_share_the_spin_up():
    leads = load_spec("leads_ns")
    assert [env.system_options["forcing"] for env in leads.environments] == ["f0", "f1", "f2", "f3"]
    for name, viscosity in (("leads_ns", 1e-3), ("coda_ns", 8e-4)):
        spec = load_spec(name)
        system = build_system(spec, "paper", {"viscosity": np.ones(1) * 1e-3}, spec.environment_list()[0])
        assert (system.warm_up.duration, system.warm_up.forcing, system.warm_up.viscosity) == (
            28.5,
            "f0",
            viscosity,
        )
        assert (system.scheme, spec.solver.internal_dt) == ("fno", 1e-3)


def card_table(name):
    """The card's sizes table: {scale: {column: cell text}} from the table whose header starts "| scale |"."""
    lines = dataset_card(name).splitlines()
    start = next(index for index, line in enumerate(lines) if re.match(r"\|\s*scale\s*\|", line))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.mark.parametrize("name", SHIPPED)
def test_the_card_sizes_table_matches_the_spec(name):
    spec = load_spec(name)
    table = card_table(name)
    assert set(table) == set(spec.scales), f"{name} card lists scales {sorted(table)}, spec {sorted(spec.scales)}"
    for scale in spec.scales:
        row = table[scale]
        sizes, totals = spec.scale(scale).sizes, spec.split_totals(scale)
        for split in SPLIT_IDS:
            if split not in row:
                assert split not in sizes, f"{name} card lacks the {split} column"
                continue
            if split not in sizes:
                assert row[split] in ("-", "—", "0"), f"{name} card: {scale} {split} = {row[split]!r}"
                continue
            numbers = [int(number) for number in re.findall(r"\d+", row[split].replace(",", ""))]
            assert numbers[0] == sizes[split], f"{name} card: {scale} {split} per environment"
            if len(numbers) > 1:  # "per environment (total)"
                assert numbers[1] == totals[split], f"{name} card: {scale} {split} total"
        frames_column = next(column for column in row if "frames" in column)
        assert int(row[frames_column]) == spec.time_for(scale).frames, f"{name} card: {scale} frames"
        if "shards" in row:
            assert int(row["shards"]) == len(plan_shards(spec, scale)), f"{name} card: {scale} shards"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_round_trip_through_to_dict(name):
    spec = load_spec(name)
    again = parse_spec(spec.to_dict(), source=f"{name} (to_dict)")
    assert again.to_dict() == spec.to_dict()
    assert again.environments == spec.environments and again.scales == spec.scales
    assert (again.solver, again.reference, again.output, again.initial_condition) == (
        spec.solver,
        spec.reference,
        spec.output,
        spec.initial_condition,
    )
