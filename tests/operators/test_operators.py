"""Spatial operators: spectral accuracy, stencil orders, boundary handling, velocity from vorticity."""

import math

import numpy as np
import pytest
import torch

from physml.operators import (
    dealias_mask,
    gradient,
    laplacian,
    spectral_derivative,
    spectral_laplacian,
    velocity_from_vorticity,
)

LENGTH = 2 * math.pi


def _grid(n):
    x = torch.arange(n, dtype=torch.float64) * LENGTH / n
    return x.view(-1, 1), x.view(1, -1)


def test_spectral_derivatives_are_exact_for_band_limited_fields():
    y, x = _grid(32)
    field = torch.sin(2 * y) * torch.cos(3 * x)
    assert torch.allclose(spectral_derivative(field, [LENGTH, LENGTH], [1, 0]),
                          2 * torch.cos(2 * y) * torch.cos(3 * x), atol=1e-12)
    assert torch.allclose(spectral_derivative(field, [LENGTH, LENGTH], [0, 3]),
                          27 * torch.sin(2 * y) * torch.sin(3 * x), atol=1e-10)
    assert torch.allclose(spectral_laplacian(field, [LENGTH, LENGTH]), -13 * field, atol=1e-11)


@pytest.mark.parametrize("stencil, order", [("second_order", 2), ("fourth_order", 4)])
def test_laplacian_stencil_order(stencil, order):
    errors, sizes = [], [16, 32, 64]
    for n in sizes:
        y, x = _grid(n)
        field = torch.sin(y) * torch.cos(2 * x)
        approx = laplacian(field, [LENGTH / n] * 2, ["periodic"] * 2, stencil=stencil)
        errors.append(float((approx + 5 * field).abs().max()))
    slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.2, (slope, errors)


def test_isotropic_laplacian_is_second_order_and_needs_square_cells():
    errors = []
    for n in (16, 32, 64):
        y, x = _grid(n)
        field = torch.sin(y) * torch.cos(2 * x)
        errors.append(float((laplacian(field, [LENGTH / n] * 2, ["periodic"] * 2, "isotropic_9") + 5 * field).abs().max()))
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.1) and errors[1] / errors[2] == pytest.approx(4, rel=0.1)
    with pytest.raises(ValueError, match="equal spacing"):
        laplacian(torch.zeros(4, 4), [0.1, 0.2], ["periodic"] * 2, "isotropic_9")


def test_boundaries_zero_flux_and_zero_value():
    # Neumann: a constant field has zero Laplacian; Dirichlet (antisymmetric ghost cells): it does not.
    field = torch.ones(1, 8, dtype=torch.float64)
    assert torch.count_nonzero(laplacian(field, [0.1], ["neumann"])) == 0
    dirichlet = laplacian(field, [0.1], ["dirichlet"])
    assert dirichlet[0, 0] < 0 and dirichlet[0, -1] < 0 and torch.count_nonzero(dirichlet[0, 1:-1]) == 0


def test_gradient_central_and_upwind():
    y, x = _grid(64)
    field = torch.sin(x).expand(64, 64)
    central = gradient(field, [LENGTH / 64] * 2, ["periodic"] * 2)
    assert central.shape == (2, 64, 64)
    assert torch.allclose(central[1], torch.cos(x).expand(64, 64), atol=2e-3)
    assert float(central[0].abs().max()) < 1e-12
    velocity = torch.ones(2, 64, 64, dtype=torch.float64)
    upwind = gradient(field, [LENGTH / 64] * 2, ["periodic"] * 2, scheme="upwind", velocity=velocity)
    assert torch.allclose(upwind[1], (field - field.roll(1, -1)) / (LENGTH / 64))


def test_velocity_from_vorticity_of_a_cellular_flow():
    y, x = _grid(32)
    stream = torch.cos(x) * torch.cos(y)  # ψ; ω = -Δψ = 2ψ
    velocity = velocity_from_vorticity(2 * stream, (LENGTH, LENGTH))
    assert torch.allclose(velocity[0], -torch.cos(x) * torch.sin(y), atol=1e-12)  # u = ∂ψ/∂y
    assert torch.allclose(velocity[1], torch.sin(x) * torch.cos(y), atol=1e-12)  # v = -∂ψ/∂x
    divergence = spectral_derivative(velocity[0], [LENGTH] * 2, [0, 1]) + spectral_derivative(velocity[1], [LENGTH] * 2, [1, 0])
    assert float(divergence.abs().max()) < 1e-12


def test_dealias_mask_keeps_two_thirds():
    mask = dealias_mask((12, 12))
    assert mask.shape == (12, 7)
    kept_x = torch.fft.rfftfreq(12, 1 / 12)[mask[0]]
    assert kept_x.max() < 4 and 3 in kept_x.tolist()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown stencil 'sixth'"):
        laplacian(torch.zeros(8), [0.1], ["periodic"], stencil="sixth")
    with pytest.raises(ValueError, match="boundary must be"):
        laplacian(torch.zeros(8), [0.1], ["wrap"])
    with pytest.raises(ValueError, match="orders must have one entry"):
        spectral_derivative(torch.zeros(8, 8), [1.0, 1.0], [1])
