"""Convergence orders and accuracy of every ODE method against exact and SciPy solutions."""

import math

import numpy as np
import pytest
import torch

import physml
from physml.solvers._tableaux import TABLEAUX, check_tableau_consistency

from .problems import (
    linear_exact,
    linear_field,
    lotka_volterra,
    robertson,
    scipy_solution,
    van_der_pol,
)

FIXED = [name for name, spec in physml.METHODS.items() if not spec["adaptive"]]
ADAPTIVE = [name for name, spec in physml.METHODS.items() if spec["adaptive"]]
EXPLICIT_ADAPTIVE = [name for name in ADAPTIVE if not physml.METHODS[name]["implicit"]]


@pytest.mark.parametrize("name", sorted(TABLEAUX))
def test_tableau_is_consistent(name):
    assert check_tableau_consistency(TABLEAUX[name]) == []


def test_every_method_declares_its_order():
    expected = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4, "bosh3": 3, "dopri5": 5, "tsit5": 5,
                "dopri8": 8, "kvaerno3": 3}
    assert {name: spec["order"] for name, spec in physml.METHODS.items()} == expected


def _fitted_order(method, step_sizes, end=1.0, constant_adaptive=False):
    y0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    times = torch.tensor([0.0, end], dtype=torch.float64)
    exact = linear_exact(y0, times)[-1]
    errors = []
    for step in step_sizes:
        if constant_adaptive:
            # Huge tolerances and unit factors turn an adaptive method into a constant-step one.
            options = dict(first_step=step, ifactor=1.0, dfactor=1.0, safety=1.0)
            if physml.METHODS[method]["implicit"]:
                options.update(newton_tolerance=1e-12, newton_max_iterations=50)
            solution = physml.solve_ode(linear_field, y0, times, method=method, rtol=1e6, atol=1e6, options=options)
            assert solution.stats["n_steps"] == math.ceil(end / step - 1e-9)
        else:
            solution = physml.solve_ode(linear_field, y0, times, method=method, options=dict(step_size=step))
        errors.append(float((solution.ys[-1] - exact).abs().max()))
    slope = np.polyfit(np.log(step_sizes), np.log(errors), 1)[0]
    return slope, errors


@pytest.mark.parametrize("method", FIXED)
def test_fixed_step_order(method):
    slope, errors = _fitted_order(method, [0.2, 0.1, 0.05, 0.025, 0.0125])
    assert abs(slope - physml.METHODS[method]["order"]) <= 0.3, (slope, errors)


@pytest.mark.parametrize(
    "method, step_sizes",
    [("bosh3", [0.2, 0.1, 0.05, 0.025]), ("dopri5", [0.5, 0.25, 0.125, 0.0625]),
     ("tsit5", [0.2, 0.1, 0.05, 0.025]), ("dopri8", [1.0, 0.5, 0.25]),
     ("kvaerno3", [0.2, 0.1, 0.05, 0.025])],
)
def test_adaptive_method_order_at_constant_step(method, step_sizes):
    slope, errors = _fitted_order(method, step_sizes, end=2.0, constant_adaptive=True)
    assert abs(slope - physml.METHODS[method]["order"]) <= 0.3, (slope, errors)


PROBLEMS = {
    "linear": (linear_field, torch.tensor([1.0, 0.5]), torch.linspace(0, 10, 21)),
    "van_der_pol": (van_der_pol(2.0), torch.tensor([2.0, 0.0]), torch.linspace(0, 8, 17)),
    "lotka_volterra": (lotka_volterra, torch.tensor([10.0, 5.0]), torch.linspace(0, 5, 11)),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", EXPLICIT_ADAPTIVE)
@pytest.mark.parametrize("rtol", [1e-5, 1e-8])
def test_adaptive_against_scipy_dop853(problem, method, rtol):
    field, y0, times = PROBLEMS[problem]
    y0, times = y0.double(), times.double()
    reference = scipy_solution(field, y0, times)
    solution = physml.solve_ode(field, y0, times, method=method, rtol=rtol, atol=rtol * 1e-2)
    assert solution.success
    # The tolerance bounds the local error per step; the global error of a locally controlled solve
    # accumulates over steps.  Measured: 0.7-52x for physml, 3-30x for SciPy RK45, up to 12 663x for
    # torchdiffeq 0.2.5 dopri8 on these problems.
    error = (solution.ys - reference).abs() / (rtol * 1e-2 + rtol * reference.abs())
    assert float(error.max()) <= 60.0, float(error.max())


def test_dense_output_matches_stepping_to_each_time():
    field, y0, times = PROBLEMS["van_der_pol"]
    y0, fine = y0.double(), torch.linspace(0, 8, 161, dtype=torch.float64)
    reference = scipy_solution(field, y0, fine)
    for method in EXPLICIT_ADAPTIVE:
        dense = physml.solve_ode(field, y0, fine, method=method, rtol=1e-9, atol=1e-11)
        coarse = physml.solve_ode(field, y0, fine[[0, -1]], method=method, rtol=1e-9, atol=1e-11)
        # Many output times must not change the step sequence (dense output, not extra steps).
        assert dense.stats["n_steps"] == coarse.stats["n_steps"], method
        assert float((dense.ys - reference).abs().max()) < 1e-6, method


@pytest.mark.parametrize("rtol", [1e-4, 1e-6])
def test_stiff_method_on_robertson_against_radau(rtol):
    y0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    times = torch.tensor([0.0, 0.04, 0.4, 4.0, 40.0, 400.0, 4000.0], dtype=torch.float64)
    # DOP853 needs about a million steps on Robertson (stiff), so SciPy's Radau is the reference.
    reference = scipy_solution(robertson, y0, times, method="Radau")
    solution = physml.solve_ode(robertson, y0, times, method="kvaerno3", rtol=rtol, atol=1e-10)
    assert solution.success
    assert solution.stats["n_steps"] < 2000
    error = (solution.ys - reference).abs() / (1e-10 + rtol * reference.abs())
    assert float(error.max()) <= 20.0, float(error.max())
    # Mass is conserved by the exact flow and, to roundoff, by any Runge–Kutta method.
    assert torch.allclose(solution.ys.sum(-1), torch.ones(len(times), dtype=torch.float64), atol=1e-10)


def test_explicit_method_struggles_where_stiff_method_does_not():
    y0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    times = torch.tensor([0.0, 100.0], dtype=torch.float64)
    explicit = physml.solve_ode(robertson, y0, times, method="dopri5", rtol=1e-4, atol=1e-8, max_steps=2000)
    implicit = physml.solve_ode(robertson, y0, times, method="kvaerno3", rtol=1e-4, atol=1e-8, max_steps=2000)
    assert explicit.status == "max_steps_reached"
    assert implicit.success and implicit.stats["n_steps"] < 200


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "dopri8", "rk4"])
def test_matches_torchdiffeq(method):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    field, y0, times = PROBLEMS["lotka_volterra"]
    y0, times = y0.double(), times.double()
    options = dict(step_size=0.01) if method == "rk4" else None
    ours = physml.odeint(field, y0, times, method=method, rtol=1e-9, atol=1e-11, options=options)
    theirs = torchdiffeq.odeint(field, y0, times, method=method, rtol=1e-9, atol=1e-11, options=options)
    assert ours.shape == theirs.shape
    # torchdiffeq's bosh3 ends up ~1000x its tolerance from the exact solution (measured), hence 1e-4.
    agreement = 1e-4 if method == "bosh3" else 1e-6
    assert torch.allclose(ours, theirs, rtol=agreement, atol=agreement)
