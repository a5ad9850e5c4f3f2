"""Moment-constrained convolution filters (PDE-Net, Long et al. 2018; PDE-Net 2.0, 2019).

A filter ``f`` of size ``q`` per dim has the moment matrix

    M(f)[i, j] = 1 / (i! j!) Σ_{k, l} k^i l^j f[k, l]

(offsets ``k, l`` from the centre; one index per spatial dim).  By Taylor's theorem, the correlation of ``f``
with a smooth field on a grid of spacing ``h`` is Σ_{i, j} M[i, j] h^{i+j} ∂^i_y ∂^j_x u.  So ``f / h^{a+b}``
approximates ∂^a_y ∂^b_x u to order ``accuracy`` when every moment of total order below
``a + b + accuracy`` is fixed (1 at ``(a, b)``, 0 elsewhere); the higher moments are free and learned.
The map from a filter to its moments is invertible (``M = V f Vᵀ`` with ``V[i, k] = k^i / i!``), so the
filter is parameterised by its moments and the constraints hold exactly.

``accuracy="frozen"`` fixes every moment: the filter is the unique (most accurate) finite-difference
stencil on its ``q^d`` points.  Boundaries are imposed by :func:`physml.operators.pad` before the
convolution, so a filter bank returns fields of the input's grid shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from ..operators import pad


def moment_transform(kernel_size: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """``V[i, k] = (k - c)^i / i!`` (``c`` the centre): moments are ``V f Vᵀ`` in 2-D, ``V f`` in 1-D.

    Examples
    --------
    >>> moment_transform(3).tolist()
    [[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [0.5, 0.0, 0.5]]
    """
    if (
        isinstance(kernel_size, bool)
        or not isinstance(kernel_size, int)
        or kernel_size < 1
        or kernel_size % 2 == 0
    ):
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    offsets = torch.arange(kernel_size, dtype=dtype, device=device) - (kernel_size - 1) / 2
    powers = torch.arange(kernel_size, dtype=dtype, device=device)
    factorials = torch.tensor([math.factorial(i) for i in range(kernel_size)], dtype=dtype, device=device)
    return offsets[None, :] ** powers[:, None] / factorials[:, None]


def moments_of(kernel: torch.Tensor) -> torch.Tensor:
    """Moment array of a filter (last ``d`` dims, each of odd size ``q``; ``d`` = 1 or 2).

    Examples
    --------
    >>> kernel = torch.tensor([[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]], dtype=torch.float64)  # ∂/∂x
    >>> moments_of(kernel)[0, 1].item(), moments_of(kernel)[0, 0].item()
    (1.0, 0.0)
    """
    if kernel.ndim < 1:
        raise ValueError("kernel must have at least one dimension")
    q = kernel.shape[-1]
    transform = moment_transform(q, kernel.dtype, kernel.device)
    if kernel.ndim >= 2 and kernel.shape[-2] == q:
        return transform @ kernel @ transform.T
    return kernel @ transform.T


def kernel_of(moments: torch.Tensor, ndim: int) -> torch.Tensor:
    """Inverse of :func:`moments_of` for ``ndim``-dimensional filters."""
    q = moments.shape[-1]
    inverse = torch.linalg.inv(moment_transform(q, moments.dtype, moments.device))
    if ndim == 2:
        return inverse @ moments @ inverse.T
    return moments @ inverse.T


def huber_l1(values: torch.Tensor, scale: float) -> torch.Tensor:
    """Σ Huber-smoothed |x|: x²/(2s) for |x| ≤ s, |x| − s/2 beyond (PDE-Net 2.0's sparsity penalty)."""
    magnitude = values.abs()
    return torch.where(magnitude <= scale, magnitude**2 / (2 * scale), magnitude - scale / 2).sum()


def _multi_index(derivative, ndim: int) -> tuple[int, ...]:
    derivative = tuple(int(order) for order in derivative)
    if len(derivative) != ndim or any(order < 0 for order in derivative):
        raise ValueError(
            f"derivative must hold {ndim} non-negative orders (one per spatial dim), got {derivative}"
        )
    return derivative


class MomentFilterBank(nn.Module):
    """Moment-constrained filters for several derivatives, applied to every channel in one convolution.

    Parameters
    ----------
    derivatives : sequence of tuple of int
        Derivative orders per spatial dim, e.g. ``[(0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]`` for
        ``u_x, u_y, u_xx, u_xy, u_yy`` on a ``(y, x)`` grid; ``(0, 0)`` is the identity.
    spacing : sequence of float
        Grid spacing per spatial dim (1 or 2 dims).
    kernel_size : int
        Odd filter width ``q`` per dim (PDE-Net 2.0: 5).
    accuracy : int or "frozen"
        Order of accuracy the moment constraints impose (PDE-Net 2.0's ``constraint = 2``), or
        ``"frozen"`` for fixed finite-difference stencils.
    boundary : str or sequence of str
        Boundary per dim for :func:`physml.operators.pad` (``"periodic"``, ``"dirichlet"``, ``"neumann"``).
    dtype, device
        Of the moment parameters (float64 by default: PDE-Net 2.0 trains in double precision).

    Attributes
    ----------
    free_moments : torch.nn.Parameter
        The learnable moments of all filters, flattened (empty for ``"frozen"``).

    Examples
    --------
    >>> bank = MomentFilterBank([(0, 1), (2, 0)], spacing=[0.1, 0.1], kernel_size=5, accuracy=2)
    >>> y, x = torch.meshgrid(torch.arange(32.) * 0.1, torch.arange(32.) * 0.1, indexing="ij")
    >>> field = torch.sin(2 * math.pi * x / 3.2)[None, None].double()
    >>> bank(field).shape                    # (batch, channels, derivatives, *grid)
    torch.Size([1, 1, 2, 32, 32])
    """

    def __init__(
        self,
        derivatives: Sequence[Sequence[int]],
        spacing: Sequence[float],
        *,
        kernel_size: int = 5,
        accuracy: int | str = 2,
        boundary: str | Sequence[str] = "periodic",
        dtype=torch.float64,
        device=None,
    ):
        super().__init__()
        spacing = [float(step) for step in spacing]
        ndim = len(spacing)
        if ndim not in (1, 2):
            raise ValueError(f"spacing must have 1 or 2 entries (spatial dims), got {len(spacing)}")
        if not all(step > 0 and math.isfinite(step) for step in spacing):
            raise ValueError(f"spacing must be positive and finite, got {spacing}")
        derivatives = [_multi_index(derivative, ndim) for derivative in derivatives]
        if not derivatives:
            raise ValueError("derivatives must list at least one derivative")
        transform = moment_transform(kernel_size, dtype, device)
        if accuracy != "frozen":
            if isinstance(accuracy, bool) or not isinstance(accuracy, int) or accuracy < 1:
                raise ValueError(f"accuracy must be a positive integer order or 'frozen', got {accuracy!r}")
        for derivative in derivatives:
            if max(derivative) >= kernel_size:
                raise ValueError(
                    f"a filter of width {kernel_size} cannot approximate derivative {derivative}: "
                    f"orders must be below kernel_size"
                )
            if accuracy != "frozen" and sum(derivative) + accuracy > kernel_size:
                # Moments of order up to |α| + accuracy − 1 along one axis must exist in a q-point filter.
                raise ValueError(
                    f"accuracy {accuracy} for derivative {derivative} needs moments of order up to "
                    f"{sum(derivative) + accuracy - 1}, more than a {kernel_size}-point filter has; "
                    f"use a larger kernel_size or a lower accuracy"
                )
        self.ndim = ndim
        self.kernel_size = kernel_size
        self.accuracy = accuracy
        self.derivatives = derivatives
        self.spacing = spacing
        self.boundary = [boundary] * ndim if isinstance(boundary, str) else list(boundary)
        if len(self.boundary) != ndim:
            raise ValueError(f"boundary must have one entry per spatial dim ({ndim}), got {self.boundary}")
        shape = (len(derivatives),) + (kernel_size,) * ndim
        target = torch.zeros(shape, dtype=dtype, device=device)
        free = torch.zeros(shape, dtype=torch.bool, device=device)
        grids = torch.meshgrid(*[torch.arange(kernel_size, device=device)] * ndim, indexing="ij")
        total_order = sum(grids)
        for index, derivative in enumerate(derivatives):
            target[(index, *derivative)] = 1.0
            if accuracy != "frozen":
                free[index] = total_order >= sum(derivative) + accuracy
        self.register_buffer("target_moments", target)
        self.register_buffer("free_mask", free)
        self.register_buffer("inverse_transform", torch.linalg.inv(transform))
        scale = torch.tensor(
            [
                math.prod(h**order for h, order in zip(spacing, derivative, strict=True))
                for derivative in derivatives
            ],
            dtype=dtype,
            device=device,
        )
        self.register_buffer("scale", scale)
        # Free moments start at zero: the filters start as the frozen (most accurate) stencils.
        self.free_moments = nn.Parameter(torch.zeros(int(free.sum()), dtype=dtype, device=device))

    def moments(self) -> torch.Tensor:
        """Moment arrays of all filters, ``(n_derivatives, q, ...)``: fixed ones plus the learned ones."""
        moments = self.target_moments.clone()
        moments[self.free_mask] = self.free_moments
        return moments

    def kernels(self) -> torch.Tensor:
        """Filters in grid units (before division by the spacing powers), ``(n_derivatives, q, ...)``."""
        inverse = self.inverse_transform
        moments = self.moments()
        if self.ndim == 2:
            return inverse @ moments @ inverse.T
        return moments @ inverse.T

    def moment_penalty(self, scale: float = 1e-2) -> torch.Tensor:
        """Huber-L1 of the free moments (PDE-Net 2.0's moment sparsity, s = 1e-2)."""
        return huber_l1(self.free_moments, scale)

    def weights(self) -> torch.Tensor:
        """Filters in physical units (divided by the spacing powers), ``(n_derivatives, q, ...)``."""
        return self.kernels() / self.scale.view(-1, *([1] * self.ndim))

    def mirrored_first_derivatives(self) -> torch.Tensor:
        """``-f`` reflected along its axis for every first-derivative filter ``f``, ``(ndim, q, ...)``.

        The mirror image approximates the same derivative to the same order (its moments are those of
        ``f`` times (−1)^(i+1)); for a filter that learned to lean one way, it leans the other way.
        PDE-Net 2.0's pseudo-upwind picks between the two.  Axis ``a`` of the result is ∂/∂(dim a).
        """
        weights = self.weights()
        mirrored = []
        for axis in range(self.ndim):
            unit = tuple(int(axis == other) for other in range(self.ndim))
            if unit not in self.derivatives:
                raise ValueError(
                    f"the bank has no first derivative along dim {axis}; it holds {self.derivatives}"
                )
            mirrored.append(-weights[self.derivatives.index(unit)].flip(axis))
        return torch.stack(mirrored)

    def apply(self, field: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Correlate every channel of ``field`` ``(batch, channels, *grid)`` with each of ``weights``
        ``(n, q, ...)`` after padding by the boundaries: ``(batch, channels, n, *grid)``."""
        if field.ndim != 2 + self.ndim:
            raise ValueError(
                f"field must have shape (batch, channels, *grid) with {self.ndim} grid dims, got "
                f"{tuple(field.shape)}"
            )
        batch, channels = field.shape[:2]
        grid = field.shape[2:]
        padded = pad(field.reshape(batch * channels, 1, *grid), self.kernel_size // 2, self.boundary)
        convolution = functional.conv2d if self.ndim == 2 else functional.conv1d
        out = convolution(padded, weights.to(field.dtype).unsqueeze(1))
        return out.reshape(batch, channels, weights.shape[0], *grid)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """Derivatives of ``field`` ``(batch, channels, *grid)``: ``(batch, channels, derivative, *grid)``."""
        return self.apply(field, self.weights())
