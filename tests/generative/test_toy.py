"""Toy distributions: torchcfm's and FFJORD's formulas, checked numerically."""

import math

import pytest
import torch

from physml.generative.toy import (
    TOY_DISTRIBUTIONS,
    checkerboard,
    eight_gaussians,
    moons,
    rings,
    sample_toy,
    swissroll,
)

N = 40000


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_eight_gaussians_match_torchcfm_scale_and_std():
    points, labels = eight_gaussians(N, generator=_generator(), dtype=torch.float64, return_labels=True)
    # torchcfm's centre list (utils.eight_normal_sample), times scale = 5.
    diagonal = 1 / math.sqrt(2)
    centres = 5.0 * torch.tensor(
        [
            (1, 0),
            (-1, 0),
            (0, 1),
            (0, -1),
            (diagonal, diagonal),
            (diagonal, -diagonal),
            (-diagonal, diagonal),
            (-diagonal, -diagonal),
        ],
        dtype=torch.float64,
    )
    residuals = points - centres[labels]
    # torchcfm passes sqrt(0.1) as the covariance: std = 0.1 ** 0.25 = 0.562, not sqrt(0.1) = 0.316.
    # Sample std of N normals has standard error std / sqrt(2N) = 0.002; sample mean std / sqrt(N) = 0.003.
    expected_std = 0.1**0.25
    assert (residuals.std(dim=0) - expected_std).abs().max() < 4 * expected_std / math.sqrt(2 * N)
    assert residuals.mean(dim=0).abs().max() < 4 * expected_std / math.sqrt(N)
    # Components are equally likely: binomial standard error sqrt(p (1 - p) / N).
    frequencies = labels.bincount(minlength=8).double() / N
    assert (frequencies - 1 / 8).abs().max() < 4 * math.sqrt((1 / 8) * (7 / 8) / N)
    # The centres are those 8 points on the radius-5 circle: the nearest one is the point's own centre except
    # in the far tails (half the neighbour distance is 3.4 std: expected rate 6.7e-4, s.e. 1.3e-4).
    nearest = torch.cdist(points, centres).argmin(dim=1)
    assert float((nearest != labels).double().mean()) < 6.7e-4 + 4 * 1.3e-4
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 5.0, dtype=torch.float64))
    assert eight_gaussians(3, generator=_generator()).dtype == torch.float32


def test_moons_follow_torchdyn_construction_scaled_as_torchcfm():
    n = 1001
    points = moons(n, generator=_generator(), dtype=torch.float64)
    outer, inner = n // 2, n - n // 2
    outer_angles = torch.linspace(0, math.pi, outer, dtype=torch.float64)
    inner_angles = torch.linspace(0, math.pi, inner, dtype=torch.float64)
    arcs = torch.cat(
        [
            torch.stack([torch.cos(outer_angles), torch.sin(outer_angles)], 1),
            torch.stack([1 - torch.cos(inner_angles), 0.5 - torch.sin(inner_angles)], 1),
        ]
    )
    # torchcfm: 3 * moons - 1, where torchdyn adds one uniform U[0, 0.2) shift to both coordinates.
    shifts = (points + 1.0) / 3.0 - arcs
    torch.testing.assert_close(shifts[:, 0], shifts[:, 1], rtol=0, atol=1e-12)
    assert float(shifts.min()) >= 0.0 and float(shifts.max()) < 0.2
    # Uniform on [0, 0.2): mean 0.1, standard error 0.2 / sqrt(12 n).
    assert abs(float(shifts[:, 0].mean()) - 0.1) < 4 * 0.2 / math.sqrt(12 * n)


def test_checkerboard_fills_the_black_squares_uniformly():
    points = checkerboard(N, generator=_generator(), dtype=torch.float64)
    assert float(points.min()) >= -4.0 and float(points.max()) < 4.0
    squares = torch.floor(points / 2.0).long()
    assert bool(((squares[:, 0] + squares[:, 1]) % 2 == 0).all())
    counts = ((squares[:, 0] + 2) * 4 + (squares[:, 1] + 2)).bincount(minlength=16)
    occupied = counts[counts > 0].double() / N
    assert occupied.numel() == 8
    assert (occupied - 1 / 8).abs().max() < 4 * math.sqrt((1 / 8) * (7 / 8) / N)
    # Within a square the points are uniform: the offset from the square's corner has mean 1 (side 2).
    offsets = points - 2.0 * squares
    assert (offsets.mean(dim=0) - 1.0).abs().max() < 4 * (2 / math.sqrt(12)) / math.sqrt(N)


def test_rings_have_ffjord_radii_and_noise():
    n = 4003
    points = rings(n, generator=_generator(), dtype=torch.float64)
    radii = torch.tensor([3.0, 2.25, 1.5, 0.75], dtype=torch.float64)
    radius = points.norm(dim=1)
    nearest = (radius[:, None] - radii[None, :]).abs().argmin(dim=1)
    assert nearest.bincount(minlength=4).tolist() == [n // 4, n // 4, n // 4, n - 3 * (n // 4)]
    radial = radius - radii[nearest]
    # Radial part of N(0, 0.08^2 I) noise: std 0.08 (curvature corrections ~0.08^2 / 0.75 ~ 0.01 relative).
    assert abs(float(radial.std()) - 0.08) < 4 * 0.08 / math.sqrt(2 * n) + 0.08 * 0.01


def test_swissroll_moments_match_ffjord_formula():
    points = swissroll(N, generator=_generator(), dtype=torch.float64)
    # 5 p = (s cos s, s sin s) + N(0, I), s ~ U[1.5 pi, 4.5 pi]: E|5p|^2 = E[s^2] + 2.
    low, high = 1.5 * math.pi, 4.5 * math.pi
    second_moment = (high**3 - low**3) / (3 * (high - low)) + 2.0
    squared = (5 * points).square().sum(dim=1)
    assert abs(float(squared.mean()) - second_moment) < 4 * float(squared.std()) / math.sqrt(N)
    s = torch.linspace(low, high, 200001, dtype=torch.float64)
    expected_mean = torch.stack([(s * torch.cos(s)).mean(), (s * torch.sin(s)).mean()]) / 5
    standard_error = points.std(dim=0) / math.sqrt(N)
    assert ((points.mean(dim=0) - expected_mean).abs() < 4 * standard_error).all()


@pytest.mark.parametrize("name", sorted(TOY_DISTRIBUTIONS))
def test_generators_are_reproducible_and_validate_n(name):
    first = sample_toy(name, 50, generator=_generator(3))
    second = sample_toy(name, 50, generator=_generator(3))
    assert first.shape == (50, 2) and first.dtype == torch.float32
    assert torch.equal(first, second)
    assert not torch.equal(first, sample_toy(name, 50, generator=_generator(4)))
    with pytest.raises(ValueError, match="n"):
        sample_toy(name, 0)
    with pytest.raises(TypeError, match="n"):
        sample_toy(name, 2.5)
    with pytest.raises(ValueError, match="toy distribution"):
        sample_toy("spirals", 5)
