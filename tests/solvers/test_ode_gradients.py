"""Gradients through the ODE solvers: backprop through the steps, the adjoint, and the stiff method."""

import pytest
import torch

import physml


class DampedOscillator(torch.nn.Module):
    """y'' = -k y - c y' with learnable stiffness and damping (float64)."""

    def __init__(self, stiffness=1.3, damping=0.2):
        super().__init__()
        self.stiffness = torch.nn.Parameter(torch.tensor(stiffness, dtype=torch.float64))
        self.damping = torch.nn.Parameter(torch.tensor(damping, dtype=torch.float64))

    def forward(self, t, y):
        position, velocity = y[..., 0], y[..., 1]
        return torch.stack([velocity, -self.stiffness * position - self.damping * velocity], dim=-1)


TIMES = torch.tensor([0.0, 0.4, 1.1, 2.0], dtype=torch.float64)
Y0 = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=torch.float64)


def _solve(method, y0, stiffness, damping, adjoint=False, **kwargs):
    def field(t, y):
        position, velocity = y[..., 0], y[..., 1]
        return torch.stack([velocity, -stiffness * position - damping * velocity], dim=-1)

    options = dict(step_size=0.05) if not physml.METHODS[method]["adaptive"] else None
    # gradcheck compares with finite differences of the same discrete solve, so the tolerance only
    # has to keep the step sequence stable; the third-order stiff method runs looser to stay fast.
    rtol, atol = (1e-6, 1e-8) if method == "kvaerno3" else (1e-10, 1e-12)
    if adjoint:
        return physml.odeint_adjoint(field, y0, TIMES, method=method, rtol=rtol, atol=atol, options=options,
                                     adjoint_params=(stiffness, damping), **kwargs)
    return physml.odeint(field, y0, TIMES, method=method, rtol=rtol, atol=atol, options=options)


@pytest.mark.parametrize("method", ["rk4", "dopri5", "tsit5", "dopri8", "kvaerno3"])
def test_gradcheck_backprop_through_solver(method):
    stiffness = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    damping = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    y0 = Y0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda y, k, c: _solve(method, y, k, c), (y0, stiffness, damping), eps=1e-6, atol=1e-6, rtol=1e-5
    )


@pytest.mark.parametrize("method", ["dopri5", "kvaerno3"])
def test_gradcheck_adjoint(method):
    stiffness = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    damping = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    y0 = Y0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda y, k, c: _solve(method, y, k, c, adjoint=True), (y0, stiffness, damping),
        eps=1e-6, atol=1e-6, rtol=1e-5,
    )


@pytest.mark.parametrize("seminorm", [False, True])
def test_adjoint_and_backprop_gradients_agree_on_a_neural_ode(seminorm):
    generator = torch.Generator().manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    for parameter in network.parameters():
        torch.nn.init.normal_(parameter, std=0.5, generator=generator)
    field = lambda t, y: network(y)  # noqa: E731
    y0 = torch.randn(8, 2, dtype=torch.float64, generator=generator)
    times = torch.linspace(0, 1.5, 6, dtype=torch.float64)
    target = torch.randn(6, 8, 2, dtype=torch.float64, generator=generator)

    def gradients(adjoint):
        network.zero_grad()
        y = y0.clone().requires_grad_(True)
        if adjoint:
            options = dict(norm="seminorm") if seminorm else None
            ys = physml.odeint_adjoint(field, y, times, rtol=1e-9, atol=1e-11,
                                       adjoint_params=tuple(network.parameters()), adjoint_options=options)
        else:
            ys = physml.odeint(field, y, times, rtol=1e-9, atol=1e-11)
        ((ys - target) ** 2).sum().backward()
        return [y.grad] + [p.grad.clone() for p in network.parameters()]

    for backprop, adjoint in zip(gradients(False), gradients(True)):
        assert torch.allclose(backprop, adjoint, rtol=1e-5, atol=1e-7)


def test_adjoint_reports_backward_nfe_and_seminorm_saves_work():
    network = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Softplus(), torch.nn.Linear(32, 4)).double()
    torch.manual_seed(1)
    y0 = torch.randn(16, 4, dtype=torch.float64)
    times = torch.tensor([0.0, 3.0], dtype=torch.float64)
    counts = {}
    for norm in (None, "seminorm"):
        solution = physml.solve_ode(lambda t, y: network(y), y0, times, method="dopri5", rtol=1e-6, atol=1e-6,
                                    adjoint=True, adjoint_params=tuple(network.parameters()),
                                    adjoint_options=dict(norm=norm) if norm else None)
        solution.ys[-1].sum().backward()
        counts[norm] = solution.stats["nfe_adjoint"]
    assert counts[None] > 0
    assert counts["seminorm"] <= counts[None]


def test_adjoint_requires_module_or_params():
    with pytest.raises(TypeError, match="adjoint_params"):
        physml.odeint_adjoint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]))


def test_per_sample_solve_is_differentiable():
    stiffness = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)

    def field(t, y, k):
        return torch.stack([y[:, 1], -k * y[:, 0]], dim=-1)

    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    solution = physml.solve_ode(field, y0, times, per_sample=True, args=stiffness, rtol=1e-10, atol=1e-12)
    solution.ys[-1, :, 0].sum().backward()
    # x(1) = cos(sqrt(k)), so dx/dk = -sin(sqrt(k)) / (2 sqrt(k)).
    root = stiffness.detach().sqrt()
    assert torch.allclose(stiffness.grad, -torch.sin(root) / (2 * root), atol=1e-7)


def test_odeint_adjoint_flag_matches_odeint_adjoint():
    module = torch.nn.Linear(2, 2).double()
    y0 = torch.ones(3, 2, dtype=torch.float64)
    times = torch.tensor([0.0, 0.5], dtype=torch.float64)
    flagged = physml.odeint(lambda t, y: module(y), y0, times, adjoint=True,
                            adjoint_params=tuple(module.parameters()))
    flagged.sum().backward()
    gradient = module.weight.grad.clone()
    module.zero_grad()
    physml.odeint_adjoint(lambda t, y: module(y), y0, times, adjoint_params=tuple(module.parameters())).sum().backward()
    assert torch.equal(gradient, module.weight.grad)
    with pytest.raises(TypeError, match="adjoint_\\* arguments need adjoint=True"):
        physml.odeint(lambda t, y: module(y), y0, times, adjoint_params=tuple(module.parameters()))
