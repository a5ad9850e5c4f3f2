r"""Statistics of 2-D periodic fields: the radially averaged energy spectrum, enstrophy, extremes.

These are the diagnostics turbulence studies compare between simulations and surrogates (a generative
model of vorticity snapshots, a learned forecaster): the spectrum says whether each scale carries the
right energy, enstrophy and the largest vorticity whether the field's amplitude and intermittency are
right.

For a vorticity field :math:`\omega` on the periodic square :math:`[0, L)^2` with Fourier coefficients
:math:`\hat\omega_{\mathbf k} = N^{-2}\sum \omega\, e^{-i\boldsymbol\kappa\cdot\mathbf x}`,
:math:`\boldsymbol\kappa = 2\pi\mathbf k / L`, the velocity :math:`\mathbf u = \nabla^\perp\psi`,
:math:`\Delta\psi = -\omega`, has :math:`|\hat{\mathbf u}_{\mathbf k}|^2 = |\hat\omega_{\mathbf k}|^2 /
|\boldsymbol\kappa|^2`, so the kinetic energy per shell is

.. math:: E(k) = \sum_{k - 1/2 \le |\mathbf k| < k + 1/2}
   \frac{|\hat\omega_{\mathbf k}|^2}{2|\boldsymbol\kappa|^2},
   \qquad \sum_k E(k) = \tfrac12\langle|\mathbf u|^2\rangle

(Parseval; the modes beyond the last full shell, the corners of the square, are left out).
"""

from __future__ import annotations

import math

import torch

__all__ = ["radial_energy_spectrum", "enstrophy", "field_summary"]


def _check_field(field: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(field, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(field).__name__}")
    if field.ndim < 2 or field.shape[-1] != field.shape[-2] or field.shape[-1] < 4:
        raise ValueError(f"{name} must end with two equal spatial dimensions of size >= 4, "
                         f"got shape {tuple(field.shape)}")
    if not torch.isfinite(field).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return field


def radial_energy_spectrum(vorticity: torch.Tensor, *, length: float = 1.0):
    r"""Kinetic-energy spectrum :math:`E(k)` of 2-D vorticity fields, shells :math:`k = 1, \dots, N/2`.

    Parameters
    ----------
    vorticity : torch.Tensor
        Fields of shape ``(..., N, N)`` on a uniform periodic grid of side ``length``.
    length : float
        Side of the periodic square (sets the physical wavenumbers :math:`2\pi k/L`).

    Returns
    -------
    wavenumbers : torch.Tensor
        The integer shell indices ``1 .. N // 2``.
    spectrum : torch.Tensor
        ``(..., N // 2)``: the energy in each shell, per field.

    Examples
    --------
    >>> import math, torch
    >>> from physml.metrics import radial_energy_spectrum
    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> omega = torch.cos(2 * math.pi * 3 * x).expand(16, 16)  # one mode, k = 3
    >>> k, energy = radial_energy_spectrum(omega)
    >>> int(energy.argmax()) + 1, round(float(energy.sum() / energy.max()), 6)
    (3, 1.0)
    """
    vorticity = _check_field(vorticity, "vorticity")
    if not (isinstance(length, int | float) and math.isfinite(length) and length > 0):
        raise ValueError(f"length must be a positive finite number, got {length!r}")
    size = vorticity.shape[-1]
    coefficients = torch.fft.fft2(vorticity) / size**2
    integer = torch.fft.fftfreq(size, d=1.0 / size, dtype=vorticity.real.dtype, device=vorticity.device)
    ky, kx = torch.meshgrid(integer, integer, indexing="ij")
    magnitude = torch.sqrt(kx.square() + ky.square())
    physical_squared = (2 * math.pi / length) ** 2 * magnitude.square()
    density = coefficients.abs().square() / (2 * torch.where(physical_squared > 0, physical_squared, 1.0))
    density = torch.where(magnitude > 0, density, torch.zeros_like(density))
    shells = torch.round(magnitude).long()  # shell k holds k - 1/2 <= |k| < k + 1/2
    count = size // 2
    flat = density.reshape(*density.shape[:-2], -1)
    spectrum = torch.zeros(*flat.shape[:-1], count + 1, dtype=flat.dtype, device=flat.device)
    index = shells.reshape(-1).clamp(max=count + 1)
    keep = index <= count
    spectrum.index_add_(-1, index[keep], flat[..., keep])
    wavenumbers = torch.arange(1, count + 1, device=vorticity.device)
    return wavenumbers, spectrum[..., 1:]


def enstrophy(vorticity: torch.Tensor) -> torch.Tensor:
    r"""Mean enstrophy :math:`\tfrac12\langle\omega^2\rangle` of each field ``(..., N, N)`` → ``(...)``.

    Examples
    --------
    >>> import torch
    >>> from physml.metrics import enstrophy
    >>> float(enstrophy(torch.full((4, 4), 2.0)))
    2.0
    """
    vorticity = _check_field(vorticity, "vorticity")
    return 0.5 * vorticity.square().mean(dim=(-2, -1))


def field_summary(vorticity: torch.Tensor) -> torch.Tensor:
    """Per-field summary statistics ``(..., 2)``: enstrophy and the largest absolute vorticity.

    Examples
    --------
    >>> import torch
    >>> from physml.metrics import field_summary
    >>> field_summary(torch.tensor([[1.0, -3.0], [0.0, 2.0]]).repeat(2, 2)).tolist()
    [1.75, 3.0]
    """
    vorticity = _check_field(vorticity, "vorticity")
    largest = vorticity.abs().amax(dim=(-2, -1))
    return torch.stack([enstrophy(vorticity), largest], dim=-1)
