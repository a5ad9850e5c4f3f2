"""Forward diffusion SDEs: closed-form marginals against Monte Carlo through physml.sdeint."""

import math

import pytest
import torch

import physml
from physml.generative import VESDE, VPSDE, SubVPSDE, make_sde

SDES = [VPSDE(), SubVPSDE(), VESDE()]
IDS = ["vp", "subvp", "ve"]
TIMES = [0.05, 0.3, 1.0]
N_SAMPLES = 5000
DT = 1e-3


def _solve_forward(sde, x0, seed):
    generator = torch.Generator().manual_seed(seed)
    return physml.sdeint(sde.forward_process(), x0, [0.0, *TIMES], dt=DT, generator=generator)


def _check_standardised(residuals, label, bias_allowance):
    """``residuals`` should be i.i.d. N(0, 1) draws (pooled over samples and coordinates).

    With N pooled draws the sample mean has standard error 1/sqrt(N) and the sample standard deviation
    1/sqrt(2N); we allow 4 standard errors (a two-sided 6e-5 chance per comparison for a correct
    formula) plus the Euler–Maruyama bias of the solve.
    """
    count = residuals.numel()
    mean, std = float(residuals.mean()), float(residuals.std())
    assert abs(mean) < 4.0 / math.sqrt(count), f"{label}: standardised mean {mean:.4f}"
    assert abs(std - 1.0) < 4.0 / math.sqrt(2.0 * count) + bias_allowance, (
        f"{label}: standardised std {std:.4f}"
    )


# Euler–Maruyama with dt = 1e-3 evaluates g at the left end of each step: for VE the variance is a left
# Riemann sum of d[s(t)^2]/dt, low by a relative dt * 2 log(sigma_max / sigma_min) = 1.7 % (0.85 % in the
# standard deviation); for VP/sub-VP the stationary variance of the scheme is 1 / (1 - beta dt / 4), high by
# at most 0.5 % (0.25 % in the standard deviation). We allow 1 % of the standard deviation.
EULER_BIAS = 0.01


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_marginal_matches_monte_carlo_from_point_mass(sde):
    point = torch.tensor([1.5, -0.5], dtype=torch.float64)
    x0 = point.expand(N_SAMPLES, 2).clone()
    path = _solve_forward(sde, x0, seed=1)
    for index, time in enumerate(TIMES, start=1):
        mean, std = sde.marginal(x0, torch.tensor(time, dtype=torch.float64))
        _check_standardised((path[index] - mean) / std, f"{sde!r} t={time}", EULER_BIAS)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_marginal_matches_monte_carlo_from_gaussian(sde):
    generator = torch.Generator().manual_seed(2)
    centre, spread = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5
    x0 = centre + spread * torch.randn(N_SAMPLES, 2, generator=generator, dtype=torch.float64)
    path = _solve_forward(sde, x0, seed=3)
    for index, time in enumerate(TIMES, start=1):
        t = torch.tensor(time, dtype=torch.float64)
        # p_t = N(m(t) mu, m(t)^2 s^2 + sigma(t)^2) for Gaussian data N(mu, s^2 I).
        mean = sde.mean_coefficient(t) * centre
        std = (sde.mean_coefficient(t) ** 2 * spread**2 + sde.variance(t)).sqrt()
        _check_standardised((path[index] - mean) / std, f"{sde!r} t={time}", EULER_BIAS)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_variance_obeys_the_moment_equation(sde):
    # For dx = c(t) x dt + g(t) dw from a point mass: d sigma^2/dt = 2 c sigma^2 + g^2 and dm/dt = c m.
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    variance_rate = (sde.variance(t + h) - sde.variance(t - h)) / (2 * h)
    mean_rate = (sde.mean_coefficient(t + h) - sde.mean_coefficient(t - h)) / (2 * h)
    c, g = sde.drift_coefficient(t), sde.diffusion(t)
    torch.testing.assert_close(variance_rate, 2 * c * sde.variance(t) + g**2, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(mean_rate, c * sde.mean_coefficient(t), rtol=1e-6, atol=1e-8)
    assert float(sde.variance(torch.tensor(0.0, dtype=torch.float64))) == 0.0


def test_schedules_have_their_defining_properties():
    t = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    vp, subvp, ve = VPSDE(), SubVPSDE(), VESDE(0.01, 50.0)
    torch.testing.assert_close(vp.mean_coefficient(t) ** 2 + vp.variance(t), torch.ones_like(t))
    torch.testing.assert_close(subvp.std(t), 1.0 - subvp.mean_coefficient(t) ** 2)
    torch.testing.assert_close(ve.mean_coefficient(t), torch.ones_like(t))
    torch.testing.assert_close(ve.variance(t) + 0.01**2, ve.noise_scale(t) ** 2)
    # One VP transition over [s, t] is a DDPM step: x_t = sqrt(1 - beta) x_s + sqrt(beta) z.
    ratio, increment = vp.transition(t[:-1], t[1:])
    torch.testing.assert_close(ratio**2 + increment, torch.ones_like(ratio))


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_prior_matches_the_time_one_marginal_and_its_density(sde):
    t = torch.tensor(1.0, dtype=torch.float64)
    assert abs(float(sde.std(t)) - sde.prior_std) < 1e-3 * sde.prior_std
    assert float(sde.mean_coefficient(t)) < 0.01 or isinstance(sde, VESDE)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, sde.prior_std).log_prob(x).sum(dim=1)
    torch.testing.assert_close(sde.prior_log_prob(x), expected)
    draws = sde.prior_sample((20000, 1), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # Sample std of 20 000 normals: relative standard error 1/sqrt(40 000) = 0.005; allow 4 of them.
    assert abs(float(draws.std()) / sde.prior_std - 1.0) < 0.02


def test_bad_schedules_are_rejected_naming_the_argument():
    with pytest.raises(ValueError, match="beta_min"):
        VPSDE(beta_min=0.0)
    with pytest.raises(ValueError, match="beta_max"):
        SubVPSDE(beta_min=5.0, beta_max=1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        VESDE(sigma_min=-1.0)
    with pytest.raises(ValueError, match="sde"):
        make_sde("cosine")
    assert isinstance(make_sde("subvp"), SubVPSDE)
