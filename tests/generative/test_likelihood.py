"""Divergence estimators and log-densities through the instantaneous change of variables."""

import math

import pytest
import torch

from physml.generative import VESDE, VPSDE, SubVPSDE, TimeConditionedMLP
from physml.generative.likelihood import (
    exact_divergence,
    hutchinson_divergence,
    ode_log_likelihood,
    probability_flow_log_likelihood,
    rademacher_probe,
)

SDES = [VPSDE(), SubVPSDE(), VESDE(0.01, 50.0)]
IDS = ["vp", "subvp", "ve"]
# Gaussian data N(mu, Sigma) with correlated coordinates, so the probability-flow Jacobian has
# off-diagonal entries and the Hutchinson estimate is genuinely random.
MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIGMA = torch.tensor([[0.6, 0.3], [0.3, 0.4]], dtype=torch.float64)


def _gaussian_marginal(sde, t):
    t = torch.as_tensor(t, dtype=torch.float64)
    m = sde.mean_coefficient(t)
    return m * MU, m**2 * SIGMA + sde.variance(t) * torch.eye(2, dtype=torch.float64)


def _exact_score(sde, recorded_times=None):
    def score(t, x):
        if recorded_times is not None:
            recorded_times.append(float(t))
        mean, covariance = _gaussian_marginal(sde, t)
        return -torch.linalg.solve(covariance, (x - mean).T).T

    return score


def _gaussian_log_density(mean, covariance):
    return lambda x: torch.distributions.MultivariateNormal(mean, covariance).log_prob(x)


def _jacobian_at(network, t, point):
    return torch.autograd.functional.jacobian(lambda y: network(t, y[None])[0], point)


def test_exact_divergence_is_the_jacobian_trace():
    network = TimeConditionedMLP(4, (16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    points = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = points.clone().requires_grad_(True)
    divergence = exact_divergence(network(t, x), x)
    traces = torch.stack([torch.trace(_jacobian_at(network, t, point)) for point in points])
    torch.testing.assert_close(divergence, traces, rtol=1e-12, atol=1e-12)


def test_hutchinson_estimator_is_unbiased_for_the_trace():
    network = TimeConditionedMLP(4, (16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    point = torch.randn(4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jacobian = _jacobian_at(network, t, point)
    probes_count = 4000
    x = point.expand(probes_count, 4).clone().requires_grad_(True)
    probe = rademacher_probe(
        x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype, device=x.device
    )
    estimates, _ = hutchinson_divergence(network(t, x), x, probe)
    # Rademacher probes: Var = 2 sum_{i != j} ((J_ij + J_ji) / 2)^2; 4 standard errors of the mean.
    symmetric = 0.5 * (jacobian + jacobian.T)
    variance = 2.0 * (symmetric.square().sum() - symmetric.diagonal().square().sum())
    assert variance > 1e-3  # the check is not vacuous: single estimates do vary
    assert abs(float(estimates.mean() - torch.trace(jacobian))) < 4.0 * math.sqrt(
        float(variance) / probes_count
    )
    # ... and the empirical spread matches the formula (sample-variance relative s.e. ~ sqrt(2 / n) ~ 2 %,
    # a bit more for this non-Gaussian estimator: allow 15 %).
    assert abs(float(estimates.var()) / float(variance) - 1.0) < 0.15


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_probability_flow_likelihood_of_gaussian_data_is_exact(sde):
    epsilon = 1e-3
    x = torch.tensor([[1.0, -0.5], [2.0, 0.5], [-0.5, -1.5]], dtype=torch.float64)
    times = []
    # The base density is the exact p_1 of this data (not the N(0, prior_std^2) approximation), so the only
    # error left is the ODE solver's (dopri5 at 1e-9: errors ~1e-8).
    log_prob, stats = probability_flow_log_likelihood(
        _exact_score(sde, times),
        sde,
        x,
        epsilon=epsilon,
        rtol=1e-9,
        atol=1e-9,
        prior_log_prob=_gaussian_log_density(*_gaussian_marginal(sde, 1.0)),
    )
    expected = _gaussian_log_density(*_gaussian_marginal(sde, epsilon))(x)
    torch.testing.assert_close(log_prob, expected, rtol=0, atol=1e-6)
    assert stats["status"] == "success" and stats["nfe"] == len(times) > 10
    assert min(times) >= epsilon and max(times) <= 1.0


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_probability_flow_likelihood_with_the_sde_prior_is_close(sde):
    # With the SDE's own N(0, prior_std^2) prior the answer is off only by the prior mismatch at t = 1
    # (m(1) ~ 0.007 for VP/sub-VP; sigma_max = 50 >> data scale for VE): well under 0.01 nats.
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    log_prob, _ = probability_flow_log_likelihood(_exact_score(sde), sde, x, rtol=1e-8, atol=1e-8)
    expected = _gaussian_log_density(*_gaussian_marginal(sde, 1e-3))(x)
    assert abs(float(log_prob - expected)) < 0.01


@pytest.mark.parametrize("sde", SDES[:1] + SDES[2:], ids=["vp", "ve"])
def test_probability_flow_likelihood_with_hutchinson_trace_is_unbiased(sde):
    replicas = 256
    point = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    x = point.expand(replicas, 2).clone()
    log_prob, _ = probability_flow_log_likelihood(
        _exact_score(sde),
        sde,
        x,
        trace="hutchinson",
        generator=torch.Generator().manual_seed(0),
        rtol=1e-7,
        atol=1e-7,
        prior_log_prob=_gaussian_log_density(*_gaussian_marginal(sde, 1.0)),
    )
    expected = float(_gaussian_log_density(*_gaussian_marginal(sde, 1e-3))(point))
    spread = float(log_prob.std())
    assert spread > 1e-3  # one Rademacher probe per replica: the estimates do differ
    assert abs(float(log_prob.mean()) - expected) < 4.0 * spread / math.sqrt(replicas)


def test_ode_log_likelihood_of_a_linear_flow():
    # dx/dt = A x carries N(0, I) at t = 0 to N(0, e^A e^{A^T}) at t = 1.
    matrix = torch.tensor([[0.3, -0.8], [0.5, -0.2]], dtype=torch.float64)
    propagator = torch.linalg.matrix_exp(matrix)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_prob, stats = ode_log_likelihood(
        lambda t, y: y @ matrix.T,
        x,
        data_time=1.0,
        base_time=0.0,
        base_log_prob=_gaussian_log_density(
            torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
        ),
        rtol=1e-10,
        atol=1e-10,
    )
    expected = _gaussian_log_density(torch.zeros(2, dtype=torch.float64), propagator @ propagator.T)(x)
    torch.testing.assert_close(log_prob, expected, rtol=0, atol=1e-8)
    torch.testing.assert_close(stats["latent"], x @ torch.linalg.inv(propagator).T, rtol=0, atol=1e-8)


def test_ode_log_likelihood_rejects_bad_input():
    good = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="x must be finite"):
        ode_log_likelihood(
            lambda t, y: y,
            torch.tensor([[0.0, float("nan")]]),
            data_time=1.0,
            base_time=0.0,
            base_log_prob=lambda z: z.sum(1),
        )
    with pytest.raises(ValueError, match="trace"):
        ode_log_likelihood(
            lambda t, y: y,
            good,
            data_time=1.0,
            base_time=0.0,
            base_log_prob=lambda z: z.sum(1),
            trace="skilling",
        )
    with pytest.raises(ValueError, match="network"):
        ode_log_likelihood(
            lambda t, y: y[:, :1], good, data_time=1.0, base_time=0.0, base_log_prob=lambda z: z.sum(1)
        )
