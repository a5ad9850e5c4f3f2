"""Continuous normalising flows: likelihood, sampling, RNODE channels, adjoint gradients, training."""

import math

import pytest
import torch
from torch import nn

from physml.generative import ContinuousNormalizingFlow, TimeConditionedMLP
from physml.generative.cnf import cnf_negative_log_likelihood


class LinearField(nn.Module):
    """v(t, x) = A x + b: the flow is affine, so every density is Gaussian in closed form."""

    def __init__(self, matrix, shift=None):
        super().__init__()
        self.matrix = nn.Parameter(matrix.clone())
        self.shift = nn.Parameter(
            torch.zeros(matrix.shape[0], dtype=matrix.dtype) if shift is None else shift.clone()
        )
        self.dim = matrix.shape[0]

    def forward(self, t, x):
        return x @ self.matrix.T + self.shift


MATRIX = torch.tensor([[0.3, -0.8], [0.5, -0.2]], dtype=torch.float64)


def _model_distribution():
    propagator = torch.linalg.matrix_exp(MATRIX)  # x(1) = e^A x(0), x(0) ~ N(0, I)
    return torch.distributions.MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), propagator @ propagator.T
    )


def test_log_prob_and_sampling_of_a_linear_flow():
    flow = ContinuousNormalizingFlow(network=LinearField(MATRIX), rtol=1e-10, atol=1e-10)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = _model_distribution().log_prob(x)
    torch.testing.assert_close(flow.log_prob(x), exact, rtol=0, atol=1e-8)
    # Hutchinson with one Rademacher probe per replica: unbiased; 4 standard errors of 400 replicas.
    replicas = x[:1].expand(400, 2)
    estimates = flow.log_prob(replicas, trace="hutchinson", generator=torch.Generator().manual_seed(1))
    assert float(estimates.std()) > 1e-3
    assert abs(float(estimates.mean() - exact[0])) < 4.0 * float(estimates.std()) / math.sqrt(400)
    result = flow.sample(20000, generator=torch.Generator().manual_seed(2))
    covariance = _model_distribution().covariance_matrix
    # Sample covariance of 20 000 Gaussian draws: entry standard error <= sqrt((S_ii S_jj + S_ij^2) / n).
    standard_error = (
        (covariance.diagonal()[:, None] * covariance.diagonal()[None, :] + covariance**2) / 20000
    ).sqrt()
    assert ((torch.cov(result.samples.T) - covariance).abs() < 4.0 * standard_error).all()
    assert result.nfe > 0 and result.stats["status"] == "success"
    assert flow.score(x) == pytest.approx(float(exact.mean()), abs=1e-7)


def test_rnode_channels_integrate_the_kinetic_energy_and_jacobian_norm():
    # v = c x: along the trajectory through x1, int_0^1 ||v||^2 dt = c^2 ||x1||^2 (1 - e^{-2c}) / (2c), and
    # ||eps^T dv/dx||^2 = c^2 d exactly for any Rademacher probe.
    rate = 0.7
    network = LinearField(rate * torch.eye(2, dtype=torch.float64))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss, stats = cnf_negative_log_likelihood(
        network,
        x,
        generator=torch.Generator().manual_seed(1),
        kinetic_energy_weight=1.0,
        jacobian_frobenius_weight=1.0,
        rtol=1e-10,
        atol=1e-10,
    )
    kinetic = rate**2 * x.square().sum(1) * (1 - math.exp(-2 * rate)) / (2 * rate)
    assert stats["kinetic_energy"] == pytest.approx(float(kinetic.mean()), rel=1e-8)
    assert stats["jacobian_frobenius"] == pytest.approx(rate**2 * 2, rel=1e-8)
    assert float(loss.detach()) == pytest.approx(
        stats["negative_log_likelihood"] + stats["kinetic_energy"] + stats["jacobian_frobenius"], rel=1e-10
    )


def _gradients(network, x, **options):
    network.zero_grad()
    loss, _ = cnf_negative_log_likelihood(network, x, rtol=1e-9, atol=1e-9, **options)
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in network.parameters()]), float(loss.detach())


@pytest.mark.parametrize(
    "options",
    [{}, {"kinetic_energy_weight": 0.1, "jacobian_frobenius_weight": 0.1, "trace": "hutchinson"}],
    ids=["exact", "hutchinson-rnode"],
)
def test_adjoint_gradients_match_backpropagation_and_finite_differences(options):
    network = TimeConditionedMLP(
        2, (8,), activation="tanh", generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    seeded = {**options, "generator": torch.Generator().manual_seed(2)} if options else {}
    direct, loss = _gradients(network, x, **seeded)
    seeded = {**options, "generator": torch.Generator().manual_seed(2)} if options else {}
    adjoint, adjoint_loss = _gradients(network, x, adjoint=True, **seeded)
    assert adjoint_loss == pytest.approx(loss, rel=1e-10)
    # Both are accurate to the solver tolerance (1e-9); the adjoint re-solves backwards: allow 1e-6 relative.
    torch.testing.assert_close(adjoint, direct, rtol=1e-6, atol=1e-8)
    # Central finite difference on one weight (same probe for both evaluations): O(h^2) = 1e-8 truncation.
    parameter = network.layers[0].weight
    h = 1e-4
    values = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            parameter[0, 0] += sign * h
        seeded = {**options, "generator": torch.Generator().manual_seed(2)} if options else {}
        with torch.no_grad():  # the divergence still gets its own local autograd pass
            values.append(float(cnf_negative_log_likelihood(network, x, rtol=1e-10, atol=1e-10, **seeded)[0]))
        with torch.no_grad():
            parameter[0, 0] -= sign * h
    assert (values[0] - values[1]) / (2 * h) == pytest.approx(float(direct[0]), rel=1e-5, abs=1e-7)


def test_training_lowers_the_held_out_negative_log_likelihood():
    generator = torch.Generator().manual_seed(0)
    train = 0.5 * torch.randn(1000, 2, generator=generator) + torch.tensor([1.5, -1.0])
    test = 0.5 * torch.randn(500, 2, generator=generator) + torch.tensor([1.5, -1.0])
    flow = ContinuousNormalizingFlow(
        hidden_sizes=(16, 16),
        trace="hutchinson",
        kinetic_energy_weight=0.01,
        jacobian_frobenius_weight=0.01,
        adjoint=True,
        rtol=1e-3,
        atol=1e-3,
        steps=40,
        batch_size=64,
        learning_rate=2e-2,
    )
    flow.fit(train, generator=torch.Generator().manual_seed(1))
    before = ContinuousNormalizingFlow(hidden_sizes=(16, 16), steps=1, batch_size=2, learning_rate=1e-12)
    before.fit(train, generator=torch.Generator().manual_seed(1))
    nll_before = -before.score(test, rtol=1e-5, atol=1e-5)
    nll_after = -flow.score(test, rtol=1e-5, atol=1e-5)
    # Untrained ~ N(0, I) on data N((1.5, -1), 0.25 I): NLL ~ 3.5 nats; the data's entropy is 1.45 nats.
    assert nll_before > 3.0
    assert nll_after < nll_before - 1.0
    assert len(flow.nfe_history_) == 40 and min(flow.nfe_history_) > 0


def test_bad_input():
    with pytest.raises(ValueError, match="trace"):
        ContinuousNormalizingFlow(trace="stochastic")
    with pytest.raises(ValueError, match="kinetic_energy_weight"):
        ContinuousNormalizingFlow(kinetic_energy_weight=-1.0)
    with pytest.raises(ValueError, match="data must be finite"):
        ContinuousNormalizingFlow(steps=1).fit(torch.tensor([[0.0, float("nan")]]))

    class Squash(nn.Module):
        def forward(self, t, x):
            return x.sum(1)

    with pytest.raises(ValueError, match="network"):
        ContinuousNormalizingFlow(network=Squash()).log_prob(torch.zeros(3, 2))
