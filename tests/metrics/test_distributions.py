"""Distribution metrics: exact values, brute-force and SciPy cross-checks, and Monte-Carlo behaviour."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from physml.metrics import (
    DEFAULT_MMD_BANDWIDTHS,
    energy_distance,
    maximum_mean_discrepancy,
    negative_log_likelihood,
    normalized_path_energy,
    path_energy,
    wasserstein2_distance,
)


def _normal(n, seed, dim=2, shift=0.0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_w2_of_a_translation_is_the_shift_length():
    # For equal-size empirical measures the identity matching is optimal for a pure translation.
    x = _normal(300, 0)
    assert wasserstein2_distance(x, x + torch.tensor([3.0, -4.0], dtype=torch.float64)) == pytest.approx(
        5.0, rel=1e-9
    )
    assert wasserstein2_distance(x, x) == 0.0


@pytest.mark.parametrize("size, seed", [(4, 0), (5, 1), (6, 2)])
def test_w2_equals_brute_force_over_matchings(size, seed):
    x, y = _normal(size, seed), _normal(size, seed + 10, shift=1.0)
    cost = torch.cdist(x, y).square()
    best = min(float(cost[range(size), list(p)].mean()) for p in itertools.permutations(range(size)))
    assert wasserstein2_distance(x, y) == pytest.approx(math.sqrt(best), rel=1e-10)


def test_w2_with_unequal_sizes_in_one_dimension():
    # 1-D: W2 is the L2 distance between quantile functions. x = {0, 1} (mass 1/2 each) and
    # y = {0, 0.5, 1, 1.5} (mass 1/4 each): the monotone coupling sends 0 -> {0, 0.5} and 1 -> {1, 1.5},
    # so W2^2 = (0 + 0.25 + 0 + 0.25) / 4.
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [0.5], [1.0], [1.5]], dtype=torch.float64)
    assert wasserstein2_distance(x, y) == pytest.approx(math.sqrt(0.125), rel=1e-12)


def test_mmd_closed_form_for_two_points():
    # x = {0}, y = {1}: MMD^2 = k(0,0) + k(1,1) - 2 k(0,1) = 2 * 5 - 2 * sum_sigma exp(-1 / (2 sigma^2)).
    expected = 10.0 - 2.0 * sum(math.exp(-1.0 / (2.0 * sigma**2)) for sigma in DEFAULT_MMD_BANDWIDTHS)
    value = maximum_mean_discrepancy(torch.zeros(1, 1), torch.ones(1, 1))
    assert value == pytest.approx(expected, rel=1e-12)


def test_mmd_and_energy_distance_vanish_for_identical_samples_and_grow_with_a_shift():
    x = _normal(500, 0)
    assert maximum_mean_discrepancy(x, x) == 0.0
    assert energy_distance(x, x) == 0.0
    shifted = [maximum_mean_discrepancy(x, x + shift) for shift in (0.25, 0.5, 1.0)]
    energies = [energy_distance(x, x + shift) for shift in (0.25, 0.5, 1.0)]
    assert 0.0 < shifted[0] < shifted[1] < shifted[2]
    assert 0.0 < energies[0] < energies[1] < energies[2]


def test_unbiased_estimators_are_centred_for_two_draws_of_one_distribution():
    # Independent draws of N(0, I): the U-statistics have mean 0. Their spread is estimated from 20 repeats;
    # a single value must lie within 4 of those standard deviations, and the repeat mean within 4 s.e.
    mmd = [
        maximum_mean_discrepancy(_normal(200, 2 * k), _normal(200, 2 * k + 1), biased=False)
        for k in range(20)
    ]
    energy = [energy_distance(_normal(200, 2 * k), _normal(200, 2 * k + 1), biased=False) for k in range(20)]
    for values in (np.array(mmd), np.array(energy)):
        assert abs(values.mean()) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    # ... while a shift of 0.5 standard deviations is far outside that spread.
    assert energy_distance(_normal(200, 0), _normal(200, 1, shift=0.5), biased=False) > 10 * np.std(energy)


def test_energy_distance_matches_scipy_in_one_dimension():
    x, y = _normal(300, 0, dim=1), _normal(250, 1, dim=1, shift=0.3)
    reference = scipy.stats.energy_distance(x[:, 0].numpy(), y[:, 0].numpy())  # SciPy returns the square root
    assert energy_distance(x, y) == pytest.approx(reference**2, rel=1e-10)


def test_negative_log_likelihood_helper():
    normal = torch.distributions.Normal(
        torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    )
    log_prob = lambda x: normal.log_prob(x).sum(dim=1)  # noqa: E731
    x = _normal(101, 0)
    expected = float(-log_prob(x).mean())
    assert negative_log_likelihood(log_prob, x) == pytest.approx(expected, rel=1e-12)
    assert negative_log_likelihood(log_prob, x, batch_size=7) == pytest.approx(expected, rel=1e-12)
    bits = negative_log_likelihood(log_prob, x, bits_per_dimension=True)
    assert bits == pytest.approx(expected / (2 * math.log(2)), rel=1e-12)
    mean, error = negative_log_likelihood(log_prob, x, return_standard_error=True)
    assert error == pytest.approx(float((-log_prob(x)).std()) / math.sqrt(101), rel=1e-12)
    with pytest.raises(ValueError, match="finite"):
        negative_log_likelihood(log_prob, torch.full((3, 2), float("nan")))


def test_path_energy_of_straight_and_rotating_flows():
    x0 = _normal(200, 0) * 0.1 + torch.tensor([3.0, 0.0], dtype=torch.float64)
    shift = torch.tensor([1.0, 2.0], dtype=torch.float64)
    straight = lambda t, x: shift.expand_as(x)  # noqa: E731
    assert path_energy(straight, x0) == pytest.approx(5.0, rel=1e-10)
    assert normalized_path_energy(straight, x0, x0 + shift) == pytest.approx(0.0, abs=1e-9)
    # Rotation by a quarter turn: speed |omega x| is constant along each circle, PE = omega^2 mean |x0|^2,
    # longer than the straight (optimal) path, so NPE > 0 and equals (PE - W2^2) / W2^2.
    omega = math.pi / 2
    rotate = lambda t, x: omega * torch.stack([-x[:, 1], x[:, 0]], dim=1)  # noqa: E731
    target = torch.stack([-x0[:, 1], x0[:, 0]], dim=1)
    energy = omega**2 * float(x0.square().sum(dim=1).mean())
    assert path_energy(rotate, x0, rtol=1e-10, atol=1e-10) == pytest.approx(energy, rel=1e-8)
    squared = wasserstein2_distance(x0, target) ** 2
    npe = normalized_path_energy(rotate, x0, target, rtol=1e-10, atol=1e-10)
    assert npe == pytest.approx((energy - squared) / squared, rel=1e-7)
    assert npe > 0.2  # ~ (pi^2 / 4 * 9) / 18 - 1 = 0.23


def test_bad_input():
    with pytest.raises(ValueError, match="same sample dimension"):
        energy_distance(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="x must be finite"):
        wasserstein2_distance(torch.tensor([[float("nan")]]), torch.zeros(1, 1))
    with pytest.raises(TypeError, match="y"):
        maximum_mean_discrepancy(torch.zeros(2, 1), [[0.0]])
    with pytest.raises(ValueError, match="bandwidths"):
        maximum_mean_discrepancy(torch.zeros(2, 1), torch.zeros(2, 1), bandwidths=(0.0,))
    with pytest.raises(ValueError, match="undefined"):
        normalized_path_energy(lambda t, x: x, torch.zeros(3, 2), torch.zeros(3, 2))
