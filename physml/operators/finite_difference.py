"""Finite-difference stencils on uniform grids, with periodic, Dirichlet or Neumann boundaries.

Boundaries are imposed by padding (``periodic``: wrap; ``dirichlet``: the boundary value, zero by
default, mirrored antisymmetrically; ``neumann``: zero flux, mirrored symmetrically), then a stencil is
applied, so every operator returns a tensor of the input's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Laplacian stencils: name -> (half width, description).
LAPLACIAN_STENCILS = {
    "second_order": "3-point (1-D) / 5-point (2-D) second-order stencil",
    "fourth_order": "5-point-per-axis fourth-order stencil (-1, 16, -30, 16, -1)/12",
    "isotropic_9": "2-D 9-point isotropic stencil (corners 1/4, edges 1/2, centre -3), as in Gray–Scott codes",
}


def pad(field: torch.Tensor, width: int, boundary: Sequence[str]) -> torch.Tensor:
    """Pad the trailing ``len(boundary)`` dimensions by ``width`` cells according to the boundaries.

    ``dirichlet`` pads with the antisymmetric mirror (zero value on the boundary face between cells
    is approximated by -u at the ghost cells); ``neumann`` with the symmetric mirror; ``periodic`` wraps.
    """
    ndim = len(boundary)
    if field.ndim < ndim:
        raise ValueError(f"field has {field.ndim} dimensions, fewer than the {ndim} boundaries given")
    out = field
    for offset, condition in enumerate(reversed(boundary)):
        axis = field.ndim - 1 - offset
        if condition == "periodic":
            before = out.narrow(axis, out.shape[axis] - width, width)
            after = out.narrow(axis, 0, width)
        elif condition in ("neumann", "open"):
            before = out.narrow(axis, 0, width).flip(axis)
            after = out.narrow(axis, out.shape[axis] - width, width).flip(axis)
        elif condition == "dirichlet":
            before = -out.narrow(axis, 0, width).flip(axis)
            after = -out.narrow(axis, out.shape[axis] - width, width).flip(axis)
        else:
            raise ValueError(f"boundary must be periodic, dirichlet, neumann or open, got {condition!r}")
        out = torch.cat([before, out, after], dim=axis)
    return out


def _second_difference(padded: torch.Tensor, axis: int, width: int, n: int, stencil: str) -> torch.Tensor:
    def shifted(offset):
        return padded.narrow(axis, width + offset, n)

    if stencil == "fourth_order":
        return (-shifted(-2) + 16 * shifted(-1) - 30 * shifted(0) + 16 * shifted(1) - shifted(2)) / 12.0
    return shifted(-1) - 2 * shifted(0) + shifted(1)


def laplacian(field: torch.Tensor, spacing: Sequence[float], boundary: Sequence[str],
              stencil: str = "second_order") -> torch.Tensor:
    """Finite-difference Laplacian over the trailing ``len(spacing)`` dimensions.

    Parameters
    ----------
    field : torch.Tensor
        Field of shape ``(..., *grid)``.
    spacing : sequence of float
        Grid spacing along each spatial dimension.
    boundary : sequence of str
        ``periodic``, ``dirichlet`` (zero) or ``neumann`` (zero flux) per dimension.
    stencil : str
        One of :data:`LAPLACIAN_STENCILS`.

    Examples
    --------
    >>> import math
    >>> x = torch.arange(64, dtype=torch.float64) * (2 * math.pi / 64)
    >>> approx = laplacian(torch.sin(x), [2 * math.pi / 64], ["periodic"], stencil="fourth_order")
    >>> float((approx + torch.sin(x)).abs().max()) < 1e-5
    True
    """
    if stencil not in LAPLACIAN_STENCILS:
        raise ValueError(f"unknown stencil {stencil!r}; known stencils are: {', '.join(LAPLACIAN_STENCILS)}")
    ndim = len(spacing)
    if len(boundary) != ndim:
        raise ValueError(f"boundary must have one entry per spatial dimension ({ndim}), got {list(boundary)}")
    shape = field.shape[-ndim:]
    if stencil == "isotropic_9":
        if ndim != 2 or spacing[0] != spacing[1]:
            raise ValueError("the isotropic 9-point stencil needs a 2-D grid with equal spacing")
        padded = pad(field, 1, boundary)
        ny, nx = shape

        def at(dy, dx):
            return padded[..., 1 + dy: 1 + dy + ny, 1 + dx: 1 + dx + nx]

        edges = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)
        corners = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
        return (0.5 * edges + 0.25 * corners - 3.0 * at(0, 0)) / spacing[0] ** 2
    width = 2 if stencil == "fourth_order" else 1
    padded = pad(field, width, boundary)
    # Crop the padding of the other axes before differencing along one axis.
    total = None
    for index, step in enumerate(spacing):
        axis = field.ndim - ndim + index
        cropped = padded
        for other in range(ndim):
            if other != index:
                cropped = cropped.narrow(field.ndim - ndim + other, width, shape[other])
        term = _second_difference(cropped, axis, width, shape[index], stencil) / step**2
        total = term if total is None else total + term
    return total


def gradient(field: torch.Tensor, spacing: Sequence[float], boundary: Sequence[str],
             scheme: str = "central", velocity: torch.Tensor | None = None) -> torch.Tensor:
    """First derivatives along each trailing dimension, stacked in a new dimension before the grid.

    ``scheme="central"`` uses second-order central differences; ``scheme="upwind"`` uses first-order
    one-sided differences against the direction of ``velocity`` (same shape as the result), as in
    pseudo-upwind convection terms.
    """
    ndim = len(spacing)
    shape = field.shape[-ndim:]
    padded = pad(field, 1, boundary)
    derivatives = []
    for index, step in enumerate(spacing):
        axis = field.ndim - ndim + index
        cropped = padded
        for other in range(ndim):
            if other != index:
                cropped = cropped.narrow(field.ndim - ndim + other, 1, shape[other])
        forward = (cropped.narrow(axis, 2, shape[index]) - cropped.narrow(axis, 1, shape[index])) / step
        backward = (cropped.narrow(axis, 1, shape[index]) - cropped.narrow(axis, 0, shape[index])) / step
        if scheme == "central":
            derivatives.append(0.5 * (forward + backward))
        elif scheme == "upwind":
            if velocity is None:
                raise ValueError("scheme='upwind' needs the advecting velocity")
            derivatives.append(torch.where(velocity.select(-ndim - 1, index) > 0, backward, forward))
        else:
            raise ValueError(f"scheme must be 'central' or 'upwind', got {scheme!r}")
    return torch.stack(derivatives, dim=-ndim - 1)


__all__ = ["LAPLACIAN_STENCILS", "gradient", "laplacian", "pad"]
