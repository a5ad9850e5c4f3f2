"""Exact recovery on noiseless data with known coefficients: strong and weak form, STLSQ and SR3, ODEs."""

import math

import numpy as np
import pysindy as ps
import pytest
import torch
import xarray as xr

from physml.discovery import PDEFind, SINDyODE, add_noise, from_dataset, sparse_regression, sr3_weight
from physml.solvers import solve_ode

from .conftest import BURGERS_TRUTH, REACTION_DIFFUSION_TRUTH, cole_hopf, field_dataset


def test_strong_spectral_recovers_burgers_to_rounding(burgers_exact):
    model = PDEFind(
        library_degree=3, derivative_order=3, differentiation="spectral", finite_difference_order=4
    ).fit(burgers_exact)
    metrics = model.equation_.compare(BURGERS_TRUTH).metrics()
    assert metrics["terms_correct"] == 1
    # Spectral space derivatives are exact here; the 4th-order time differences leave ~1e-7.
    assert metrics["coef_rel_error_max"] < 1e-5
    assert model.equation_.equations(precision=4) == ["u_t = 0.1000 u_xx - 1.0000 u u_x"]


def test_strong_finite_differences_recover_burgers(burgers_exact):
    model = PDEFind(library_degree=3, derivative_order=3, finite_difference_order=4).fit(burgers_exact)
    metrics = model.equation_.compare(BURGERS_TRUTH).metrics()
    assert metrics["terms_correct"] == 1
    assert metrics["coef_rel_error_max"] < 5e-3  # fourth-order differences on 64 points


def test_sr3_threshold_is_converted_so_the_model_is_not_empty(burgers_exact):
    threshold = 0.1
    model = PDEFind(
        library_degree=3,
        derivative_order=3,
        differentiation="spectral",
        finite_difference_order=4,
        optimizer="sr3",
        thresholds=threshold,
    ).fit(burgers_exact)
    metrics = model.equation_.compare(BURGERS_TRUTH).metrics()
    assert metrics["terms_correct"] == 1 and metrics["coef_rel_error_max"] < 1e-5
    assert sr3_weight(threshold, 1.0) == pytest.approx(threshold**2 / 2)
    # The pitfall physml removes: pysindy 2.x reads the same number as λ, i.e. a hard threshold of
    # sqrt(2 λ ν) ≈ 0.45 instead of 0.1, which drops a true term.
    features, targets, _ = model.strong_system(from_dataset(burgers_exact))
    normalised = features / np.linalg.norm(features, axis=0)
    naive = ps.SR3(reg_weight_lam=threshold, regularizer="L0", relax_coeff_nu=1.0).fit(
        normalised, targets / np.linalg.norm(targets)
    )
    assert np.count_nonzero(naive.coef_) < 2


def test_two_field_reaction_diffusion_recovered(reaction_diffusion_exact):
    model = PDEFind(
        library_degree=2, derivative_order=2, differentiation="spectral", finite_difference_order=4
    ).fit(reaction_diffusion_exact)
    metrics = model.equation_.compare(REACTION_DIFFUSION_TRUTH).metrics()
    assert metrics["terms_correct"] == 1
    assert metrics["coef_rel_error_max"] < 1e-5
    assert set(model.equation_.as_dict()["u"]) == {"u", "v", "u_xx", "u_yy"}


def test_weak_form_recovers_burgers_and_converges_with_the_grid():
    errors = {}
    for points, frames in [(64, 81), (128, 161)]:
        x = np.linspace(0, 2 * math.pi, points, endpoint=False)
        t = np.linspace(0, 2, frames)
        u = cole_hopf(x, t, 0.1, [(1, 1.0, 0.0), (2, 0.8, 1.0), (3, 0.5, 2.0)])
        model = PDEFind(form="weak", library_degree=2, derivative_order=2, weak_subdomains=200).fit(
            field_dataset({"u": u}, t, {"x": x})
        )
        metrics = model.equation_.compare(BURGERS_TRUTH).metrics()
        assert metrics["terms_correct"] == 1
        errors[points] = metrics["coef_rel_error_max"]
    # Piecewise-linear quadrature of the weak integrals: second order in the grid spacing.
    assert errors[128] < 1e-2
    assert errors[128] < errors[64] / 2


def test_weak_form_two_fields_with_tiles(reaction_diffusion_exact):
    model = PDEFind(
        form="weak",
        library_degree=2,
        derivative_order=2,
        weak_subdomains=200,
        weak_half_width=[0.9, 0.9, 0.2],
        weak_tiles=2,
    ).fit(reaction_diffusion_exact)
    metrics = model.equation_.compare(REACTION_DIFFUSION_TRUTH).metrics()
    assert metrics["terms_correct"] == 1
    assert metrics["coef_rel_error_max"] < 5e-3
    assert model.n_rows_ == 200  # 50 subdomains in each of the 2 x 2 tiles


def test_ensemble_gives_spread_and_inclusion(burgers_exact):
    data = add_noise(from_dataset(burgers_exact), 0.002, seed=3)
    model = PDEFind(
        form="weak", library_degree=2, derivative_order=2, weak_subdomains=200, ensemble_models=12, seed=1
    ).fit(data)
    equation = model.equation_
    assert model.regression_.ensemble.shape == (12, 1, len(equation.terms))
    active = np.flatnonzero(equation.coefficients[0])
    assert np.all(equation.inclusion_probability[0, active] > 0.5)
    assert np.all(equation.coefficient_std[0, active] > 0)  # noisy data: the bootstrap spreads
    assert np.all(equation.coefficient_std[0, active] < 0.05 * np.abs(equation.coefficients[0, active]))
    again = PDEFind(
        form="weak", library_degree=2, derivative_order=2, weak_subdomains=200, ensemble_models=12, seed=1
    ).fit(data)
    np.testing.assert_array_equal(again.regression_.ensemble, model.regression_.ensemble)  # seeded


def test_pruning_removes_terms_a_coarse_sweep_keeps():
    generator = np.random.default_rng(0)
    features = generator.standard_normal((2000, 5))
    truth = np.array([1.0, 0.0, 0.0, 0.05, 0.0])
    targets = features @ truth + 1e-3 * generator.standard_normal(2000)
    # Threshold 0 keeps every term (least squares on noisy data), 0.5 drops the small true one: the sweep
    # picks 0, and only the pruning step can reach the true support.
    unpruned = sparse_regression(features, targets, ["y"], thresholds=[0.0, 0.5], prune=False)
    assert np.count_nonzero(unpruned.coefficients) == 5
    result = sparse_regression(features, targets, ["y"], thresholds=[0.0, 0.5])
    assert np.flatnonzero(result.coefficients[0]).tolist() == [0, 3]
    np.testing.assert_allclose(result.coefficients[0], truth, atol=1e-4)
    assert sorted(result.sweeps[0].pruned) == [1, 2, 4]


def test_sindy_ode_recovers_a_damped_oscillator_and_simulates_it():
    def rates(t, y):  # x' = v, v' = -x - 0.2 v - 0.3 x v
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, -x - 0.2 * v - 0.3 * x * v], dim=-1)

    times = torch.linspace(0, 10, 401, dtype=torch.float64)
    initial = torch.tensor([[1.0, 0.0], [0.5, -1.0]], dtype=torch.float64)
    states = solve_ode(rates, initial, times, method="dopri8", rtol=1e-12, atol=1e-12).ys.numpy()
    dataset = xr.Dataset(
        {"x": (("sample", "time"), states[:, :, 0].T), "v": (("sample", "time"), states[:, :, 1].T)},
        coords={"time": times.numpy()},
    )
    model = SINDyODE(library_degree=2, finite_difference_order=6).fit(dataset)
    truth = {"x": {"v": 1.0}, "v": {"x": -1.0, "v": -0.2, "x v": -0.3}}
    metrics = model.equation_.compare(truth).metrics()
    assert metrics["terms_correct"] == 1 and metrics["coef_rel_error_max"] < 1e-5
    simulated = model.simulate(initial, times, method="dopri5", rtol=1e-10, atol=1e-10).ys.numpy()
    assert np.abs(simulated - states).max() < 1e-4
    assert model.score(dataset) > 0.999999


def test_forecast_of_identified_burgers_matches_the_data(burgers_exact):
    model = PDEFind(
        library_degree=3, derivative_order=3, differentiation="spectral", finite_difference_order=4
    ).fit(burgers_exact)
    data = from_dataset(burgers_exact)
    # ETDRK4 with the 2/3-rule truncation: the exact data keep ~1e-6 of their norm in the truncated modes.
    assert model.equation_.forecast_error(data) < 1e-5
    assert model.score(burgers_exact) > 0.999999
    # The same equation through an adaptive physml solver on the right-hand side (no truncation).
    assert model.equation_.forecast_error(data, frames=21, method="dopri5", rtol=1e-10, atol=1e-12) < 1e-7
