"""Damped pendulum: agreement with SciPy DOP853 and energy conservation without friction."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import physml
from simulators.pendulum import DampedPendulum

TIMES = torch.linspace(0.0, 20.0, 41, dtype=torch.float64)


def test_matches_scipy_dop853_with_batched_damping():
    pendulum = DampedPendulum(alpha=[0.0, 0.2, 0.5])
    y0 = pendulum.sample_initial_conditions(3, torch.Generator().manual_seed(1))
    ours = physml.solve_ode(pendulum, y0, TIMES, method="dopri8", rtol=1e-11, atol=1e-12).ys
    for index, alpha in enumerate([0.0, 0.2, 0.5]):
        omega0_squared = float(pendulum.omega0_squared)

        def rhs(t, y, alpha=alpha):  # written independently of the module
            return [y[1], -omega0_squared * np.sin(y[0]) - alpha * y[1]]

        reference = solve_ivp(rhs, (0.0, 20.0), y0[index].numpy(), method="DOP853", rtol=1e-12, atol=1e-14,
                              t_eval=TIMES.numpy())
        assert np.abs(ours[:, index].numpy() - reference.y.T).max() < 1e-8


def test_frictionless_energy_is_conserved_and_damping_dissipates_it():
    y0 = DampedPendulum().sample_initial_conditions(4, torch.Generator().manual_seed(2))
    frictionless = DampedPendulum(alpha=0.0)
    energy = frictionless.energy(physml.solve_ode(frictionless, y0, TIMES, rtol=1e-11, atol=1e-12).ys)
    assert float((energy - energy[0]).abs().max() / energy[0].abs().max()) < 1e-8
    damped = DampedPendulum()
    dissipated = damped.energy(physml.solve_ode(damped, y0, TIMES, rtol=1e-10, atol=1e-12).ys)
    assert (dissipated[1:] < dissipated[:-1]).all()  # dE/dt = -α p² < 0 between samples


def test_learnable_frequency_gets_a_gradient():
    prior = DampedPendulum(alpha=0.0, learnable=["omega0_squared"])
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    final = physml.solve_ode(prior, y0, TIMES[:5], rtol=1e-9, atol=1e-11).ys[-1]
    final.sum().backward()
    assert prior.omega0_squared.grad is not None and torch.isfinite(prior.omega0_squared.grad)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        prior.sample_initial_conditions(0, torch.Generator())
