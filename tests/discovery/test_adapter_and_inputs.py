"""The xarray -> pysindy adapter, term parsing and comparison, and refusal of bad input."""

import math

import numpy as np
import pysindy as ps
import pytest
import torch
import xarray as xr

from physml.data import build_dataset
from physml.discovery import (
    IdentifiedEquation,
    PDEFind,
    PolynomialFitDerivative,
    SINDyODE,
    add_noise,
    from_dataset,
    parse_term,
    sparse_regression,
    sr3_weight,
    term_name,
)
from physml.discovery._terms import parse_pysindy_name
from simulators.burgers import Burgers1D
from simulators.reaction_diffusion import LambdaOmega

from .conftest import BURGERS_TRUTH, field_dataset

# ---------------------------------------------------------------------------------------------- adapter


def test_simulator_dataset_laid_out_for_pysindy():
    system = Burgers1D(points=32)
    initial = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    times = torch.linspace(0, 0.5, 6, dtype=torch.float64)
    trajectories = system.simulate(initial, times).ys  # (time, sample, 1, x)
    dataset = build_dataset(system, times, trajectories)
    data = from_dataset(dataset)
    assert data.fields.shape == (2, 32, 6, 1)
    assert data.variables == ("u",) and data.spatial_dims == ("x",) and data.periodic == (True,)
    np.testing.assert_array_equal(data.fields[1, :, 3, 0], trajectories[3, 1, 0].numpy())
    assert data.lengths == pytest.approx((16.0,))
    assert data.spatial_grid().shape == (32,)
    assert data.spatiotemporal_grid().shape == (32, 6, 2)
    np.testing.assert_array_equal(data.spatiotemporal_grid()[4, 2], [data.coordinates[0][4], times[2]])


def test_two_dimensional_layout_keeps_dataset_dim_order():
    system = LambdaOmega(grid_size=8, domain=(-10.0, 10.0))
    initial = system.sample_initial_conditions(1, torch.Generator().manual_seed(0))
    dataset = build_dataset(system, [0.0, 0.1], system.simulate(initial, [0.0, 0.1]).ys)
    data = from_dataset(dataset)
    assert data.spatial_dims == ("y", "x") and data.variables == ("u", "v")
    assert data.fields.shape == (1, 8, 8, 2, 2)
    np.testing.assert_array_equal(data.fields[0, :, :, 1, 1], dataset["v"].values[0, 1])
    grid = data.spatial_grid()
    assert grid.shape == (8, 8, 2)
    np.testing.assert_array_equal(grid[3, 5], [dataset["y"].values[3], dataset["x"].values[5]])


def test_noise_level_and_reproducibility(burgers_exact):
    data = from_dataset(burgers_exact)
    first, second = add_noise(data, 0.01, seed=4), add_noise(data, 0.01, seed=4)
    np.testing.assert_array_equal(first.fields, second.fields)
    added = first.fields - data.fields
    assert added.std() == pytest.approx(0.01 * data.fields.std(), rel=0.05)
    assert not np.array_equal(add_noise(data, 0.01, seed=5).fields, first.fields)


# ---------------------------------------------------------------------------------------------- terms


def test_term_spellings_and_pysindy_names_share_one_canonical_form():
    variables, dims = ["u", "v"], ["y", "x"]
    assert parse_term("u u_x", variables, dims) == parse_term("u_x*u", variables, dims)
    assert term_name(parse_term("v*u*u", variables, dims), dims) == "u^2 v"
    assert term_name(parse_term("u_xy", variables, dims), dims) == "u_yx"
    assert parse_term("1", variables, dims) == ()
    library = ps.PDELibrary(
        function_library=ps.PolynomialLibrary(degree=2, include_bias=False),
        derivative_order=2,
        spatial_grid=np.zeros((4, 5, 2)),
        include_bias=True,
    )
    library.fit([ps.AxesArray(np.zeros((4, 5, 3, 2)), {"ax_spatial": [0, 1], "ax_time": 2, "ax_coord": 3})])
    names = [term_name(parse_pysindy_name(name, variables, 2), dims) for name in library.get_feature_names()]
    assert len(set(names)) == len(names) == library.n_output_features_
    assert {"1", "u", "v^2", "u v", "u_y", "v_x", "u_yy", "u_yx", "u v u_xx", "v^2 v_yx"} <= set(names)


def test_comparison_lists_spurious_and_missing_terms():
    terms = tuple(parse_term(text, ["u"], ["x"]) for text in ["u", "u u_x", "u_xx", "u_xxx"])
    equation = IdentifiedEquation(("u",), ("x",), terms, np.array([[0.0, -0.98, 0.0, 0.01]]), "strong")
    comparison = equation.compare(BURGERS_TRUTH)
    metrics = comparison.metrics()
    assert metrics["n_spurious_terms"] == 1 and metrics["n_missing_terms"] == 1
    assert metrics["terms_correct"] == 0
    assert metrics["coef_rel_error_max"] == pytest.approx(1.0)  # the missing u_xx counts as 100 %
    assert metrics["coef_rel_error_mean"] == pytest.approx((0.02 + 1.0) / 2)
    assert comparison.spurious_terms == ["u_t: u_xxx"] and comparison.missing_terms == ["u_t: u_xx"]
    assert "| u_t | u u_x | -1 | -0.98 | 2.00% | correct |" in comparison.to_markdown()
    assert str(equation) == "u_t = -0.9800 u u_x + 0.0100 u_xxx"


# ---------------------------------------------------------------------------------------------- bad input


def test_too_few_time_points_for_the_derivative_is_refused(burgers_exact):
    short = burgers_exact.isel(time=slice(0, 2))
    with pytest.raises(ValueError, match=r"2 time points.*order 2 needs at least 3"):
        PDEFind(library_degree=2, derivative_order=2).fit(short)
    with pytest.raises(ValueError, match=r"4 time points.*windows of 21 points needs at least 21"):
        PDEFind(differentiation="polynomial").fit(burgers_exact.isel(time=slice(0, 4)))
    with pytest.raises(ValueError, match=r"time points; the weak form"):
        PDEFind(form="weak").fit(burgers_exact.isel(time=slice(0, 5)))
    with pytest.raises(ValueError, match=r"at least 7 points per spatial dim"):
        PDEFind(derivative_order=5).fit(burgers_exact.isel(x=slice(0, 6)))


def test_non_uniform_grids_are_refused_where_the_method_needs_uniform_ones(burgers_exact):
    stretched = burgers_exact.assign_coords(x=burgers_exact.x.values**1.1)
    for differentiation in ("spectral", "polynomial"):
        with pytest.raises(ValueError, match="needs a uniform spatial grid"):
            PDEFind(differentiation=differentiation, polynomial_window=9).fit(stretched)
    uneven = burgers_exact.assign_coords(time=burgers_exact.time.values**1.2)
    with pytest.raises(ValueError, match="needs a uniform time grid"):
        PDEFind(differentiation="polynomial", polynomial_window=9).fit(uneven)
    with pytest.raises(ValueError, match="needs a uniform grid"):
        PolynomialFitDerivative(window_length=5, polyorder=2)(np.ones(9), np.arange(9.0) ** 2)
    # Finite differences in pysindy handle non-uniform grids: no refusal there.
    PDEFind(library_degree=2, derivative_order=2).fit(stretched)


def test_spectral_derivatives_need_periodic_data(burgers_exact):
    bounded = burgers_exact.assign_attrs(physml_bc_x="dirichlet")
    with pytest.raises(ValueError, match="differentiation='spectral' needs periodic spatial dims"):
        PDEFind(differentiation="spectral").fit(bounded)


@pytest.mark.parametrize("level", [-0.01, 1.5, math.nan, math.inf])
def test_noise_levels_outside_the_unit_interval_are_refused(burgers_exact, level):
    with pytest.raises(ValueError, match=r"level must be a noise fraction .* in \[0, 1\], got"):
        add_noise(from_dataset(burgers_exact), level)


def test_thresholds_and_options_outside_their_domain_are_refused():
    with pytest.raises(ValueError, match=r"thresholds must be a finite number in \[0, inf\).*got -0.1"):
        PDEFind(thresholds=[0.1, -0.1])
    with pytest.raises(ValueError, match=r"thresholds must be a finite number in \[0, inf\).*got nan"):
        PDEFind(thresholds=math.nan)
    with pytest.raises(ValueError, match=r"relax_coefficient must be a finite number in \(0, inf\), got 0"):
        PDEFind(optimizer="sr3", relax_coefficient=0.0)
    with pytest.raises(ValueError, match=r"threshold must be a finite number in \[0, inf\)"):
        sr3_weight(-1.0, 1.0)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 0.5\], got 0.9"):
        PDEFind(validation_fraction=0.9)
    with pytest.raises(ValueError, match=r"l0_penalty must be a finite number in \[0, inf\)"):
        SINDyODE(l0_penalty=-1.0)
    with pytest.raises(ValueError, match=r"optimizer must be one of \('stlsq', 'sr3'\), got 'lasso'"):
        PDEFind(optimizer="lasso")
    with pytest.raises(ValueError, match=r"form must be one of \('strong', 'weak'\), got 'integral'"):
        PDEFind(form="integral")
    with pytest.raises(ValueError, match=r"derivative_order must be an integer \[1, 6\], got 0"):
        PDEFind(derivative_order=0)
    with pytest.raises(ValueError, match=r"window_length must be an odd integer >= 3, got 20"):
        PDEFind(differentiation="polynomial", polynomial_window=20)
    with pytest.raises(ValueError, match="at least twice as many rows as library terms"):
        sparse_regression(np.ones((5, 4)), np.ones(5), ["y"])


def test_dataset_shape_errors_name_the_problem(burgers_exact):
    with pytest.raises(ValueError, match=r"variables \['w'\] are not data variables"):
        from_dataset(burgers_exact, ["w"])
    with pytest.raises(ValueError, match="must have a 'time' dim"):
        from_dataset(burgers_exact.isel(time=0))
    broken = burgers_exact.copy(deep=True)
    broken["u"][0, 3, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite values"):
        from_dataset(broken)
    with pytest.raises(ValueError, match="PDEFind needs a dataset with spatial dims"):
        ode = xr.Dataset({"x": (("sample", "time"), np.ones((1, 20)))}, coords={"time": np.arange(20.0)})
        PDEFind().fit(ode)
    with pytest.raises(ValueError, match="SINDyODE needs ODE data"):
        SINDyODE().fit(burgers_exact)
    with pytest.raises(ValueError, match=r"truth names field 'w'"):
        PDEFind(library_degree=2, derivative_order=2, thresholds=0.01).fit(burgers_exact).equation_.compare(
            {"w": {"w_x": 1.0}}
        )


def test_simulate_refuses_wrong_state_shapes(burgers_exact):
    model = PDEFind(library_degree=2, derivative_order=2, thresholds=0.01).fit(burgers_exact)
    with pytest.raises(ValueError, match=r"initial_state must have shape \(batch, n_variables, x\)"):
        model.simulate(torch.zeros(64, dtype=torch.float64), [0.0, 0.1])
    dirichlet = field_dataset(
        {"u": burgers_exact.u.values[0]},
        burgers_exact.time.values,
        {"x": burgers_exact.x.values},
        periodic=False,
    )
    bounded = PDEFind(library_degree=2, derivative_order=2, thresholds=0.01).fit(dirichlet)
    with pytest.raises(ValueError, match="method 'etdrk4' needs a periodic grid"):
        bounded.simulate(torch.zeros(1, 1, 64, dtype=torch.float64), [0.0, 0.1], method="etdrk4")


def test_weak_subdomains_must_hold_grid_points(burgers_exact):
    with pytest.raises(ValueError, match=r"weak_half_width \[0\.05, 0\.2\] must exceed the grid spacing"):
        PDEFind(form="weak", weak_half_width=[0.05, 0.2]).fit(burgers_exact)
    with pytest.raises(ValueError, match="weak_tiles = 8 makes tiles of extent"):
        PDEFind(form="weak", weak_half_width=[0.6, 0.2], weak_tiles=8).fit(burgers_exact)
    with pytest.raises(ValueError, match="weak_half_width must be positive and below half the extent"):
        PDEFind(form="weak", weak_half_width=[4.0, 0.2]).fit(burgers_exact)
