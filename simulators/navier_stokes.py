"""2-D incompressible Navier–Stokes in vorticity form on the periodic unit square (LEADS, CoDA).

∂ω/∂t + u·∇ω = ν Δω + f,  u = (∂ψ/∂y, −∂ψ/∂x),  Δψ = −ω,  (x, y) ∈ [0, 1)², periodic.

The data sets of LEADS (Yin et al., 2021) and CoDA (Kirchmeyer et al., 2022) come from the pseudo-spectral
solver of Li et al.'s Fourier-neural-operator code: 2/3-rule dealiasing of the advection term, Crank–Nicolson
for the viscous term, explicit (forward Euler) advection and forcing, dt = 1e-3.  :class:`NavierStokes2D`
implements that scheme (``"fno"``, first order in time) and a second-order variant (``"cnab2"``:
Crank–Nicolson + Adams–Bashforth 2), both for the whole batch of samples and environments in one tensor.

Array orientation: physml stores fields as ``[y, x]`` (x along the last axis).  The papers' code builds its
forcings with ``meshgrid(t, t)`` in ``ij`` order, so its arrays are indexed ``[x, y]``: the same physical
fields, transposed.  Compare with the papers' arrays after ``.transpose(-1, -2)``.

Other differences from the papers' code (the tests check that the ``"fno"`` update equals theirs when none
applies): physml computes in float64 (theirs: float32); first derivatives drop the Nyquist mode (theirs
keep it, which makes their intermediate fields slightly complex); their Crank–Nicolson factor uses
|k|² = 1 at k = 0 and so damps a non-zero mean, physml's leaves the mean alone; their random fields come from
the global torch seed, physml's from an explicit generator (so their exact initial conditions are not
reproduced, only their distribution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch

from physml.operators import dealias_mask, velocity_from_vorticity, wavenumbers
from physml.solvers import ODESolution
from physml.systems import Grid, ParameterSpec, System, Variable, check_count

#: Fixed-step schemes of :meth:`NavierStokes2D.simulate` and their orders in time (as data; the tests
#: check the empirical order against them).  ``fno``: explicit Euler advection + forcing, Crank–Nicolson
#: viscosity (the papers' scheme).  ``cnab2``: Adams–Bashforth 2 advection + forcing, Crank–Nicolson
#: viscosity (first step by ``fno``).
SCHEME_ORDERS = {"fno": 1, "cnab2": 2}

#: The LEADS forcings f = 0.1 (sin 2π(a·(x, y)) + cos 2π(b·(x, y))), given as the integer wave vectors
#: (a, b), each as (coefficient of x, coefficient of y).
PAPER_FORCINGS = {
    "f0": ((1, 1), (1, 1)),
    "f1": ((1, 1), (1, 2)),
    "f2": ((1, 1), (2, 1)),
    "f3": ((1, 2), (2, 1)),
}
FORCING_AMPLITUDE = 0.1


def unit_square_grid(grid_size) -> Grid:
    """The periodic unit-square grid ``[0, 1)²`` with dims ``("y", "x")``.

    ``grid_size`` is one integer (square grid) or ``(ny, nx)``.

    Examples
    --------
    >>> unit_square_grid(4).spacing
    (0.25, 0.25)
    """
    is_integer = isinstance(grid_size, int) and not isinstance(grid_size, bool)
    shape = (grid_size, grid_size) if is_integer else grid_size
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if (shape is None or len(shape) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 4 for n in shape)):
        raise ValueError(f"grid_size must be an integer >= 4 or a pair (ny, nx) of such integers, "
                         f"got {grid_size!r}")
    return Grid(dims=("y", "x"), shape=shape, lower=(0.0, 0.0), upper=(1.0, 1.0),
                boundary=("periodic", "periodic"), units="1", long_names=("y coordinate", "x coordinate"))


def paper_forcing(name: str, grid: Grid | None = None, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """One of the LEADS forcings ``f0`` … ``f3`` evaluated on a grid, shape ``grid.shape`` (``[y, x]``).

    f0 = 0.1 (sin 2π(x+y) + cos 2π(x+y)),   f1 = 0.1 (sin 2π(x+y) + cos 2π(x+2y)),
    f2 = 0.1 (sin 2π(x+y) + cos 2π(2x+y)),  f3 = 0.1 (sin 2π(x+2y) + cos 2π(2x+y)).

    Parameters
    ----------
    name : str
        A key of :data:`PAPER_FORCINGS`.
    grid : Grid, optional
        A 2-D grid with dims ``("y", "x")``; the 32×32 unit square by default.

    Examples
    --------
    >>> forcing = paper_forcing("f0", unit_square_grid(8))
    >>> forcing.shape, round(float(forcing[0, 0]), 6)
    (torch.Size([8, 8]), 0.1)
    """
    if name not in PAPER_FORCINGS:
        raise ValueError(f"forcing name must be one of {sorted(PAPER_FORCINGS)}, got {name!r}")
    grid = unit_square_grid(32) if grid is None else grid
    if tuple(grid.dims) != ("y", "x"):
        raise ValueError(f"grid must have dims ('y', 'x'), got {grid.dims}")
    y, x = grid.mesh(dtype=dtype, device=device)
    (sine_x, sine_y), (cosine_x, cosine_y) = PAPER_FORCINGS[name]
    return FORCING_AMPLITUDE * (torch.sin(2 * math.pi * (sine_x * x + sine_y * y))
                                + torch.cos(2 * math.pi * (cosine_x * x + cosine_y * y)))


def gaussian_random_field(n: int, generator: torch.Generator, alpha: float = 2.5, tau: float = 7.0,
                          grid: Grid | None = None, *, sigma: float | None = None, dtype=torch.float64,
                          device=None) -> torch.Tensor:
    """Periodic Gaussian random fields with covariance σ² (−Δ + τ²)^(−α), shape ``(n, *grid.shape)``.

    This is the initial-condition sampler of the FNO, LEADS and CoDA Navier–Stokes data: every Fourier mode
    k ≠ 0 gets the coefficient σ (|2πk/L|² + τ²)^(−α/2) (a + i b), with a and b independent standard normal
    draws, and the field is the real part of the (unnormalised) inverse transform; the mean mode is zero.
    Each Fourier coefficient of the result (``torch.fft.fftn`` divided by the number of grid points) then
    has E|û_k|² = σ² (|2πk/L|² + τ²)^(−α).  The default σ = τ^(α − d/2) is the papers'.  Only
    ``generator`` supplies randomness.

    Parameters
    ----------
    n : int
        Number of fields.
    generator : torch.Generator
        Source of all random draws (on the device of the result).
    alpha, tau : float
        Smoothness exponent and inverse length scale (LEADS/CoDA: 2.5 and 7).
    grid : Grid
        A grid periodic along every dimension (any dimension count); the 32×32 unit square by default.
    sigma : float, optional
        Amplitude; ``tau ** (alpha - grid.ndim / 2)`` by default.

    Examples
    --------
    >>> import torch
    >>> fields = gaussian_random_field(2, torch.Generator().manual_seed(0), grid=unit_square_grid(16))
    >>> fields.shape, bool(fields.mean(dim=(-2, -1)).abs().max() < 1e-12)
    (torch.Size([2, 16, 16]), True)
    """
    check_count(n)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    for label, value in (("alpha", alpha), ("tau", tau)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a positive finite number, got {value!r}")
    grid = unit_square_grid(32) if grid is None else grid
    if not isinstance(grid, Grid) or any(condition != "periodic" for condition in grid.boundary):
        raise ValueError(f"grid must be a physml Grid periodic along every dimension, got {grid!r}")
    ndim = grid.ndim
    sigma = tau ** (0.5 * (2 * alpha - ndim)) if sigma is None else float(sigma)
    device = generator.device if device is None else torch.device(device)
    k_squared = 0.0
    lengths = [upper - lower for upper, lower in zip(grid.upper, grid.lower, strict=True)]
    for axis, (count, length) in enumerate(zip(grid.shape, lengths, strict=True)):
        frequencies = torch.fft.fftfreq(count, d=1.0 / count, dtype=dtype, device=device)
        view = [1] * ndim
        view[axis] = -1
        k_squared = k_squared + ((2 * math.pi / length) * frequencies).view(view) ** 2
    square_root_eigenvalues = sigma * (k_squared + tau**2) ** (-alpha / 2.0)
    square_root_eigenvalues.view(-1)[0] = 0.0  # zero-mean field
    draws = torch.randn((n, *grid.shape, 2), generator=generator, dtype=dtype, device=device)
    coefficients = torch.view_as_complex(draws) * square_root_eigenvalues
    # norm="forward" leaves the inverse transform unscaled: the field is the plain sum over modes.
    return torch.fft.ifftn(coefficients, dim=tuple(range(-ndim, 0)), norm="forward").real


@dataclass(frozen=True)
class WarmUp:
    """How Gaussian-random-field initial conditions are spun up before a trajectory starts.

    The LEADS/CoDA code runs each random field 30 time units under forcing f0 and keeps its last recorded
    state, which is at t = 28.5 (it records before stepping, every 1.5 units): ``duration=28.5``.
    """

    duration: float = 28.5
    forcing: str = "f0"
    viscosity: float = 1e-3

    def __post_init__(self):
        if not (math.isfinite(self.duration) and self.duration >= 0):
            raise ValueError(f"warm_up duration must be a finite number >= 0, got {self.duration!r}")
        if self.forcing not in PAPER_FORCINGS and self.forcing != "none":
            raise ValueError(f"warm_up forcing must be one of {sorted(PAPER_FORCINGS) + ['none']}, "
                             f"got {self.forcing!r}")
        if not (math.isfinite(self.viscosity) and self.viscosity >= 0):
            raise ValueError(f"warm_up viscosity must be a finite number >= 0, got {self.viscosity!r}")


#: LEADS: 28.5 time units under f0 with ν = 1e-3.
LEADS_WARM_UP = WarmUp(28.5, "f0", 1e-3)
#: CoDA: the same with ν = 8e-4.
CODA_WARM_UP = WarmUp(28.5, "f0", 8e-4)


class _SpectralOperators:
    """Wavenumber tensors for one grid, dtype and device, in the full ``fft2`` layout ``(ny, nx)``.

    The full (not half, ``rfft2``) layout lets one complex inverse transform carry two real fields: the
    spectra of u and ∂ω/∂x are both Hermitian, so ifft2(û + i ∂̂ω/∂x) = u + i ∂ω/∂x.  Two complex transforms
    thus give the four fields of u·∇ω, and avoid the input copy of torch's complex-to-real transform: the
    batched step is about 1.3× faster than with four ``irfft2`` (measured on the project's 2-core CPU).
    """

    def __init__(self, shape, dtype, device):
        ny, nx = shape
        # First derivatives drop the Nyquist mode (wavenumbers() zeroes it), which keeps û, ∂̂ω/∂x, ...
        # Hermitian; the Laplacian keeps it (its k² is real and meaningful).
        ky = wavenumbers(ny, 1.0, dtype=dtype, device=device).view(-1, 1)
        kx = wavenumbers(nx, 1.0, dtype=dtype, device=device).view(1, -1)
        full_ky = 2 * math.pi * torch.fft.fftfreq(ny, d=1.0 / ny, dtype=dtype, device=device).view(-1, 1)
        full_kx = 2 * math.pi * torch.fft.fftfreq(nx, d=1.0 / nx, dtype=dtype, device=device).view(1, -1)
        self.k_squared = full_ky**2 + full_kx**2
        inverse_k_squared = torch.where(self.k_squared == 0, torch.zeros_like(self.k_squared),
                                        1.0 / torch.where(self.k_squared == 0, 1.0, self.k_squared))
        # ψ̂ = ω̂ / |k|²;  û = i ky ψ̂,  v̂ = −i kx ψ̂;  packed with i·(i kx ω̂) and i·(i ky ω̂).
        self.packed_multipliers = torch.stack([1j * ky * inverse_k_squared - kx,
                                               -1j * kx * inverse_k_squared - ky])
        self.mask = dealias_mask(shape, real=False, device=device).to(dtype)
        self.shape = (ny, nx)
        self.half_width = nx // 2 + 1


class NavierStokes2D(System):
    """2-D incompressible Navier–Stokes (vorticity form) on the periodic unit square, pseudo-spectral.

    State ``(batch, 1, ny, nx)``: the vorticity ω on ``[y, x]``.  :meth:`forward` is the right-hand side
    −u·∇ω + νΔω + f (2/3-dealiased advection), differentiable in ω and ν, for :func:`physml.solve_ode` and
    as a physical prior.  :meth:`simulate` uses the papers' fixed-step semi-implicit scheme on the whole
    batch at once (``scheme="fno"``: Crank–Nicolson viscosity, explicit Euler advection and forcing,
    first order in time; ``"cnab2"``: Adams–Bashforth 2 instead of Euler, second order).

    Parameters
    ----------
    grid_size : int or (int, int)
        Grid points along y and x (LEADS/CoDA: 32).
    forcing : str, tensor, sequence or None
        A name in :data:`PAPER_FORCINGS`, a zero-mean field ``(ny, nx)`` or ``(batch, ny, nx)``, a sequence
        of names/fields (one per batch member, e.g. per environment), or ``None`` (unforced).
    scheme : str
        Default scheme of :meth:`simulate`, a key of :data:`SCHEME_ORDERS`.
    time_step : float
        Internal step of :meth:`simulate` (the papers: 1e-3).
    warm_up : WarmUp or None
        Spin-up of the random initial conditions (:data:`LEADS_WARM_UP` by default, :data:`CODA_WARM_UP`
        for CoDA); ``None`` returns the raw random fields.
    random_field_alpha, random_field_tau : float
        Parameters of :func:`gaussian_random_field` for the initial conditions (2.5 and 7).
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``viscosity`` is a number or one value per batch member.

    Examples
    --------
    >>> import torch
    >>> system = NavierStokes2D(grid_size=16, forcing=["f0", "f1"], viscosity=[1e-3, 2e-3], warm_up=None)
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> solution = system.simulate(y0, torch.tensor([0.0, 0.01, 0.02]))
    >>> solution.ys.shape, solution.stats["n_steps"]
    (torch.Size([3, 2, 1, 16, 16]), 20)
    >>> system(torch.tensor(0.0), y0).shape
    torch.Size([2, 1, 16, 16])
    """

    name = "navier_stokes_2d"
    title = "2-D incompressible Navier–Stokes (vorticity) on the periodic unit square"
    state_variables = (Variable("vorticity", "1", "vorticity (dv/dx - du/dy)"),)
    velocity_variables = (
        Variable("u", "1", "velocity along x"),
        Variable("v", "1", "velocity along y"),
    )
    parameter_specs = (ParameterSpec("viscosity", "1", 1e-3, "kinematic viscosity ν"),)
    time_units = "1"
    references = (
        "Yin et al. (2021), LEADS: Learning dynamical systems that generalize across environments, NeurIPS; "
        "Kirchmeyer et al. (2022), Generalizing to new physical systems via context-informed dynamics model "
        "(CoDA), ICML; Li et al. (2021), Fourier neural operator for parametric PDEs, ICLR (solver)"
    )

    #: LEADS: ν = 1e-3 and one environment per forcing f0 … f3.
    LEADS_ENVIRONMENTS = tuple({"forcing": name, "viscosity": 1e-3} for name in ("f0", "f1", "f2", "f3"))
    #: CoDA training environments: forcing f0, five viscosities.
    CODA_ENVIRONMENTS = tuple({"forcing": "f0", "viscosity": value}
                              for value in (8e-4, 9e-4, 1.0e-3, 1.1e-3, 1.2e-3))
    #: CoDA adaptation environments.
    CODA_ADAPTATION_ENVIRONMENTS = tuple({"forcing": "f0", "viscosity": value}
                                         for value in (8.5e-4, 9.5e-4, 1.05e-3, 1.15e-3))

    def __init__(self, *, grid_size=32, forcing="f0", scheme: str = "fno", time_step: float = 1e-3,
                 warm_up: WarmUp | None = LEADS_WARM_UP, random_field_alpha: float = 2.5,
                 random_field_tau: float = 7.0, learnable=(), dtype: torch.dtype = torch.float64, device=None,
                 **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        if (self.viscosity.detach() < 0).any():
            raise ValueError(f"viscosity must be >= 0, got {self.viscosity.detach().cpu().tolist()}")
        self.grid = unit_square_grid(grid_size)
        self.scheme = _check_scheme(scheme, "scheme")
        self.time_step = _check_positive(time_step, "time_step")
        if warm_up is not None and not isinstance(warm_up, WarmUp):
            raise TypeError(f"warm_up must be a WarmUp or None, got {type(warm_up).__name__}")
        self.warm_up = warm_up
        _check_positive(random_field_alpha, "random_field_alpha")
        _check_positive(random_field_tau, "random_field_tau")
        self.random_field_alpha = float(random_field_alpha)
        self.random_field_tau = float(random_field_tau)
        field, self.forcing_names = self._forcing_field(forcing, dtype, device)
        self.register_buffer("forcing", field)
        self.batch_size()  # viscosity and forcing batches must agree
        self._operator_cache: dict = {}

    @classmethod
    def from_environments(cls, environments: Sequence[Mapping], trajectories_per_environment: int = 1,
                          **options) -> NavierStokes2D:
        """One module for several environments, parameters repeated environment-major.

        Batch member ``e * trajectories_per_environment + i`` is trajectory ``i`` of environment ``e``, the
        papers' index order.  LEADS and CoDA reuse initial condition ``i`` in every environment:
        ``y0 = ics.repeat(len(environments), 1, 1, 1)``.

        Examples
        --------
        >>> system = NavierStokes2D.from_environments(NavierStokes2D.LEADS_ENVIRONMENTS, 2, grid_size=8)
        >>> system.forcing.shape, system.batch_size()
        (torch.Size([8, 1, 8, 8]), 8)
        """
        check_count(trajectories_per_environment, "trajectories_per_environment")
        if not environments:
            raise ValueError("environments must list at least one {'forcing': ..., 'viscosity': ...} mapping")
        forcings, viscosities = [], []
        for index, environment in enumerate(environments):
            unknown = set(environment) - {"forcing", "viscosity"}
            if unknown:
                raise ValueError(f"environments[{index}] has unknown keys {sorted(unknown)}; "
                                 f"expected 'forcing' and 'viscosity'")
            forcings += [environment.get("forcing", "f0")] * trajectories_per_environment
            viscosities += [environment.get("viscosity", 1e-3)] * trajectories_per_environment
        return cls(forcing=forcings, viscosity=viscosities, **options)

    # -- configuration helpers ----------------------------------------------------------------------

    def _forcing_field(self, forcing, dtype, device):
        """Forcing as a ``(batch or 1, 1, ny, nx)`` tensor, plus its names (``None`` entries for fields)."""
        shape = self.grid.shape

        def one(item, label):
            if item is None or (isinstance(item, str) and item == "none"):
                return torch.zeros(shape, dtype=dtype, device=device), "none"
            if isinstance(item, str):
                if item not in PAPER_FORCINGS:
                    raise ValueError(f"{label} must be one of {sorted(PAPER_FORCINGS) + ['none']}, a field "
                                     f"or None, got {item!r}")
                return paper_forcing(item, self.grid, dtype=dtype, device=device), item
            if isinstance(item, torch.Tensor):
                if tuple(item.shape) != shape:
                    raise ValueError(f"{label} field must have shape {shape} (the grid), "
                                     f"got {tuple(item.shape)}")
                return item.detach().to(dtype=dtype, device=device), None
            raise TypeError(f"{label} must be a forcing name, a tensor or None, got {type(item).__name__}")

        if isinstance(forcing, torch.Tensor) and forcing.ndim in (3, 4):
            if forcing.ndim == 4 and forcing.shape[1] != 1:
                raise ValueError(f"forcing of shape {tuple(forcing.shape)} must have one channel: expected "
                                 f"(batch, 1, {shape[0]}, {shape[1]})")
            fields = [one(item, f"forcing[{index}]")
                      for index, item in enumerate(forcing.reshape(-1, *shape))]
        elif isinstance(forcing, (list, tuple)):
            if not forcing:
                raise ValueError("forcing sequence must not be empty")
            fields = [one(item, f"forcing[{index}]") for index, item in enumerate(forcing)]
        else:
            fields = [one(forcing, "forcing")]
        field = torch.stack([item for item, _ in fields]).unsqueeze(1)
        if not torch.isfinite(field).all():
            raise ValueError("forcing must be finite")
        # The vorticity of a periodic flow has zero mean (its total circulation vanishes), so must f.
        means = field.mean(dim=(-2, -1)).abs().flatten()
        scale = field.abs().amax(dim=(-2, -1)).flatten()
        # Roundoff of a mean over n points is ~n·eps of the field's scale: a dtype-aware tolerance, so a
        # float32 forcing that is zero-mean up to rounding is accepted.
        tolerance = 10 * field[0].numel() * torch.finfo(field.dtype).eps
        if (means > tolerance * scale + 1e-300).any():
            raise ValueError(f"forcing must have zero mean over the periodic domain (a periodic flow has "
                             f"zero total circulation), got means {means.cpu().tolist()}")
        names = [name for _, name in fields]
        return field, names

    def batch_size(self) -> int | None:
        sizes = {value.shape[0] for value in self.parameter_values().values() if value.ndim == 1}
        if self.forcing.shape[0] > 1:
            sizes.add(self.forcing.shape[0])
        if len(sizes) > 1:
            raise ValueError(f"batched viscosity and forcing disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else None

    def describe(self) -> dict:
        description = super().describe()
        description["options"] = {
            "forcing": self.forcing_names if len(self.forcing_names) > 1 else self.forcing_names[0],
            "scheme": self.scheme, "scheme_order": SCHEME_ORDERS[self.scheme], "time_step": self.time_step,
            "warm_up": None if self.warm_up is None else asdict(self.warm_up),
            "random_field": {"alpha": self.random_field_alpha, "tau": self.random_field_tau},
            "dealiasing": "2/3 rule on the advection term",
        }
        return description

    def _operators(self, dtype, device) -> _SpectralOperators:
        key = (dtype, str(device))
        if key not in self._operator_cache:
            self._operator_cache[key] = _SpectralOperators(self.grid.shape, dtype, device)
        return self._operator_cache[key]

    def _check_state(self, y, label: str) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            raise TypeError(f"{label} must be a real floating-point tensor, got {type(y).__name__}")
        expected = (1, *self.grid.shape)
        if y.ndim != 4 or tuple(y.shape[1:]) != expected:
            raise ValueError(f"{label} must have shape (batch, {', '.join(map(str, expected))}), "
                             f"got {tuple(y.shape)}")
        batch = self.batch_size()
        if batch is not None and y.shape[0] != batch:
            raise ValueError(f"{label} has batch size {y.shape[0]} but the batched viscosity/forcing "
                             f"has {batch}")
        return y

    @staticmethod
    def _advection_spectrum(spectrum, operators, dealias: bool = True):
        """``fft2`` spectrum of u·∇ω from that of ω, both ``(batch, 1, ny, nx)``.

        2/3-dealiased unless ``dealias=False`` (the caller then applies ``operators.mask`` itself).
        """
        packed = torch.view_as_real(torch.fft.ifft2(spectrum * operators.packed_multipliers))
        # packed[:, 0] holds (u, ∂ω/∂x) as (real, imaginary) parts, packed[:, 1] holds (v, ∂ω/∂y).
        advection = torch.addcmul(packed[:, 0, ..., 0] * packed[:, 0, ..., 1], packed[:, 1, ..., 0],
                                  packed[:, 1, ..., 1])
        advection_spectrum = torch.fft.fft2(advection).unsqueeze(1)
        return advection_spectrum * operators.mask if dealias else advection_spectrum

    # -- the protocol ----------------------------------------------------------------------------------

    def forward(self, t, y):
        self._check_state(y, "y")
        operators = self._operators(y.dtype, y.device)
        spectrum = torch.fft.fft2(y)
        viscosity = self.broadcast(self.viscosity, y)
        rate = -self._advection_spectrum(spectrum, operators) - viscosity * operators.k_squared * spectrum
        # The rate spectrum is Hermitian (real fields, symmetric factors): its half gives the real field.
        return (torch.fft.irfft2(rate[..., :operators.half_width], s=self.grid.shape)
                + self.forcing.to(y.dtype))

    def velocity(self, vorticity: torch.Tensor) -> torch.Tensor:
        """Velocity (u, v) of vorticity states ``(..., 1, ny, nx)``, shape ``(..., 2, ny, nx)``.

        Works on a solution's ``ys`` too: ``system.velocity(solution.ys)`` has shape
        ``(time, batch, 2, ny, nx)``.
        """
        if not isinstance(vorticity, torch.Tensor) or vorticity.ndim < 3 or \
                tuple(vorticity.shape[-3:]) != (1, *self.grid.shape):
            ny, nx = self.grid.shape
            raise ValueError(f"vorticity must have shape (..., 1, {ny}, {nx}), "
                             f"got {tuple(getattr(vorticity, 'shape', ()))}")
        return velocity_from_vorticity(vorticity[..., 0, :, :], (1.0, 1.0))

    def sample_initial_conditions(self, n, generator, *, warm_up: WarmUp | None | str = "default"):
        """Gaussian random fields (:func:`gaussian_random_field`), spun up by ``warm_up``.

        ``warm_up="default"`` uses the constructor's (LEADS: 28.5 time units under f0, ν = 1e-3, with
        the ``simulate`` scheme and time step: about 28,500 steps for the whole batch at once).  Only
        ``generator`` supplies randomness.  Shape ``(n, 1, ny, nx)``, dtype and device of the parameters.
        Equal to ``spin_up(draw_initial_conditions(n, generator))``.
        """
        return self.spin_up(self.draw_initial_conditions(n, generator), warm_up=warm_up)

    def draw_initial_conditions(self, n, generator):
        """The random part of :meth:`sample_initial_conditions`: fields ``(n, 1, ny, nx)`` before spin-up.

        Dataset generation draws each sample from its own seed with this, then spins the whole shard up
        in one batched :meth:`spin_up` (the spin-up is deterministic and dominates the cost).
        """
        check_count(n)
        fields = gaussian_random_field(n, generator, self.random_field_alpha, self.random_field_tau,
                                       self.grid, dtype=self.viscosity.dtype, device=self.viscosity.device)
        return fields.unsqueeze(1)

    def spin_up(self, fields, *, warm_up: WarmUp | None | str = "default"):
        """Integrate states ``(n, 1, ny, nx)`` through ``warm_up`` (deterministic; all samples at once).

        Examples
        --------
        >>> import torch
        >>> system = NavierStokes2D(grid_size=16, time_step=0.01, warm_up=WarmUp(0.5, "f0", 1e-3))
        >>> raw = system.draw_initial_conditions(3, torch.Generator().manual_seed(0))
        >>> system.spin_up(raw).shape
        torch.Size([3, 1, 16, 16])
        """
        warm_up = self.warm_up if isinstance(warm_up, str) and warm_up == "default" else warm_up
        if warm_up is not None and not isinstance(warm_up, WarmUp):
            raise TypeError(f"warm_up must be a WarmUp, None or 'default', got {warm_up!r}")
        expected = (1, *self.grid.shape)
        if not isinstance(fields, torch.Tensor) or fields.ndim != 4 or tuple(fields.shape[1:]) != expected:
            raise ValueError(f"fields must have shape (n, {', '.join(map(str, expected))}), "
                             f"got {tuple(getattr(fields, 'shape', ()))}")
        if warm_up is None or warm_up.duration == 0:
            return fields
        forcing = self._forcing_field(warm_up.forcing, fields.dtype, fields.device)[0]
        viscosity = torch.tensor(warm_up.viscosity, dtype=fields.dtype, device=fields.device)
        with torch.no_grad():
            ys, _ = self._integrate(fields, [0.0, warm_up.duration], self.time_step, self.scheme, viscosity,
                                    forcing)
        return ys[-1]

    def simulate(self, y0, times, *, method: str | None = None, rtol: float = 1e-8, atol: float = 1e-10,
                 options: Mapping | None = None) -> ODESolution:
        """Integrate from ``y0`` (at ``times[0]``) and return the states at ``times``.

        Parameters
        ----------
        y0 : torch.Tensor
            Vorticity ``(batch, 1, ny, nx)``; dtype and device set those of the computation.
        times : tensor or sequence of float
            Strictly increasing output times (at least two).
        method : str, optional
            ``"fno"`` or ``"cnab2"`` (:data:`SCHEME_ORDERS`; the constructor's ``scheme`` by default): fixed
            step ``options["step_size"]`` (the constructor's ``time_step`` by default), shortened where needed
            so that every output interval holds a whole number of steps.  Any other name is passed to
            :func:`physml.solve_ode` on :meth:`forward` with ``rtol``/``atol``/``options``.
        rtol, atol : float
            Used by the generic solvers only.

        Returns
        -------
        ODESolution
            ``ys`` of shape ``(len(times), *y0.shape)``; ``stats`` counts advection-term evaluations
            (``nfe``) and steps.
        """
        method = self.scheme if method is None else method
        if method not in SCHEME_ORDERS:
            return super().simulate(y0, times, method=method, rtol=rtol, atol=atol, options=options)
        options = dict(options or {})
        unknown = set(options) - {"step_size"}
        if unknown:
            raise ValueError(f"options for the {method!r} scheme accept only 'step_size', "
                             f"got {sorted(unknown)}")
        step_size = _check_positive(options.get("step_size", self.time_step), "options['step_size']")
        self._check_state(y0, "y0")
        times = _check_times(times)
        viscosity = self.broadcast(self.viscosity, y0)
        forcing = self.forcing.to(y0.dtype)
        ys, n_steps = self._integrate(y0, times.tolist(), step_size, method, viscosity, forcing)
        stats = {"nfe": n_steps, "n_steps": n_steps, "n_accepted": n_steps, "n_rejected": 0,
                 "step_size": step_size}
        # Like physml.solve_ode: float64 times on the state's device.
        return ODESolution(ts=times.to(y0.device), ys=ys, stats=stats, status="success")

    def _integrate(self, y0, times, step_size, scheme, viscosity, forcing):
        """Fixed-step semi-implicit integration in Fourier space; returns (states at times, step count).

        Per step, with h the step and L = −ν|k|²:  ω̂ ← [(1 + hL/2) ω̂ + h (f̂ − N̂)] / (1 − hL/2), where N̂
        is the dealiased advection term at the current step (``fno``) or its Adams–Bashforth 2
        extrapolation (``cnab2``, variable-step coefficients when the step changes between intervals).
        """
        operators = self._operators(y0.dtype, y0.device)
        spectrum = torch.fft.fft2(y0)
        forcing_spectrum = torch.fft.fft2(forcing)
        outputs = [y0]
        factors: dict = {}
        previous_advection = previous_step = None
        n_steps = 0
        for start, end in zip(times[:-1], times[1:], strict=True):
            count = max(1, math.ceil((end - start) / step_size - 1e-9))
            step = (end - start) / count
            if step not in factors:
                half = 0.5 * step * viscosity * operators.k_squared
                gain = step / (1 + half)
                # Real factors act on (real, imaginary) pairs; repeating them along that axis keeps the
                # elementwise kernels on contiguous, equally laid out operands (faster than broadcasting).
                factors[step] = (_pairs((1 - half) / (1 + half)), _pairs(gain * operators.mask),
                                 torch.view_as_real(gain * forcing_spectrum).contiguous())
            amplification, masked_gain, forcing_increment = factors[step]
            for _ in range(count):
                # Dealiased through ``masked_gain`` below, which saves a multiplication per step.
                advection = self._advection_spectrum(spectrum, operators, dealias=False)
                explicit = advection
                if scheme == "cnab2" and previous_advection is not None:
                    ratio = step / previous_step
                    explicit = (1 + 0.5 * ratio) * advection - (0.5 * ratio) * previous_advection
                updated = amplification * torch.view_as_real(spectrum)
                updated.addcmul_(masked_gain, torch.view_as_real(explicit), value=-1).add_(forcing_increment)
                spectrum = torch.view_as_complex(updated)
                previous_advection, previous_step = advection, step
            n_steps += count
            outputs.append(torch.fft.irfft2(spectrum[..., :operators.half_width], s=self.grid.shape))
        return torch.stack(outputs), n_steps


def _pairs(factor: torch.Tensor) -> torch.Tensor:
    """A real factor repeated along a new trailing axis of 2, to multiply ``view_as_real`` spectra."""
    return factor.unsqueeze(-1).expand(*factor.shape, 2).contiguous()


def _check_scheme(scheme, label):
    if scheme not in SCHEME_ORDERS:
        raise ValueError(f"{label} must be one of {sorted(SCHEME_ORDERS)}, got {scheme!r}")
    return scheme


def _check_positive(value, label) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value <= 0):
        raise ValueError(f"{label} must be a positive finite number, got {value!r}")
    return float(value)


def _check_times(times) -> torch.Tensor:
    """Output times as a float64 tensor: 1-D, at least two, finite and strictly increasing."""
    try:
        tensor = torch.as_tensor(times, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"times must be a 1-D tensor or sequence of numbers, got {times!r}") from error
    if tensor.ndim != 1 or tensor.numel() < 2:
        raise ValueError(f"times must be 1-D with at least two entries, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all() or not (tensor[1:] > tensor[:-1]).all():
        raise ValueError(f"times must be finite and strictly increasing, got {tensor.tolist()}")
    return tensor


__all__ = [
    "CODA_WARM_UP", "FORCING_AMPLITUDE", "LEADS_WARM_UP", "NavierStokes2D", "PAPER_FORCINGS", "SCHEME_ORDERS",
    "WarmUp", "gaussian_random_field", "paper_forcing", "unit_square_grid",
]
