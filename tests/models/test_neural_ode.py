"""NeuralODE: integration, adjoint gradients, environments and argument checks."""

import math

import pytest
import torch

from physml.models.neural_ode import NeuralODE
from physml.nn.mlp import MLP
from physml.nn.stacked import StackedModules


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def linear_field(rate):
    layer = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(rate)
    return layer


def test_one_rk4_step_per_observation_by_default():
    model = NeuralODE(linear_field(-1.0), method="rk4")
    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    ys = model.simulate(torch.ones(1, 1, dtype=torch.float64), times)
    step = 1 - 0.5 + 0.5**2 / 2 - 0.5**3 / 6 + 0.5**4 / 24  # RK4's amplification for dy/dt = -y, h = 0.5
    torch.testing.assert_close(ys[:, 0, 0], torch.tensor([1.0, step, step**2], dtype=torch.float64))
    fine_model = NeuralODE(linear_field(-1.0), method="rk4", step_size=0.01)
    fine = fine_model.simulate(torch.ones(1, 1, dtype=torch.float64), times)
    assert abs(fine[-1, 0, 0].item() - math.exp(-1.0)) < 1e-9


@pytest.mark.parametrize("method, step_size", [("rk4", 0.01), ("dopri5", None)])
def test_adjoint_gradients_match_backpropagation(method, step_size):
    # The adjoint differentiates the continuous problem, backpropagation the discrete solve: they agree
    # up to the discretisation error, made negligible here by small steps or tight tolerances.
    network = MLP(2, 2, (8,), activation="tanh", generator=seeded(), dtype=torch.float64)
    y0 = torch.randn(3, 2, dtype=torch.float64, generator=seeded(1))
    times = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    settings = dict(method=method, step_size=step_size, rtol=1e-10, atol=1e-12)
    gradients = []
    for adjoint in (False, True):
        model = NeuralODE(network, adjoint=adjoint, **settings)
        model.zero_grad()
        model.simulate(y0, times).square().sum().backward()
        gradients.append([parameter.grad.clone() for parameter in model.parameters()])
    for direct, adjoint in zip(*gradients, strict=True):
        torch.testing.assert_close(adjoint, direct, rtol=1e-6, atol=1e-8)


def test_time_dependent_field_receives_time():
    class Forcing(torch.nn.Module):
        def forward(self, t, y):
            return torch.cos(t) * torch.ones_like(y)

    model = NeuralODE(Forcing(), method="dopri5", rtol=1e-10, atol=1e-12, time_dependent=True)
    ys = model.simulate(torch.zeros(1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert abs(float(ys[-1, 0]) - math.sin(1.0)) < 1e-8


def test_stacked_field_makes_a_multi_environment_model():
    generator = seeded()
    model = NeuralODE(StackedModules.from_factory(lambda: MLP(2, 2, (4,), generator=generator), count=3))
    assert model.n_environments == 3
    assert model.simulate(torch.randn(3, 5, 2), torch.linspace(0, 1, 4)).shape == (4, 3, 5, 2)
    with pytest.raises(ValueError, match="3 environments"):
        model.simulate(torch.randn(2, 5, 2), torch.linspace(0, 1, 4))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(method="rk5"), "method"),
        (dict(method="dopri5", step_size=0.1), "adaptive"),
        (dict(method="rk4", step_size=-1.0), "step_size"),
        (dict(n_environments=0), "n_environments"),
    ],
)
def test_bad_solver_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        NeuralODE(torch.nn.Linear(2, 2), **arguments)
    with pytest.raises(TypeError, match="vector_field"):
        NeuralODE(None)
