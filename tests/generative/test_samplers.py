"""Samplers of score-based models, driven by the exact score of Gaussian data.

For data N(mu, s^2 I) every marginal is Gaussian, p_t = N(m(t) mu, (m(t)^2 s^2 + sigma(t)^2) I), so the
exact score is known and a correct sampler must return N(mu, s^2 I) up to Monte-Carlo error and its own
discretisation bias.  The prior samples are drawn from the exact p_1 (not the N(0, prior_std^2)
approximation), which isolates the sampler.
"""

import math

import pytest
import torch

import physml
import physml.solvers
from physml.generative import (
    VESDE,
    VPSDE,
    SubVPSDE,
    ancestral_sample,
    annealed_langevin_sample,
    predictor_corrector_sample,
    probability_flow_sample,
    reverse_sde_sample,
)

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SPREAD = 0.5
N_SAMPLES = 2000
EPSILON = 1e-3


def _marginal_variance(sde, t):
    return sde.mean_coefficient(t) ** 2 * SPREAD**2 + sde.variance(t)


def _exact_score(sde, recorded=None):
    def score(t, x):
        if recorded is not None:
            recorded.append(float(t))
        return -(x - sde.mean_coefficient(t) * MU) / _marginal_variance(sde, t)

    return score


def _exact_prior(sde, seed, n=N_SAMPLES):
    t = torch.tensor(1.0, dtype=torch.float64)
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return sde.mean_coefficient(t) * MU + _marginal_variance(sde, t).sqrt() * noise


def _check_gaussian_data(samples, bias_allowance, label):
    """Per-coordinate means within 4 standard errors (s / sqrt(n)); the pooled standardised standard
    deviation within 4 standard errors (1 / sqrt(2 * 2n)) plus the sampler's discretisation bias."""
    residuals = (samples - MU) / SPREAD
    mean_error = residuals.mean(dim=0).abs().max()
    assert mean_error < 4.0 / math.sqrt(N_SAMPLES), (
        f"{label}: mean error {float(mean_error):.4f} (units of s)"
    )
    std = float(residuals.std())
    assert abs(std - 1.0) < 4.0 / math.sqrt(4.0 * N_SAMPLES) + bias_allowance, f"{label}: std ratio {std:.4f}"


# Discretisation biases of the standard deviation measured with 40 000 samples at these settings:
# probability flow (dopri5 1e-5) +0.3 %; reverse SDE (500 Euler steps) +0.5 %; ancestral (500 steps) +0.5 %
# ("transition") and -1.5 % ("posterior" variance: DDPM's lower bound, biased for spread-out data);
# predictor-corrector (200 steps, snr 0.16) +1.5 % (the Langevin corrector's finite step).  Allowances are
# set a little above these.
CASES = [
    ("probability_flow", VPSDE(), probability_flow_sample, {}, 0.005),
    ("probability_flow", VESDE(0.01, 5.0), probability_flow_sample, {}, 0.005),
    ("reverse_sde", VPSDE(), reverse_sde_sample, {"steps": 500}, 0.01),
    ("reverse_sde", SubVPSDE(), reverse_sde_sample, {"steps": 500}, 0.01),
    ("reverse_sde", VESDE(0.01, 5.0), reverse_sde_sample, {"steps": 500}, 0.01),
    ("predictor_corrector", VPSDE(), predictor_corrector_sample, {"steps": 200}, 0.02),
    (
        "predictor_corrector",
        VESDE(0.01, 5.0),
        predictor_corrector_sample,
        {"steps": 200, "predictor": "euler_maruyama"},
        0.02,
    ),
    ("ancestral", VPSDE(), ancestral_sample, {"steps": 500}, 0.01),
    ("ancestral", VESDE(0.01, 5.0), ancestral_sample, {"steps": 500, "variance": "posterior"}, 0.02),
]


@pytest.mark.parametrize(
    "name, sde, sampler, options, bias", CASES, ids=[f"{case[0]}-{type(case[1]).__name__}" for case in CASES]
)
def test_sampler_recovers_gaussian_data_and_stays_in_the_time_window(name, sde, sampler, options, bias):
    recorded = []
    if sampler is not probability_flow_sample:
        options = {**options, "generator": torch.Generator().manual_seed(7)}
    result = sampler(_exact_score(sde, recorded), sde, _exact_prior(sde, seed=5), epsilon=EPSILON, **options)
    _check_gaussian_data(result.samples, bias, f"{name} {sde!r}")
    assert result.nfe == len(recorded)
    assert EPSILON <= min(recorded) and max(recorded) <= 1.0
    steps = options.get("steps")
    expected_nfe = {
        "reverse_sde": (steps or 0) + 2,  # sdeint's shape check of f at t = 1, the steps, the Tweedie step
        "predictor_corrector": 2 * (steps or 0) + 1,
        "ancestral": (steps or 0) + 1,
    }.get(name)
    if expected_nfe is not None:
        assert result.nfe == expected_nfe
    if name != "probability_flow":  # fixed grids run monotonically from 1 down to epsilon
        assert all(later <= earlier for earlier, later in zip(recorded[:-1], recorded[1:], strict=True))


def test_reverse_sde_runs_backwards_through_physml_sdeint(monkeypatch):
    calls = []
    original = physml.solvers.sdeint

    def recording_sdeint(sde, y0, ts, **options):
        calls.append(list(ts))
        return original(sde, y0, ts, **options)

    monkeypatch.setattr(physml.solvers, "sdeint", recording_sdeint)
    recorded = []
    sde = VPSDE()
    result = reverse_sde_sample(
        _exact_score(sde, recorded),
        sde,
        _exact_prior(sde, 0, n=16),
        epsilon=0.01,
        steps=50,
        generator=torch.Generator().manual_seed(0),
        denoise=False,
    )
    assert calls == [[1.0, 0.01]]  # decreasing output times handed to the solver: no negated clock
    # The network sees t = 1 (sdeint's shape check), then the 50 left ends of the steps, strictly decreasing.
    steps = torch.linspace(1.0, 0.01, 51, dtype=torch.float64)[:-1].tolist()
    assert recorded[0] == 1.0
    assert recorded[1:] == pytest.approx(steps, abs=1e-12)
    assert result.nfe == 51 and result.stats["time_window"] == (0.01, 1.0)


def test_explicit_time_schedule_is_followed_and_validated():
    sde = VESDE(0.01, 5.0)
    recorded = []
    schedule = [1.0, 0.6, 0.3, 0.1, 0.05]
    ancestral_sample(
        _exact_score(sde, recorded),
        sde,
        _exact_prior(sde, 0, n=8),
        times=schedule,
        generator=torch.Generator().manual_seed(0),
        denoise=False,
    )
    assert recorded == pytest.approx(schedule[:-1])
    for bad, message in [([1.0, 0.5, 0.0], "times"), ([1.2, 0.5], "times"), ([0.5, 0.9], "decreasing")]:
        with pytest.raises(ValueError, match=message):
            ancestral_sample(_exact_score(sde), sde, _exact_prior(sde, 0, n=8), times=bad)
    for epsilon in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="epsilon"):
            reverse_sde_sample(_exact_score(sde), sde, _exact_prior(sde, 0, n=8), epsilon=epsilon)


def test_annealed_langevin_follows_the_ncsn_recursion():
    # For Gaussian data each Langevin step x <- x + (alpha/2) s(x) + sqrt(alpha) z is linear, so mean and
    # variance follow
    #     mean <- mean + (alpha / 2)(mu - mean) / tau^2,   var <- (1 - alpha / (2 tau^2))^2 var + alpha
    # with tau^2 = s^2 + sigma_i^2, alpha_i = step_size * sigma_i^2 / sigma_L^2 (Song & Ermon 2019, Alg. 1).
    sde = VESDE(0.01, 5.0)
    times = torch.linspace(1.0, 0.3, 6, dtype=torch.float64)
    step_size, steps_per_level = 2e-3, 30
    prior = _exact_prior(sde, seed=3)
    recorded = []
    result = annealed_langevin_sample(
        _exact_score(sde, recorded),
        sde,
        prior,
        times=times.tolist(),
        steps_per_level=steps_per_level,
        step_size=step_size,
        generator=torch.Generator().manual_seed(4),
        denoise=False,
    )
    mean = MU.clone()  # the exact prior is centred at mu (m = 1 for VE)
    variance = _marginal_variance(sde, torch.tensor(1.0, dtype=torch.float64))
    smallest = sde.variance(times[-1])
    for t in times:
        tau_squared, alpha = _marginal_variance(sde, t), step_size * sde.variance(t) / smallest
        for _ in range(steps_per_level):
            mean = mean + 0.5 * alpha * (MU - mean) / tau_squared
            variance = (1.0 - 0.5 * alpha / tau_squared) ** 2 * variance + alpha
    samples = result.samples
    assert result.nfe == len(recorded) == 6 * steps_per_level
    # 4 standard errors for the means (sqrt(var / n)) and the pooled standard deviation (sqrt(var / (4n))).
    assert ((samples.mean(dim=0) - mean).abs() < 4.0 * (variance / N_SAMPLES).sqrt()).all()
    pooled_std = float((samples - samples.mean(dim=0)).std())
    assert abs(pooled_std - float(variance.sqrt())) < 4.0 * float((variance / (4 * N_SAMPLES)).sqrt())
    # The recursion moved far from the prior (variance 25), so the check is not vacuous.
    assert float(variance) < 1.0


def test_samplers_reject_bad_arguments():
    sde = VPSDE()
    prior = _exact_prior(sde, 0, n=4)
    with pytest.raises(ValueError, match="prior_samples must be finite"):
        reverse_sde_sample(_exact_score(sde), sde, torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="score network"):
        probability_flow_sample(lambda t, x: x[:, :1], sde, prior)
    with pytest.raises(ValueError, match="predictor"):
        predictor_corrector_sample(_exact_score(sde), sde, prior, predictor="heun")
    with pytest.raises(ValueError, match="snr"):
        predictor_corrector_sample(_exact_score(sde), sde, prior, snr=-1.0)
    with pytest.raises(TypeError, match="sde"):
        reverse_sde_sample(_exact_score(sde), "vp", prior)
    with pytest.raises(ValueError, match="steps"):
        ancestral_sample(_exact_score(sde), sde, prior, steps=0)
