"""Damped wave equation (APHYNITY): ∂²w/∂t² = c² Δw − k ∂w/∂t, as a first-order system in (w, ∂w/∂t)."""

from __future__ import annotations

import math

import torch

from physml.operators import laplacian
from physml.systems import Grid, ParameterSpec, System, Variable, check_count, uniform

#: Boundary treatments: APHYNITY's (no second derivative in the outer two cells) or periodic.
WAVE_BOUNDARIES = ("aphynity", "periodic")


class DampedWave(System):
    """Damped 2-D wave equation with state ``(batch, 2, ny, nx)``: fields w and ∂w/∂t.

    ∂w/∂t = w_t,  ∂w_t/∂t = c² Δw − k w_t,  with c = 330, k = 50 on a 64×64 grid, dx = 1 (APHYNITY).

    The Laplacian is the fourth-order five-point stencil (−1, 16, −30, 16, −1)/(12 dx²) along each axis.
    With ``boundary="aphynity"`` (the default, reproducing the APHYNITY data generator) the second
    derivative along an axis is set to zero in the two outermost cells at each end of that axis, where the
    stencil does not fit; the derivative along the other axis and the damping still act there.  The
    reference describes this as acting like a fixed boundary, so the grid declares ``"dirichlet"``; it is
    not an exact Dirichlet condition (edge values do move).  ``boundary="periodic"`` wraps the stencil
    instead, which makes the discrete Laplacian symmetric, so :meth:`energy` is exactly conserved when
    k = 0 and decays at the rate k Σ w_t² otherwise.

    Initial condition: a Gaussian bump w = exp(−((x − m_x)² + (y − m_y)²) / σ) with σ uniform on
    ``width_range`` and (m_x, m_y) integers uniform on ``[centre_range[0], centre_range[1])``, all in
    grid-index units, and ∂w/∂t = 0.  APHYNITY: σ ~ U[10, 100], m ~ randint[20, 40)² on 64×64.

    The reference gives no units; c = 330 with dx = 1 reads as the speed of sound in m/s on a 1 m grid,
    but everything is declared dimensionless here.

    Parameters
    ----------
    grid_size : int or (int, int)
        Points per side, or ``(ny, nx)``.
    spacing : float
        Grid spacing dx along both axes.
    boundary : str
        One of :data:`WAVE_BOUNDARIES`.
    centre_range : (int, int)
        Half-open range of the bump centre's grid indices.
    width_range : (float, float)
        Range of σ (in squared grid-index units).
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``values`` may set ``wave_speed`` (c) and ``damping`` (k).

    Examples
    --------
    >>> import torch
    >>> system = DampedWave(grid_size=16, centre_range=(5, 11), width_range=(2.5, 25.0))
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> solution = system.simulate(y0, torch.tensor([0.0, 1e-3]), method="rk4", options=dict(step_size=1e-3))
    >>> solution.ys.shape
    torch.Size([2, 2, 2, 16, 16])
    """

    name = "damped_wave"
    title = "Damped wave equation"
    state_variables = (
        Variable("w", "1", "wave amplitude"),
        Variable("w_t", "1", "time derivative of the wave amplitude"),
    )
    parameter_specs = (
        ParameterSpec("wave_speed", "1", 330.0, "wave propagation speed c"),
        ParameterSpec("damping", "1", 50.0, "damping rate k"),
    )
    references = "Yin et al. (2021), Augmenting physical models with deep networks (APHYNITY), ICLR"

    def __init__(self, *, grid_size=64, spacing: float = 1.0, boundary: str = "aphynity",
                 centre_range: tuple[int, int] = (20, 40), width_range: tuple[float, float] = (10.0, 100.0),
                 learnable=(), dtype: torch.dtype = torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        shape = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        if (len(shape) != 2 or any(isinstance(n, bool) or not isinstance(n, int) for n in shape)
                or min(shape) < 5):
            raise ValueError(
                f"grid_size must be an integer ≥ 5 (the stencil is five points wide) or a pair (ny, nx) of "
                f"them, got {grid_size!r}"
            )
        spacing = float(spacing)
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"spacing must be a positive number, got {spacing!r}")
        if boundary not in WAVE_BOUNDARIES:
            raise ValueError(f"boundary must be one of {WAVE_BOUNDARIES}, got {boundary!r}")
        low, high = centre_range
        if (any(isinstance(end, bool) or not isinstance(end, int) for end in (low, high))
                or not 0 <= low < high <= min(shape)):
            raise ValueError(
                f"centre_range must be integers (low, high) with 0 <= low < high <= {min(shape)}, "
                f"got {centre_range!r}"
            )
        narrow, wide = (float(end) for end in width_range)
        if not 0 < narrow <= wide < math.inf:
            raise ValueError(f"width_range must be (low, high) with 0 < low <= high, got {width_range!r}")
        periodic = boundary == "periodic"
        # Points sit at index * dx either way; a periodic axis spans n dx, a bounded one (n - 1) dx.
        self.grid = Grid(
            dims=("y", "x"), shape=shape, lower=(0.0, 0.0),
            upper=tuple((n if periodic else n - 1) * spacing for n in shape),
            boundary=("periodic", "periodic") if periodic else ("dirichlet", "dirichlet"),
            long_names=("y coordinate", "x coordinate"),
        )
        self.spacing = spacing
        self.boundary = boundary
        self.centre_range = (low, high)
        self.width_range = (narrow, wide)

    def laplacian(self, w: torch.Tensor) -> torch.Tensor:
        """Fourth-order Laplacian of ``w`` (shape ``(..., ny, nx)``) with this system's boundary treatment."""
        if self.boundary == "periodic":
            return laplacian(w, (self.spacing, self.spacing), ("periodic", "periodic"),
                             stencil="fourth_order")
        # One axis at a time, then zero the two outer cells of that axis: there the wrapped-around values
        # the periodic stencil used are meaningless and APHYNITY applies no second derivative.
        along_x = laplacian(w, (self.spacing,), ("periodic",), stencil="fourth_order")
        along_y = laplacian(w.transpose(-1, -2), (self.spacing,), ("periodic",), stencil="fourth_order")
        along_y = along_y.transpose(-1, -2)
        ny, nx = w.shape[-2:]
        return along_x * self._interior(nx, w).view(1, nx) + along_y * self._interior(ny, w).view(ny, 1)

    @staticmethod
    def _interior(n: int, like: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(n, dtype=like.dtype, device=like.device)
        mask[2:-2] = 1
        return mask

    def forward(self, t, y):
        w, w_t = y[..., 0, :, :], y[..., 1, :, :]
        wave_speed = self.broadcast(self.wave_speed, w)
        damping = self.broadcast(self.damping, w)
        return torch.stack([w_t, wave_speed**2 * self.laplacian(w) - damping * w_t], dim=-3)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """Discrete energy ½ Σ (w_t² − c² w Δ_h w) dx², shape ``y.shape[:-3]``.

        Exactly conserved by the semi-discrete equations when k = 0 and ``boundary="periodic"`` (the
        stencil is then symmetric and negative semi-definite); with k > 0 it decays as dE/dt = −k Σ w_t² dx².
        """
        w, w_t = y[..., 0, :, :], y[..., 1, :, :]
        wave_speed = self.broadcast(self.wave_speed, w)
        density = w_t**2 - wave_speed**2 * w * self.laplacian(w)
        return 0.5 * density.sum(dim=(-2, -1)) * self.spacing**2

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        dtype, device = self.wave_speed.dtype, self.wave_speed.device
        width = uniform(generator, (n, 1, 1), *self.width_range, dtype=dtype, device=device)
        centre = torch.randint(*self.centre_range, (n, 2, 1, 1), generator=generator, device=device).to(dtype)
        ny, nx = self.grid.shape
        rows = torch.arange(ny, dtype=dtype, device=device).view(1, ny, 1)
        columns = torch.arange(nx, dtype=dtype, device=device).view(1, 1, nx)
        # APHYNITY pairs the first centre coordinate with the column (x) index.
        bump = torch.exp(-((columns - centre[:, 0]) ** 2 + (rows - centre[:, 1]) ** 2) / width)
        return torch.stack([bump, torch.zeros_like(bump)], dim=1)

    def describe(self) -> dict:
        description = super().describe()
        description["options"] = {
            "boundary": self.boundary, "spacing": self.spacing,
            "centre_range": list(self.centre_range), "width_range": list(self.width_range),
        }
        return description


__all__ = ["WAVE_BOUNDARIES", "DampedWave"]
