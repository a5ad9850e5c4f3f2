"""Two-field reaction–diffusion systems on periodic 2-D grids: FitzHugh–Nagumo, Gray–Scott and λ–ω.

All three share the form ∂u/∂t = D_u Δu + R_u(u, v), ∂v/∂t = D_v Δv + R_v(u, v) with state
``(batch, 2, ny, nx)`` (fields u, v; grid dimensions ``("y", "x")``).  Each takes a ``stencil`` (a
:func:`physml.operators.laplacian` stencil, or ``"spectral"``) and ``reaction=False`` gives the pure
diffusion part alone, which is APHYNITY's incomplete physical prior for FitzHugh–Nagumo and a heat
equation whose Fourier modes decay at the stencil's exact discrete rate.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from physml.operators import laplacian, spectral_laplacian
from physml.operators.finite_difference import LAPLACIAN_STENCILS
from physml.systems import Grid, ParameterSpec, System, Variable, check_count, uniform

#: Laplacians the reaction–diffusion systems accept: the finite-difference stencils and the spectral one.
LAPLACIANS = (*LAPLACIAN_STENCILS, "spectral")


def _grid_shape(grid_size) -> tuple[int, int]:
    shape = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
    if (len(shape) != 2 or any(isinstance(n, bool) or not isinstance(n, int) for n in shape)
            or min(shape) < 3):
        raise ValueError(f"grid_size must be an integer ≥ 3 or a pair (ny, nx) of them, got {grid_size!r}")
    return shape


class _ReactionDiffusion(System):
    """Shared machinery: periodic grid, Laplacian choice and the diffusion-only switch.

    Subclasses name their two diffusion coefficients in ``diffusion_parameters`` and define
    :meth:`reaction_terms`.
    """

    diffusion_parameters: ClassVar[tuple[str, str]] = ()

    def __init__(self, *, shape: tuple[int, int], lower: tuple[float, float], upper: tuple[float, float],
                 stencil: str, reaction: bool, learnable, dtype, device, values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        for low, high in zip(lower, upper):
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(
                    f"the domain must be finite with lower < upper, got lower={low!r}, upper={high!r}"
                )
        if stencil not in LAPLACIANS:
            raise ValueError(f"stencil must be one of {LAPLACIANS}, got {stencil!r}")
        if not isinstance(reaction, bool):
            raise TypeError(f"reaction must be True or False, got {reaction!r}")
        self.grid = Grid(dims=("y", "x"), shape=shape, lower=tuple(lower), upper=tuple(upper),
                         boundary=("periodic", "periodic"), long_names=("y coordinate", "x coordinate"))
        if stencil == "isotropic_9" and self.grid.spacing[0] != self.grid.spacing[1]:
            raise ValueError(
                f"stencil 'isotropic_9' needs equal spacing along y and x, got grid_size {shape} whose "
                f"spacing is {self.grid.spacing}"
            )
        self.stencil = stencil
        self.reaction = reaction

    def laplacian(self, fields: torch.Tensor) -> torch.Tensor:
        """The chosen periodic Laplacian over the two trailing (grid) dimensions."""
        if self.stencil == "spectral":
            lengths = [upper - lower for lower, upper in zip(self.grid.lower, self.grid.upper)]
            return spectral_laplacian(fields, lengths)
        return laplacian(fields, self.grid.spacing, self.grid.boundary, stencil=self.stencil)

    def reaction_terms(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, t, y):
        diffusion_u, diffusion_v = (getattr(self, name) for name in self.diffusion_parameters)
        laplacians = self.laplacian(y)
        u, v = y[..., 0, :, :], y[..., 1, :, :]
        du = self.broadcast(diffusion_u, u) * laplacians[..., 0, :, :]
        dv = self.broadcast(diffusion_v, v) * laplacians[..., 1, :, :]
        if self.reaction:
            reaction_u, reaction_v = self.reaction_terms(u, v)
            du = du + reaction_u
            dv = dv + reaction_v
        return torch.stack([du, dv], dim=-3)

    def _options(self) -> dict:
        return {"stencil": self.stencil, "reaction": self.reaction}

    def describe(self) -> dict:
        description = super().describe()
        description["options"] = self._options()
        return description


class FitzHughNagumo(_ReactionDiffusion):
    """FitzHugh–Nagumo reaction–diffusion (APHYNITY).

    ∂u/∂t = a Δu + u − u³ − v − k,  ∂v/∂t = b Δv + u − v,

    on a periodic square domain (APHYNITY: 32×32 on [−1, 1]², dx = 2/32, 5-point Laplacian, a = 1e-3,
    b = 5e-3, k = 5e-3).  Initial conditions: u and v i.i.d. uniform on [0, 1) at every grid point.

    Parameters
    ----------
    grid_size : int or (int, int)
        Points per side, or ``(ny, nx)``.
    domain : (float, float)
        ``(lower, upper)`` of both coordinates.
    stencil : str
        One of :data:`LAPLACIANS` (APHYNITY: ``"second_order"``, the 5-point stencil).
    reaction : bool
        ``False`` keeps only a Δu, b Δv: APHYNITY's incomplete physical prior.
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``values`` may set ``a``, ``b``, ``k``.

    Examples
    --------
    >>> import torch
    >>> system = FitzHughNagumo(grid_size=16)
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> system.simulate(y0, torch.tensor([0.0, 0.1])).ys.shape
    torch.Size([2, 2, 2, 16, 16])
    """

    name = "fitzhugh_nagumo"
    title = "FitzHugh–Nagumo reaction–diffusion"
    state_variables = (
        Variable("u", "1", "activator"),
        Variable("v", "1", "inhibitor"),
    )
    parameter_specs = (
        ParameterSpec("a", "1", 1e-3, "diffusion coefficient a of the activator u"),
        ParameterSpec("b", "1", 5e-3, "diffusion coefficient b of the inhibitor v"),
        ParameterSpec("k", "1", 5e-3, "excitability threshold k"),
    )
    references = "Yin et al. (2021), Augmenting physical models with deep networks (APHYNITY), ICLR"
    diffusion_parameters = ("a", "b")

    def __init__(self, *, grid_size=32, domain: tuple[float, float] = (-1.0, 1.0),
                 stencil: str = "second_order", reaction: bool = True, learnable=(),
                 dtype: torch.dtype = torch.float64, device=None, **values):
        lower, upper = (float(end) for end in domain)
        super().__init__(shape=_grid_shape(grid_size), lower=(lower, lower), upper=(upper, upper),
                         stencil=stencil, reaction=reaction, learnable=learnable, dtype=dtype, device=device,
                         values=values)

    def reaction_terms(self, u, v):
        return u - u**3 - v - self.broadcast(self.k, u), u - v

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        return uniform(generator, (n, 2, *self.grid.shape), 0.0, 1.0, self.a.dtype, self.a.device)


class GrayScott(_ReactionDiffusion):
    """Gray–Scott reaction–diffusion (LEADS, CoDA).

    ∂u/∂t = D_u Δu − u v² + F (1 − u),  ∂v/∂t = D_v Δv + u v² − (F + k) v,

    on a periodic grid with dx = 1 and the 9-point isotropic Laplacian (weights −3, 1/2, 1/4).  The
    defaults are D_u = 0.2097, D_v = 0.105 and the first LEADS environment (F, k) = (0.037, 0.060);
    :attr:`LEADS_ENVIRONMENTS`, :attr:`CODA_ENVIRONMENTS` and :attr:`CODA_ADAPTATION_ENVIRONMENTS` list
    the others.

    Initial conditions: u = 0.95 and v = 0.05 everywhere, then ``square_count`` squares of side
    ``square_size`` (default ``int(nx / 10)``: 3 on 32×32) with u = 0, v = 1, each with its lower corner
    uniform on ``[0, n - side)`` along each axis (squares may overlap), as in the LEADS generator.

    Parameters
    ----------
    grid_size : int or (int, int)
        Points per side, or ``(ny, nx)`` (the isotropic stencil needs a square grid).
    spacing : float
        Grid spacing dx (the domain is ``[0, n dx)``).
    stencil : str
        One of :data:`LAPLACIANS`.
    reaction : bool
        ``False`` keeps only the diffusion terms.
    square_count, square_size : int
        Number and side (in cells) of the seeded squares.
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``values`` may set ``diffusion_u``, ``diffusion_v``,
        ``feed`` (F) and ``kill`` (k).

    Examples
    --------
    >>> import torch
    >>> system = GrayScott(feed=[0.037, 0.030], kill=[0.060, 0.062], grid_size=20)
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> sorted(y0[:, 1].unique().tolist())  # v = 0.05 outside, 1 in the 2×2 squares (side int(20 / 10))
    [0.05, 1.0]
    >>> system.simulate(y0, torch.tensor([0.0, 40.0])).ys.shape
    torch.Size([2, 2, 2, 20, 20])
    """

    name = "gray_scott"
    title = "Gray–Scott reaction–diffusion"
    state_variables = (
        Variable("u", "1", "substrate concentration"),
        Variable("v", "1", "autocatalyst concentration"),
    )
    parameter_specs = (
        ParameterSpec("diffusion_u", "1", 0.2097, "diffusion coefficient D_u of u"),
        ParameterSpec("diffusion_v", "1", 0.105, "diffusion coefficient D_v of v"),
        ParameterSpec("feed", "1", 0.037, "feed rate F"),
        ParameterSpec("kill", "1", 0.060, "kill rate k"),
    )
    references = "Yin et al. (2021), LEADS, NeurIPS; Kirchmeyer et al. (2022), CoDA, ICML"
    diffusion_parameters = ("diffusion_u", "diffusion_v")

    #: LEADS environments (F, k).
    LEADS_ENVIRONMENTS = tuple({"feed": feed, "kill": kill}
                               for feed, kill in [(0.037, 0.060), (0.030, 0.062), (0.039, 0.058)])
    #: CoDA training environments (F, k).
    CODA_ENVIRONMENTS = tuple({"feed": feed, "kill": kill}
                              for feed, kill in [(0.030, 0.062), (0.039, 0.058), (0.030, 0.058),
                                                 (0.039, 0.062)])
    #: CoDA adaptation environments: F in {0.033, 0.036} × k in {0.059, 0.061}.
    CODA_ADAPTATION_ENVIRONMENTS = tuple({"feed": feed, "kill": kill}
                                         for feed in (0.033, 0.036) for kill in (0.059, 0.061))

    def __init__(self, *, grid_size=32, spacing: float = 1.0, stencil: str = "isotropic_9",
                 reaction: bool = True, square_count: int = 3, square_size: int | None = None, learnable=(),
                 dtype: torch.dtype = torch.float64, device=None, **values):
        spacing = float(spacing)
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"spacing must be a positive number, got {spacing!r}")
        shape = _grid_shape(grid_size)
        super().__init__(shape=shape, lower=(0.0, 0.0), upper=(shape[0] * spacing, shape[1] * spacing),
                         stencil=stencil, reaction=reaction, learnable=learnable, dtype=dtype, device=device,
                         values=values)
        if square_size is None:
            square_size = max(1, shape[1] // 10)
        if isinstance(square_count, bool) or not isinstance(square_count, int) or square_count < 0:
            raise ValueError(f"square_count must be a non-negative integer, got {square_count!r}")
        if (isinstance(square_size, bool) or not isinstance(square_size, int)
                or not 1 <= square_size < min(shape)):
            raise ValueError(f"square_size must be an integer in [1, {min(shape)}), got {square_size!r}")
        self.square_count = square_count
        self.square_size = square_size

    def reaction_terms(self, u, v):
        feed = self.broadcast(self.feed, u)
        kill = self.broadcast(self.kill, u)
        conversion = u * v**2
        return -conversion + feed * (1 - u), conversion - (feed + kill) * v

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        dtype, device = self.feed.dtype, self.feed.device
        ny, nx = self.grid.shape
        side = self.square_size
        corners_y = torch.randint(0, ny - side, (n, self.square_count), generator=generator, device=device)
        corners_x = torch.randint(0, nx - side, (n, self.square_count), generator=generator, device=device)
        rows = torch.arange(ny, device=device)
        columns = torch.arange(nx, device=device)
        in_rows = (rows >= corners_y[..., None]) & (rows < corners_y[..., None] + side)  # (n, squares, ny)
        in_columns = (columns >= corners_x[..., None]) & (columns < corners_x[..., None] + side)
        seeded = (in_rows[..., :, None] & in_columns[..., None, :]).any(dim=1)  # (n, ny, nx)
        def filled(inside, outside):
            # Build the values in the target dtype (scalars in torch.where would round through float32).
            return torch.where(seeded, torch.tensor(inside, dtype=dtype, device=device),
                               torch.tensor(outside, dtype=dtype, device=device))

        return torch.stack([filled(0.0, 0.95), filled(1.0, 0.05)], dim=1)

    def _options(self) -> dict:
        return {**super()._options(), "square_count": self.square_count, "square_size": self.square_size}


class LambdaOmega(_ReactionDiffusion):
    """λ–ω reaction–diffusion system of PDE-FIND (Rudy et al. 2017), which forms spiral waves.

    u_t = d_u Δu + λ(A) u − ω(A) v,  v_t = d_v Δv + ω(A) u + λ(A) v,
    with A² = u² + v², λ(A) = 1 − A², ω(A) = −β A².

    PDE-FIND integrates it pseudo-spectrally on the periodic square [−10, 10)² with d_u = d_v = 0.1,
    β = 1 and n = 256 points per side (the PySINDy example regenerates it on 128²); those are the
    defaults here (``stencil="spectral"``).  The spatially uniform state with A = 1 rotates in the
    (u, v) plane with angular frequency β: (u, v) = (cos(φ − βt), sin(φ − βt)).

    Initial condition (PDE-FIND's): ``spiral_count`` = m arms centred at the origin,
    u = tanh(r) cos(mθ − r), v = tanh(r) sin(mθ − r), with r, θ the polar coordinates of (x, y).
    It is deterministic, so by default every sample is the same.  ``centre_spread`` > 0 moves the centre
    uniformly within ±``centre_spread`` along each axis and ``random_phase=True`` rotates (u, v) by a
    uniform angle (a symmetry of the equations), both drawn from the generator.

    Parameters
    ----------
    grid_size : int or (int, int)
        Points per side, or ``(ny, nx)``.
    domain : (float, float)
        ``(lower, upper)`` of both coordinates.
    stencil : str
        One of :data:`LAPLACIANS`.
    reaction : bool
        ``False`` keeps only the diffusion terms.
    spiral_count : int
        Number of spiral arms m of the initial condition.
    centre_spread : float
        Half-width of the uniform random shift of the spiral centre (0: PDE-FIND's centred spiral).
    random_phase : bool
        Rotate each initial state by a uniform random angle.
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``values`` may set ``diffusion_u``, ``diffusion_v``, ``beta``.

    Examples
    --------
    >>> import torch
    >>> system = LambdaOmega(grid_size=32)
    >>> y0 = system.sample_initial_conditions(1, torch.Generator().manual_seed(0))
    >>> system.simulate(y0, torch.tensor([0.0, 0.5])).ys.shape
    torch.Size([2, 1, 2, 32, 32])
    """

    name = "lambda_omega"
    title = "λ–ω reaction–diffusion (spiral waves)"
    state_variables = (
        Variable("u", "1", "first component of the oscillator field"),
        Variable("v", "1", "second component of the oscillator field"),
    )
    parameter_specs = (
        ParameterSpec("diffusion_u", "1", 0.1, "diffusion coefficient d_u of u"),
        ParameterSpec("diffusion_v", "1", 0.1, "diffusion coefficient d_v of v"),
        ParameterSpec("beta", "1", 1.0, "amplitude dependence β of the frequency, ω(A) = −β A²"),
    )
    references = ("Rudy, Brunton, Proctor & Kutz (2017), Data-driven discovery of partial differential "
                  "equations, Sci. Adv.")
    diffusion_parameters = ("diffusion_u", "diffusion_v")

    def __init__(self, *, grid_size=256, domain: tuple[float, float] = (-10.0, 10.0),
                 stencil: str = "spectral", reaction: bool = True, spiral_count: int = 1,
                 centre_spread: float = 0.0, random_phase: bool = False, learnable=(),
                 dtype: torch.dtype = torch.float64, device=None, **values):
        lower, upper = (float(end) for end in domain)
        super().__init__(shape=_grid_shape(grid_size), lower=(lower, lower), upper=(upper, upper),
                         stencil=stencil, reaction=reaction, learnable=learnable, dtype=dtype, device=device,
                         values=values)
        if isinstance(spiral_count, bool) or not isinstance(spiral_count, int) or spiral_count < 1:
            raise ValueError(f"spiral_count must be a positive integer, got {spiral_count!r}")
        centre_spread = float(centre_spread)
        if not (math.isfinite(centre_spread) and 0 <= centre_spread <= (upper - lower) / 2):
            raise ValueError(
                f"centre_spread must be in [0, {(upper - lower) / 2}] (half the domain), "
                f"got {centre_spread!r}"
            )
        if not isinstance(random_phase, bool):
            raise TypeError(f"random_phase must be True or False, got {random_phase!r}")
        self.spiral_count = spiral_count
        self.centre_spread = centre_spread
        self.random_phase = random_phase

    def reaction_terms(self, u, v):
        amplitude_squared = u**2 + v**2
        growth = 1 - amplitude_squared
        frequency = -self.broadcast(self.beta, u) * amplitude_squared
        return growth * u - frequency * v, frequency * u + growth * v

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        dtype, device = self.beta.dtype, self.beta.device
        y, x = (coordinate.unsqueeze(0) for coordinate in self.grid.mesh(dtype=dtype, device=device))
        centre = uniform(generator, (n, 2, 1, 1), -self.centre_spread, self.centre_spread, dtype, device)
        phase = (uniform(generator, (n, 1, 1), 0.0, 2 * math.pi, dtype, device) if self.random_phase
                 else torch.zeros((n, 1, 1), dtype=dtype, device=device))
        dy, dx = y - centre[:, 0], x - centre[:, 1]
        radius = torch.sqrt(dx**2 + dy**2)
        angle = self.spiral_count * torch.atan2(dy, dx) - radius + phase
        amplitude = torch.tanh(radius)
        return torch.stack([amplitude * torch.cos(angle), amplitude * torch.sin(angle)], dim=1)

    def _options(self) -> dict:
        return {**super()._options(), "spiral_count": self.spiral_count, "centre_spread": self.centre_spread,
                "random_phase": self.random_phase}


__all__ = ["LAPLACIANS", "FitzHughNagumo", "GrayScott", "LambdaOmega"]
