"""Lotka–Volterra and the glycolytic oscillator: accuracy against SciPy, invariants, gradients, ICs."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import physml
from physml.systems import get_system
from simulators.glycolytic import GlycolyticOscillator
from simulators.lotka_volterra import LotkaVolterra

FLOAT = torch.float64


def _lotka_volterra_numpy(t, y, alpha, beta, gamma, delta):
    x, p = y
    return [alpha * x - beta * x * p, delta * x * p - gamma * p]


def _glycolytic_numpy(t, s, J0, k1, k2, k3, k4, k5, k6, K1, q, N, A, kappa, psi, k):
    """The CoDA equations (reference §3.2), written independently of the module under test."""
    s1, s2, s3, s4, s5, s6, s7 = s
    r = k1 * s1 * s6 / (1 + (s6 / K1) ** q)
    return [
        J0 - r,
        2 * r - k2 * s2 * (N - s5) - k6 * s2 * s5,
        k2 * s2 * (N - s5) - k3 * s3 * (A - s6),
        k3 * s3 * (A - s6) - k4 * s4 * s5 - kappa * (s4 - s7),
        k2 * s2 * (N - s5) - k4 * s4 * s5 - k6 * s2 * s5,
        -2 * r + 2 * k3 * s3 * (A - s6) - k5 * s6,
        psi * kappa * (s4 - s7) - k * s7,
    ]


def _scipy_reference(rhs, system, y0, times, rtol=1e-12, atol=1e-12):
    """Integrate each batch member separately with SciPy's DOP853 and the NumPy right-hand side."""
    results = []
    for index in range(y0.shape[0]):
        values = [(value[index] if value.ndim == 1 else value).item()
                  for value in system.parameter_values().values()]
        solution = solve_ivp(rhs, (float(times[0]), float(times[-1])), y0[index].numpy(), method="DOP853",
                             t_eval=times.numpy(), rtol=rtol, atol=atol, args=tuple(values))
        assert solution.success
        results.append(solution.y.T)
    return np.stack(results, axis=1)  # (time, batch, state)


def test_registry_names_the_classes():
    assert get_system("lotka_volterra") is LotkaVolterra and LotkaVolterra.name == "lotka_volterra"
    assert get_system("glycolytic_oscillator") is GlycolyticOscillator


def test_lotka_volterra_matches_scipy_with_batched_environments():
    environments = LotkaVolterra.LEADS_ENVIRONMENTS[:2] + LotkaVolterra.CODA_ENVIRONMENTS[-1:]
    values = {name: [environment[name] for environment in environments] for name in environments[0]}
    system = LotkaVolterra(**values)
    assert system.batch_size() == 3
    y0 = system.sample_initial_conditions(3, torch.Generator().manual_seed(0))
    times = torch.linspace(0.0, 10.0, 21, dtype=FLOAT)
    ours = physml.solve_ode(system, y0, times, method="dopri8", rtol=1e-12, atol=1e-12)
    assert ours.status == "success"
    reference = _scipy_reference(_lotka_volterra_numpy, system, y0, times)
    # Both solvers run at 1e-12; global errors of ~1e-10 remain, far below the O(1) populations.
    np.testing.assert_allclose(ours.ys.numpy(), reference, rtol=1e-9, atol=1e-10)
    # The environments really differ (otherwise batching would be untested).
    assert (ours.ys[-1, 0] - ours.ys[-1, 1]).abs().max() > 0.1


def test_glycolytic_oscillator_matches_scipy_with_batched_k1_and_K1():
    system = GlycolyticOscillator(k1=[100.0, 90.0, 80.0], K1=[1.0, 0.75, 0.5])
    y0 = system.sample_initial_conditions(3, torch.Generator().manual_seed(1))
    times = torch.linspace(0.0, 1.0, 21, dtype=FLOAT)
    ours = physml.solve_ode(system, y0, times, method="dopri8", rtol=1e-12, atol=1e-12)
    assert ours.status == "success"
    reference = _scipy_reference(_glycolytic_numpy, system, y0, times)
    np.testing.assert_allclose(ours.ys.numpy(), reference, rtol=1e-9, atol=1e-10)
    assert (ours.ys[-1] - ours.ys[0]).abs().max() > 0.1  # the state moved


def test_glycolytic_right_hand_side_at_a_hand_computed_state():
    system = GlycolyticOscillator()
    state = torch.tensor([[1.0, 0.5, 0.1, 0.2, 0.1, 1.0, 0.05]], dtype=FLOAT)
    s1, s2, s3, s4, s5, s6, s7 = state[0].tolist()
    uptake = 100 * s1 * s6 / (1 + (s6 / 1.0) ** 4)
    expected = [
        2.5 - uptake,
        2 * uptake - 6 * s2 * (1 - s5) - 12 * s2 * s5,
        6 * s2 * (1 - s5) - 16 * s3 * (4 - s6),
        16 * s3 * (4 - s6) - 100 * s4 * s5 - 13 * (s4 - s7),
        6 * s2 * (1 - s5) - 100 * s4 * s5 - 12 * s2 * s5,
        -2 * uptake + 2 * 16 * s3 * (4 - s6) - 1.28 * s6,
        0.1 * 13 * (s4 - s7) - 1.8 * s7,
    ]
    np.testing.assert_allclose(system(torch.tensor(0.0), state)[0].numpy(), expected, rtol=1e-14)


def test_lotka_volterra_first_integral_is_conserved():
    system = LotkaVolterra(alpha=[0.5, 1.0], gamma=[0.5, 0.25], beta=0.75)
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(3))
    times = torch.linspace(0.0, 20.0, 41, dtype=FLOAT)
    solution = physml.solve_ode(system, y0, times, method="dopri8", rtol=1e-12, atol=1e-12)
    invariant = system.first_integral(solution.ys)  # (time, batch)
    drift = ((invariant - invariant[0]) / invariant[0]).abs().max()
    assert drift < 1e-8
    # The orbit is far from the fixed point, so conservation is not trivially satisfied.
    assert (solution.ys[:, :, 0].amax(0) - solution.ys[:, :, 0].amin(0)).min() > 0.3


@pytest.mark.parametrize("system_class, parameter, y0", [
    (LotkaVolterra, "alpha", [[1.2, 1.7]]),
    (GlycolyticOscillator, "k1", [[1.0, 0.5, 0.1, 0.2, 0.1, 1.0, 0.05]]),
])
def test_gradient_through_a_short_solve_matches_finite_differences(system_class, parameter, y0):
    y0 = torch.tensor(y0, dtype=FLOAT)
    times = torch.tensor([0.0, 0.2], dtype=FLOAT)
    options = dict(step_size=0.01)

    def loss(value, learnable):
        system = system_class(**{parameter: value}, learnable=[parameter] if learnable else [])
        solution = physml.solve_ode(system, y0, times, method="rk4", options=options)
        return solution.ys[-1].pow(2).sum(), system

    base = {spec.name: spec.default for spec in system_class.parameter_specs}[parameter]
    value, system = loss(base, learnable=True)
    value.backward()
    gradient = getattr(system, parameter).grad
    assert gradient is not None and torch.isfinite(gradient)
    step = 1e-6 * base
    with torch.no_grad():
        finite_difference = (loss(base + step, False)[0] - loss(base - step, False)[0]) / (2 * step)
    # Central differences: truncation O(step²) plus round-off ~1e-16/1e-6; 1e-6 relative is ample.
    assert abs(gradient.item() - finite_difference.item()) <= 1e-6 * abs(finite_difference.item())
    assert abs(finite_difference.item()) > 1e-6


@pytest.mark.parametrize("system", [LotkaVolterra(), GlycolyticOscillator()], ids=["lv", "glycolytic"])
def test_right_hand_side_follows_the_input_dtype(system):
    y0 = system.sample_initial_conditions(4, torch.Generator().manual_seed(0))
    assert y0.dtype == FLOAT and y0.shape == (4, len(system.state_variables))
    rhs32 = system(torch.tensor(0.0), y0.float())
    assert rhs32.dtype == torch.float32
    torch.testing.assert_close(rhs32.double(), system(torch.tensor(0.0), y0), rtol=1e-5, atol=1e-4)


def test_initial_conditions_depend_only_on_the_generator():
    for system in (LotkaVolterra(), GlycolyticOscillator()):
        first = system.sample_initial_conditions(6, torch.Generator().manual_seed(11))
        torch.manual_seed(0)  # the global generator must not matter
        torch.rand(3)
        second = system.sample_initial_conditions(6, torch.Generator().manual_seed(11))
        other = system.sample_initial_conditions(6, torch.Generator().manual_seed(12))
        assert torch.equal(first, second) and not torch.equal(first, other)


def test_initial_condition_ranges():
    samples = LotkaVolterra().sample_initial_conditions(500, torch.Generator().manual_seed(0))
    assert samples.min() >= 1.0 and samples.max() < 2.0 and samples.std() > 0.2
    custom = LotkaVolterra(initial_condition_range=(0.5, 0.75)).sample_initial_conditions(
        100, torch.Generator().manual_seed(0))
    assert custom.min() >= 0.5 and custom.max() < 0.75
    glycolytic = GlycolyticOscillator().sample_initial_conditions(500, torch.Generator().manual_seed(0))
    ranges = torch.tensor(GlycolyticOscillator.INITIAL_CONDITION_RANGES, dtype=FLOAT)
    assert (glycolytic >= ranges[:, 0]).all() and (glycolytic < ranges[:, 1]).all()
    # Each species spans most of its range (not, say, one shared range for all species).
    spread = (glycolytic.amax(0) - glycolytic.amin(0)) / (ranges[:, 1] - ranges[:, 0])
    assert (spread > 0.9).all()


def test_environment_tables():
    assert len(LotkaVolterra.LEADS_ENVIRONMENTS) == 10 and len(LotkaVolterra.CODA_ENVIRONMENTS) == 9
    assert {(e["beta"], e["delta"]) for e in LotkaVolterra.CODA_ADAPTATION_ENVIRONMENTS} == {
        (0.625, 0.625), (0.625, 1.125), (1.125, 0.625), (1.125, 1.125)}
    assert len(GlycolyticOscillator.CODA_ENVIRONMENTS) == 9
    assert GlycolyticOscillator.CODA_ENVIRONMENTS[0] == {"k1": 100.0, "K1": 1.0}
    defaults = {spec.name: spec.default for spec in GlycolyticOscillator.parameter_specs}
    assert defaults["k1"] == 100.0 and defaults["K1"] == 1.0


@pytest.mark.parametrize("system_class", [LotkaVolterra, GlycolyticOscillator])
def test_bad_input_is_rejected_with_names(system_class):
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['omega'\]"):
        system_class(omega=1.0)
    system = system_class()
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=f"n must be a positive integer, got {bad!r}"):
            system.sample_initial_conditions(bad, torch.Generator())


def test_bad_initial_condition_range_is_rejected():
    with pytest.raises(ValueError, match=r"initial_condition_range .* got \(2.0, 1.0\)"):
        LotkaVolterra(initial_condition_range=(2.0, 1.0))
