"""Moment-constrained filters: the constraints hold to machine precision, and give the promised order."""

import math

import pytest
import torch

from physml.nn.moment_filters import (
    MomentFilterBank,
    kernel_of,
    moment_transform,
    moments_of,
)

DERIVATIVES_2D = [(0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]


def randomised(bank: MomentFilterBank, seed: int = 0) -> MomentFilterBank:
    with torch.no_grad():
        bank.free_moments.copy_(
            torch.randn(
                bank.free_moments.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
            )
        )
    return bank


@pytest.mark.parametrize("kernel_size, accuracy", [(5, 2), (5, 1), (7, 3), (3, 1)])
def test_fixed_moments_hold_to_machine_precision_whatever_the_free_ones(kernel_size, accuracy):
    derivatives = [d for d in DERIVATIVES_2D if sum(d) + accuracy <= kernel_size]
    bank = randomised(MomentFilterBank(derivatives, [0.3, 0.3], kernel_size=kernel_size, accuracy=accuracy))
    moments = moments_of(bank.kernels()).detach()
    orders = sum(torch.meshgrid(torch.arange(kernel_size), torch.arange(kernel_size), indexing="ij"))
    for index, (a, b) in enumerate(derivatives):
        constrained = orders < a + b + accuracy
        target = torch.zeros(kernel_size, kernel_size, dtype=torch.float64)
        target[a, b] = 1.0
        assert float((moments[index] - target)[constrained].abs().max()) < 1e-12
        # The free moments are exactly the learned parameters.
        assert float((moments[index] - bank.moments()[index].detach()).abs().max()) < 1e-12
    assert bank.free_moments.numel() == sum(int((orders >= sum(d) + accuracy).sum()) for d in derivatives)


def test_moments_and_kernels_are_inverse_maps():
    kernel = torch.randn(3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert float((kernel_of(moments_of(kernel), 2) - kernel).abs().max()) < 1e-12
    line = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert float((kernel_of(moments_of(line), 1) - line).abs().max()) < 1e-12
    assert moment_transform(5)[2].tolist() == [2.0, 0.5, 0.0, 0.5, 2.0]  # (k - 2)^2 / 2!


def test_frozen_filters_are_the_classical_stencils():
    bank = MomentFilterBank([(0, 1), (0, 2)], [1.0, 1.0], kernel_size=3, accuracy="frozen")
    kernels = bank.kernels().detach()
    assert kernels[0, 1].tolist() == pytest.approx([-0.5, 0.0, 0.5], abs=1e-14)
    assert kernels[1, 1].tolist() == pytest.approx([1.0, -2.0, 1.0], abs=1e-14)
    assert float(kernels[:, [0, 2]].abs().max()) < 1e-14
    assert bank.free_moments.numel() == 0


def _error(bank, points: int, derivative_index: int) -> float:
    step = 2 * math.pi / points
    y, x = torch.meshgrid(
        torch.arange(points, dtype=torch.float64) * step,
        torch.arange(points, dtype=torch.float64) * step,
        indexing="ij",
    )
    field = torch.sin(x + 2 * y) + torch.cos(2 * x - y)
    exact = {  # ∂_x, ∂_y, ∂_xx, ∂_xy, ∂_yy on the (y, x) grid
        0: torch.cos(x + 2 * y) - 2 * torch.sin(2 * x - y),
        1: 2 * torch.cos(x + 2 * y) + torch.sin(2 * x - y),
        2: -torch.sin(x + 2 * y) - 4 * torch.cos(2 * x - y),
        3: -2 * torch.sin(x + 2 * y) + 2 * torch.cos(2 * x - y),
        4: -4 * torch.sin(x + 2 * y) - torch.cos(2 * x - y),
    }[derivative_index]
    bank.spacing = [step, step]
    scale = torch.tensor([step ** sum(d) for d in bank.derivatives], dtype=torch.float64)
    bank.scale.copy_(scale)
    with torch.no_grad():
        approximation = bank(field[None, None])[0, 0, derivative_index]
    return float((approximation - exact).abs().max())


@pytest.mark.parametrize("accuracy", [1, 2, 3])
def test_observed_order_matches_the_constraint_with_random_free_moments(accuracy):
    bank = randomised(
        MomentFilterBank(DERIVATIVES_2D, [1.0, 1.0], kernel_size=7, accuracy=accuracy), seed=accuracy
    )
    for index in range(len(DERIVATIVES_2D)):
        coarse, fine = _error(bank, 32, index), _error(bank, 64, index)
        order = math.log2(coarse / fine)
        assert order > accuracy - 0.25, (DERIVATIVES_2D[index], order)


def test_one_dimensional_filters_and_gradients_reach_the_free_moments():
    bank = randomised(MomentFilterBank([(1,), (2,)], [0.1], kernel_size=5, accuracy=2))
    moments = moments_of(bank.kernels()).detach()
    assert float((moments[0, :3] - torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)).abs().max()) < 1e-12
    assert (
        float((moments[1, :4] - torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)).abs().max()) < 1e-12
    )
    field = torch.randn(2, 3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = bank(field)
    assert out.shape == (2, 3, 2, 40)
    out.square().sum().backward()
    assert bank.free_moments.grad is not None and float(bank.free_moments.grad.abs().max()) > 0
    assert float(bank.moment_penalty().detach()) > 0


def test_mirrored_first_derivative_filters_keep_the_constraints():
    bank = randomised(MomentFilterBank([(0, 0), (0, 1), (1, 0), (0, 2)], [0.5, 0.25], accuracy=2), seed=4)
    with torch.no_grad():
        mirrored = bank.mirrored_first_derivatives()
        weights = bank.weights()
    assert mirrored.shape == (2, 5, 5)
    # ∂/∂y (axis 0) and ∂/∂x (axis 1): the same constraints, in physical units.
    for axis, (index, step) in enumerate([(2, 0.5), (1, 0.25)]):
        moments = moments_of(mirrored[axis] * step)
        target = torch.zeros(5, 5, dtype=torch.float64)
        target[(1, 0) if axis == 0 else (0, 1)] = 1.0
        orders = sum(torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij"))
        assert float((moments - target)[orders < 3].abs().max()) < 1e-12
        assert float((mirrored[axis] + weights[index].flip(axis)).abs().max()) == 0.0
    # The learned, asymmetric filter differs from its mirror; applying it matches forward().
    assert float((mirrored[1] - weights[1]).abs().max()) > 1e-3
    field = torch.randn(1, 2, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(bank.apply(field, weights), bank(field))


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer, got 4"):
        MomentFilterBank([(0, 1)], [1.0, 1.0], kernel_size=4)
    with pytest.raises(
        ValueError, match=r"accuracy 4 for derivative \(0, 2\) needs moments of order up to 5"
    ):
        MomentFilterBank([(0, 2)], [1.0, 1.0], kernel_size=5, accuracy=4)
    with pytest.raises(ValueError, match="accuracy must be a positive integer order or 'frozen', got 0"):
        MomentFilterBank([(0, 1)], [1.0, 1.0], accuracy=0)
    with pytest.raises(ValueError, match="spacing must be positive"):
        MomentFilterBank([(0, 1)], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"derivative must hold 2 non-negative orders"):
        MomentFilterBank([(1,)], [1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"field must have shape \(batch, channels, \*grid\) with 2 grid dims"
    ):
        MomentFilterBank([(0, 1)], [1.0, 1.0])(torch.zeros(4, 4, dtype=torch.float64))
