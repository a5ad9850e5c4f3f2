"""ETDRK4 (physml.solvers.exponential): φ-function weights, order, stiffness, gradients and input checks."""

import math

import numpy as np
import pytest
import torch

from physml.solvers.exponential import EXPONENTIAL_METHODS, etdrk4_weights, solve_etdrk4

DTYPE = torch.float64


def closed_form_weights(z, h):
    """Cox & Matthews' closed forms; accurate when |z| is not small (no cancellation)."""
    e = torch.exp(z)
    return {
        "half_step_weight": h * (torch.exp(z / 2) - 1) / z,
        "first_stage_weight": h * (-4 - z + e * (4 - 3 * z + z**2)) / z**3,
        "middle_stages_weight": h * (2 + z + e * (z - 2)) / z**3,
        "last_stage_weight": h * (-4 - 3 * z - z**2 + e * (4 - z)) / z**3,
    }


def test_weights_match_the_closed_forms_away_from_zero_real_and_complex():
    h = 0.5
    real = torch.tensor([-400.0, -20.0, -4.0, 3.0, 8.0], dtype=DTYPE)
    weights = etdrk4_weights(real, h)
    for name, expected in closed_form_weights(h * real, h).items():
        assert not getattr(weights, name).is_complex()
        torch.testing.assert_close(getattr(weights, name), expected, rtol=1e-12, atol=1e-15)
    # A dispersive (imaginary) and a damped oscillatory symbol: the complex weights need the full circle.
    complex_symbol = torch.tensor([50j, -6.0 + 9.0j, -3.0j], dtype=torch.complex128)
    weights = etdrk4_weights(complex_symbol, h)
    for name, expected in closed_form_weights(h * complex_symbol, h).items():
        torch.testing.assert_close(getattr(weights, name), expected, rtol=1e-12, atol=1e-15)


def test_weights_have_the_taylor_limits_at_zero():
    # The closed forms are 0/0 at z = 0; the contour means give φ's limits h/2 and h/6 to rounding.
    h = 0.3
    weights = etdrk4_weights(torch.zeros(1, dtype=DTYPE), h)
    assert float(weights.full_step_exponential) == 1.0
    assert abs(float(weights.half_step_weight) - h / 2) < 1e-15
    for name in ("first_stage_weight", "middle_stages_weight", "last_stage_weight"):
        assert abs(float(getattr(weights, name)) - h / 6) < 1e-15


def bernoulli_exact(linear, coefficient, y0, t):
    """y' = L y + c y² has y(t) = 1 / ((1/y0 + c/L) e^{-Lt} - c/L)."""
    return 1.0 / ((1.0 / y0 + coefficient / linear) * torch.exp(-linear * t) - coefficient / linear)


def test_empirical_order_matches_the_declared_order():
    linear = torch.tensor([-1.0, -50.0, 0.5], dtype=DTYPE)
    y0 = torch.tensor([0.8, 0.5, 0.3], dtype=DTYPE)
    final = 2.0
    exact = bernoulli_exact(linear, -1.0, y0, final)
    steps = [10, 20, 40, 80]
    solutions = [solve_etdrk4(linear, lambda t, y: -y * y, y0, [0.0, final], step_size=final / n)
                 for n in steps]
    errors = [float((solution.ys[-1] - exact).abs().max()) for solution in solutions]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - EXPONENTIAL_METHODS["etdrk4"]["order"]) < 0.3, (errors, slope)


def test_linear_part_with_constant_forcing_is_exact_at_any_step():
    # y' = L y + 1 is integrated exactly by ETDRK4 (its weights sum to φ1), even for stiff L and large h.
    linear = torch.tensor([-1e4, -1.0, 2.0j, -0.5 + 30j], dtype=torch.complex128)
    y0 = torch.ones(4, dtype=torch.complex128)
    solution = solve_etdrk4(linear, lambda t, y: torch.ones_like(y), y0, [0.0, 0.7, 1.5], step_size=0.5)
    for index, t in enumerate([0.0, 0.7, 1.5]):
        exact = (y0 + 1 / linear) * torch.exp(linear * t) - 1 / linear
        torch.testing.assert_close(solution.ys[index], exact, rtol=1e-12, atol=1e-13)


def test_stiff_problem_is_stable_with_steps_far_beyond_explicit_limits():
    # h |L| = 1000: explicit RK4 would blow up; ETDRK4 stays accurate.
    linear = torch.tensor([-1e4, -1.0], dtype=DTYPE)
    y0 = torch.tensor([0.5, 0.5], dtype=DTYPE)
    solution = solve_etdrk4(linear, lambda t, y: -y * y, y0, [0.0, 1.0], step_size=0.1)
    exact = bernoulli_exact(linear, -1.0, y0, 1.0)
    assert torch.isfinite(solution.ys).all()
    assert float((solution.ys[-1] - exact).abs().max()) < 1e-5


def test_non_autonomous_nonlinearity_receives_stage_times():
    # y' = -y + cos(t): N depends on t only, so the ETDRK4 quadrature of the forcing must be 4th order.
    linear = torch.tensor([-1.0], dtype=DTYPE)
    y0 = torch.tensor([0.0], dtype=DTYPE)
    final = 3.0
    exact = 0.5 * (math.cos(final) + math.sin(final) - math.exp(-final))
    errors = [
        abs(float(solve_etdrk4(linear, lambda t, y: torch.full_like(y, math.cos(t)), y0, [0.0, final],
                               step_size=final / n).ys[-1, 0]) - exact)
        for n in (8, 16, 32)
    ]
    assert errors[-1] < 1e-6
    assert math.log2(errors[0] / errors[1]) > 3.5 and math.log2(errors[1] / errors[2]) > 3.5


def test_outputs_steps_and_statistics():
    linear = torch.tensor([-2.0], dtype=DTYPE)
    solution = solve_etdrk4(linear, lambda t, y: 0 * y, torch.ones(1, dtype=DTYPE), [0.0, 0.25, 1.0],
                            step_size=0.1)
    # [0, 0.25] takes 3 steps, [0.25, 1] takes 8; every output is hit exactly.
    assert solution.stats == {"nfe": 44, "n_steps": 11, "n_accepted": 11, "n_rejected": 0}
    assert solution.status == "success" and solution.ys.shape == (3, 1)
    torch.testing.assert_close(solution.ys[:, 0], torch.exp(-2 * solution.ts), rtol=1e-14, atol=0)


def test_gradient_through_the_linear_symbol_matches_finite_differences():
    def final_state(rate):
        linear = -rate * torch.tensor([1.0, 4.0], dtype=DTYPE)
        y0 = torch.tensor([1.0, 0.5], dtype=DTYPE)
        return solve_etdrk4(linear, lambda t, y: -y * y, y0, [0.0, 1.0], step_size=0.1).ys[-1].sum()

    rate = torch.tensor(0.7, dtype=DTYPE, requires_grad=True)
    final_state(rate).backward()
    step = 1e-6
    difference = (final_state(torch.tensor(0.7 + step, dtype=DTYPE))
                  - final_state(torch.tensor(0.7 - step, dtype=DTYPE))) / (2 * step)
    assert abs(float(rate.grad) - float(difference)) < 1e-8 * abs(float(difference))


def test_bad_inputs_name_the_argument():
    linear = torch.tensor([-1.0], dtype=DTYPE)
    y0 = torch.ones(1, dtype=DTYPE)
    nonlinear = lambda t, y: y  # noqa: E731
    with pytest.raises(ValueError, match="step_size must be a positive"):
        solve_etdrk4(linear, nonlinear, y0, [0.0, 1.0], step_size=-0.1)
    with pytest.raises(ValueError, match="t must be strictly increasing"):
        solve_etdrk4(linear, nonlinear, y0, [1.0, 0.0], step_size=0.1)
    with pytest.raises(ValueError, match=r"linear of shape \(3,\) does not broadcast against y0"):
        solve_etdrk4(torch.ones(3, dtype=DTYPE), nonlinear, torch.ones(2), [0.0, 1.0], step_size=0.1)
    with pytest.raises(TypeError, match="y0 must be complex"):
        solve_etdrk4(linear * 1j, nonlinear, y0, [0.0, 1.0], step_size=0.1)
    with pytest.raises(ValueError, match="contour_points must be a positive integer"):
        etdrk4_weights(linear, 0.1, contour_points=0)
    with pytest.raises(TypeError, match="linear must be a torch.Tensor"):
        etdrk4_weights([1.0], 0.1)
