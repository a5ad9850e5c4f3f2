"""Pseudo-spectral operators on periodic grids (FFT along the trailing dimensions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def wavenumbers(n: int, length: float, *, real: bool = False, dtype=torch.float64, device=None) -> torch.Tensor:
    """Angular wavenumbers ``2π k / length`` of an ``n``-point periodic grid, in FFT order.

    ``real=True`` gives the half spectrum of ``torch.fft.rfft``.  The Nyquist mode of an even grid is
    set to zero, as odd derivatives of a real field must have no Nyquist component.

    Examples
    --------
    >>> wavenumbers(4, 2 * math.pi).tolist()
    [0.0, 1.0, 0.0, -1.0]
    """
    if n <= 0:
        raise ValueError(f"n must be a positive integer, got {n}")
    if not length > 0:
        raise ValueError(f"length must be positive, got {length}")
    frequencies = torch.fft.rfftfreq(n, d=1.0 / n) if real else torch.fft.fftfreq(n, d=1.0 / n)
    frequencies = frequencies.to(dtype=dtype, device=device)
    if n % 2 == 0:
        frequencies[n // 2] = 0.0
    return 2 * math.pi * frequencies / length


def _check_field(field: torch.Tensor, lengths: Sequence[float]) -> int:
    if not isinstance(field, torch.Tensor) or not field.is_floating_point():
        raise TypeError(f"field must be a real floating-point tensor, got {type(field).__name__}")
    ndim = len(lengths)
    if field.ndim < ndim:
        raise ValueError(f"field has {field.ndim} dimensions but lengths describe {ndim} spatial dimensions")
    return ndim


def _wave_vectors(shape: Sequence[int], lengths: Sequence[float], dtype, device, *, zero_nyquist=True):
    """Broadcastable wavenumber tensors for an rfftn over the trailing dimensions."""
    vectors = []
    ndim = len(shape)
    for axis, (n, length) in enumerate(zip(shape, lengths)):
        last = axis == ndim - 1
        if zero_nyquist:
            k = wavenumbers(n, length, real=last, dtype=dtype, device=device)
        else:
            frequencies = torch.fft.rfftfreq(n, d=1.0 / n) if last else torch.fft.fftfreq(n, d=1.0 / n)
            k = 2 * math.pi * frequencies.to(dtype=dtype, device=device) / length
        view = [1] * ndim
        view[axis] = -1
        vectors.append(k.view(view))
    return vectors


def spectral_derivative(field: torch.Tensor, lengths: Sequence[float], orders: Sequence[int]) -> torch.Tensor:
    """Partial derivative ∂^(o1+o2+...) field / ∂x1^o1 ∂x2^o2 ... on a periodic grid.

    Parameters
    ----------
    field : torch.Tensor
        Real field; the last ``len(lengths)`` dimensions are spatial.
    lengths : sequence of float
        Domain length along each spatial dimension.
    orders : sequence of int
        Derivative order along each spatial dimension.

    Examples
    --------
    >>> x = torch.linspace(0, 2 * math.pi, 65, dtype=torch.float64)[:-1]
    >>> derivative = spectral_derivative(torch.sin(x), [2 * math.pi], [1])
    >>> bool(torch.allclose(derivative, torch.cos(x)))
    True
    """
    ndim = _check_field(field, lengths)
    if len(orders) != ndim:
        raise ValueError(f"orders must have one entry per spatial dimension ({ndim}), got {list(orders)}")
    shape = field.shape[-ndim:]
    dims = tuple(range(-ndim, 0))
    spectrum = torch.fft.rfftn(field, dim=dims)
    factor = None
    # Even-order derivatives keep the Nyquist mode (its k² is real and meaningful); odd ones drop it.
    for k, order, k_full in zip(_wave_vectors(shape, lengths, field.dtype, field.device),
                                orders, _wave_vectors(shape, lengths, field.dtype, field.device, zero_nyquist=False)):
        if order == 0:
            continue
        term = (1j * (k if order % 2 else k_full)) ** order
        factor = term if factor is None else factor * term
    if factor is None:
        return field.clone()
    return torch.fft.irfftn(spectrum * factor, s=shape, dim=dims)


def spectral_laplacian(field: torch.Tensor, lengths: Sequence[float]) -> torch.Tensor:
    """Laplacian Σ ∂²/∂x_i² on a periodic grid (spectral accuracy)."""
    ndim = _check_field(field, lengths)
    shape = field.shape[-ndim:]
    dims = tuple(range(-ndim, 0))
    k_squared = sum(k**2 for k in _wave_vectors(shape, lengths, field.dtype, field.device, zero_nyquist=False))
    return torch.fft.irfftn(-k_squared * torch.fft.rfftn(field, dim=dims), s=shape, dim=dims)


def dealias_mask(shape: Sequence[int], *, real: bool = True, fraction: float = 2.0 / 3.0,
                 device=None) -> torch.Tensor:
    """Boolean mask of the modes kept by the 2/3 rule (|k_i| < fraction · n_i / 2 along every axis).

    The mask matches ``torch.fft.rfftn`` output when ``real=True`` (last axis halved).
    """
    masks = []
    ndim = len(shape)
    for axis, n in enumerate(shape):
        last = axis == ndim - 1 and real
        frequencies = torch.fft.rfftfreq(n, d=1.0 / n) if last else torch.fft.fftfreq(n, d=1.0 / n)
        keep = frequencies.abs() < fraction * (n / 2)
        view = [1] * ndim
        view[axis] = -1
        masks.append(keep.to(device).view(view))
    mask = masks[0]
    for other in masks[1:]:
        mask = mask & other
    return mask


def velocity_from_vorticity(vorticity: torch.Tensor, lengths: Sequence[float] = (1.0, 1.0)) -> torch.Tensor:
    """Velocity (u, v) of a 2-D periodic incompressible flow from its vorticity ω = ∂v/∂x - ∂u/∂y.

    The stream function solves Δψ = -ω; u = ∂ψ/∂y, v = -∂ψ/∂x.  Grid dimensions are ``(y, x)`` (the last
    two); the result stacks (u, v) in a new dimension before them: ``(..., 2, ny, nx)``.
    """
    _check_field(vorticity, lengths)
    ny, nx = vorticity.shape[-2:]
    length_y, length_x = lengths
    spectrum = torch.fft.rfftn(vorticity, dim=(-2, -1))
    ky, kx = _wave_vectors((ny, nx), (length_y, length_x), vorticity.dtype, vorticity.device)
    k_squared = ky**2 + kx**2
    k_squared_safe = torch.where(k_squared == 0, torch.ones_like(k_squared), k_squared)
    stream = spectrum / k_squared_safe
    stream = torch.where(k_squared == 0, torch.zeros_like(stream), stream)  # zero-mean stream function
    u = torch.fft.irfftn(1j * ky * stream, s=(ny, nx), dim=(-2, -1))
    v = torch.fft.irfftn(-1j * kx * stream, s=(ny, nx), dim=(-2, -1))
    return torch.stack([u, v], dim=-3)
