"""Field statistics: the energy spectrum against closed forms and Parseval, enstrophy, bad input."""

import math

import pytest
import torch

from physml.metrics import enstrophy, field_summary, radial_energy_spectrum


def grid(size):
    coordinate = torch.arange(size, dtype=torch.float64) / size
    return torch.meshgrid(coordinate, coordinate, indexing="ij")


def test_single_mode_energy_matches_the_closed_form():
    # omega = A cos(2 pi (kx x + ky y)) -> psi = omega / |kappa|^2, E = A^2 / (4 |kappa|^2), all in shell |k|.
    y, x = grid(32)
    amplitude, kx, ky = 1.7, 3, 4
    omega = amplitude * torch.cos(2 * math.pi * (kx * x + ky * y))
    wavenumbers, energy = radial_energy_spectrum(omega)
    kappa_squared = (2 * math.pi) ** 2 * (kx**2 + ky**2)
    assert wavenumbers.tolist() == list(range(1, 17))
    assert energy[4].item() == pytest.approx(amplitude**2 / (4 * kappa_squared), rel=1e-12)
    assert energy.sum().item() == pytest.approx(energy[4].item(), rel=1e-12)


def test_parseval_against_the_velocity_from_the_stream_function():
    generator = torch.Generator().manual_seed(0)
    size = 32
    omega = torch.randn(3, size, size, generator=generator, dtype=torch.float64)
    # Remove the mean and the outer modes so that Parseval is exact.
    coefficients = torch.fft.fft2(omega)
    integer = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64)
    ky, kx = torch.meshgrid(integer, integer, indexing="ij")
    # Modes inside shell N/2 - 1 only: away from the Nyquist line, where a derivative is not real.
    inside = (torch.sqrt(kx**2 + ky**2) < size // 2 - 0.5) & ((kx != 0) | (ky != 0))
    coefficients = coefficients * inside
    omega = torch.fft.ifft2(coefficients).real
    kappa_squared = (2 * math.pi) ** 2 * (kx**2 + ky**2)
    psi_hat = torch.fft.fft2(omega) / torch.where(kappa_squared > 0, kappa_squared, 1.0) * inside
    u = torch.fft.ifft2(1j * 2 * math.pi * ky * psi_hat).real
    v = torch.fft.ifft2(-1j * 2 * math.pi * kx * psi_hat).real
    kinetic = 0.5 * (u.square() + v.square()).mean(dim=(-2, -1))
    _, energy = radial_energy_spectrum(omega)
    assert torch.allclose(energy.sum(-1), kinetic, rtol=1e-10)
    # A longer domain scales the physical wavenumbers by 1/L, so the energy by L^2.
    _, longer = radial_energy_spectrum(omega, length=2.0)
    assert torch.allclose(longer, 4 * energy, rtol=1e-12)


def test_enstrophy_and_summary():
    field = torch.tensor([[1.0, -3.0], [0.0, 2.0]], dtype=torch.float64).repeat(2, 2)
    assert enstrophy(field).item() == pytest.approx(0.5 * (1 + 9 + 0 + 4) / 4)
    assert field_summary(torch.stack([field, 2 * field])).tolist() == [[1.75, 3.0], [7.0, 6.0]]


@pytest.mark.parametrize(
    "bad, match",
    [(torch.zeros(8, 6), "equal spatial"), (torch.zeros(2, 2), "size >= 4"),
     (torch.full((4, 4), float("nan")), "NaN")],
)
def test_bad_fields_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        radial_energy_spectrum(bad)
    with pytest.raises(ValueError, match="length"):
        radial_energy_spectrum(torch.zeros(4, 4), length=-1.0)
