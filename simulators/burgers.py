"""Viscous Burgers equations: 1-D (PDE-FIND, Raissi's PINN benchmark) and the 2-D vector form (PDE-Net 2.0).

Also home of :class:`PseudoSpectralSystem`, the base of the periodic semilinear PDEs ``y_t = L y + N(y)``
of this package (Burgers, Korteweg–de Vries, Kuramoto–Sivashinsky): ``L`` is a diagonal Fourier symbol
integrated exactly by ETDRK4 (:mod:`physml.solvers.exponential`), ``N`` a 2/3-dealiased pseudo-spectral
nonlinearity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from physml.operators import dealias_mask, wavenumbers
from physml.solvers import ODESolution
from physml.solvers.exponential import solve_etdrk4
from physml.systems import Grid, ParameterSpec, System, Variable, check_count, uniform

#: Raissi et al.'s Burgers viscosity, 0.01/π.
RAISSI_VISCOSITY = 0.01 / math.pi


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive_number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _domain(lower, upper, name: str = "domain") -> tuple[float, float]:
    lower, upper = float(lower), float(upper)
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        raise ValueError(f"{name} must satisfy lower < upper (finite), got lower={lower}, upper={upper}")
    return lower, upper


class PseudoSpectralSystem(System):
    """Base of semilinear PDEs ``y_t = L y + N(y)`` solved pseudo-spectrally on periodic grids.

    Subclasses set ``self.grid`` (periodic dimensions, or homogeneous Dirichlet through
    :meth:`extend`/:meth:`restrict`) and ``self.time_step`` and implement :meth:`linear_symbol` (the
    diagonal of ``L`` in ``rfftn`` order) and :meth:`nonlinear_spectrum` (``N`` in Fourier space, with
    the 2/3-rule applied through :meth:`dealias`).  Then

    - :meth:`forward` is the right-hand side on the grid (for :func:`physml.solve_ode`, or as a
      differentiable prior);
    - :meth:`simulate` integrates with ETDRK4 on a fixed step (``method="etdrk4"``, the default), or with
      any :func:`physml.solve_ode` method on :meth:`forward`.  Both solve the same semi-discrete system.
    """

    time_step: float = 0.01

    # -- geometry of the periodic computational grid ------------------------------------------------

    @property
    def spatial_ndim(self) -> int:
        return self.grid.ndim

    def periodic_shape(self) -> tuple[int, ...]:
        """Shape of the periodic grid the spectral method works on (the grid itself by default)."""
        return tuple(self.grid.shape)

    def periodic_lengths(self) -> tuple[float, ...]:
        """Periods along each dimension."""
        return tuple(upper - lower for lower, upper in zip(self.grid.lower, self.grid.upper))

    def extend(self, y: torch.Tensor) -> torch.Tensor:
        """Map a state on ``self.grid`` to the periodic computational grid (identity when periodic)."""
        return y

    def restrict(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`extend`."""
        return z

    def wave_vectors(self, dtype, device, *, even: bool = False) -> list[torch.Tensor]:
        """Angular wavenumbers along each dimension, broadcastable over an ``rfftn`` spectrum.

        ``even=True`` keeps the Nyquist mode of even grids (for even-order derivatives, whose symbol
        ``k²`` is real there); odd-order derivatives use the default, which zeroes it.
        """
        key = ("wave_vectors", dtype, str(device), even)
        cache = self.__dict__.setdefault("_spectral_cache", {})
        if key not in cache:
            shape, lengths = self.periodic_shape(), self.periodic_lengths()
            vectors = []
            for axis, (n, length) in enumerate(zip(shape, lengths)):
                last = axis == len(shape) - 1
                if even:
                    frequencies = (torch.fft.rfftfreq if last else torch.fft.fftfreq)(n, d=1.0 / n)
                    k = (2 * math.pi / length) * frequencies.to(dtype=dtype, device=device)
                else:
                    k = wavenumbers(n, length, real=last, dtype=dtype, device=device)
                view = [1] * len(shape)
                view[axis] = -1
                vectors.append(k.view(view))
            cache[key] = vectors
        return cache[key]

    def to_spectrum(self, z: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfftn(z, dim=tuple(range(-self.spatial_ndim, 0)))

    def from_spectrum(self, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfftn(spectrum, s=self.periodic_shape(), dim=tuple(range(-self.spatial_ndim, 0)))

    def dealias(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Zero the modes outside the 2/3-rule box (quadratic products then alias into discarded modes)."""
        key = ("dealias_mask", str(spectrum.device))
        cache = self.__dict__.setdefault("_spectral_cache", {})
        if key not in cache:
            cache[key] = dealias_mask(self.periodic_shape(), real=True, device=spectrum.device)
        return spectrum * cache[key]

    def coordinates(self, dtype=None, device=None) -> torch.Tensor:
        """Coordinates of a 1-D grid, in the parameters' dtype and device by default (2-D: ``grid.mesh``)."""
        if self.grid.ndim != 1:
            raise ValueError(
                f"coordinates() serves 1-D grids; {self.name} has dims {self.grid.dims}, use grid.mesh()"
            )
        reference = next(iter(self.parameter_values().values()))
        return torch.as_tensor(self.grid.coordinates()[self.grid.dims[0]], dtype=dtype or reference.dtype,
                               device=device or reference.device)

    # -- the semilinear splitting (subclasses) --------------------------------------------------------

    def linear_symbol(self, like: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Diagonal of ``L``, broadcastable against the spectrum of ``like`` (a real field, batch first)."""
        raise NotImplementedError

    def nonlinear_spectrum(self, spectrum: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Fourier coefficients of ``N`` for the state with Fourier coefficients ``spectrum``."""
        raise NotImplementedError

    # -- the protocol --------------------------------------------------------------------------------

    def validate_state(self, y: torch.Tensor, name: str = "y0") -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            raise TypeError(f"{name} must be a real floating-point tensor, got {type(y).__name__}"
                            + (f" of dtype {y.dtype}" if isinstance(y, torch.Tensor) else ""))
        if y.ndim != 1 + len(self.state_shape) or tuple(y.shape[1:]) != self.state_shape:
            raise ValueError(
                f"{name} must have shape (batch, {', '.join(map(str, self.state_shape))}) for {self.name}, "
                f"got {tuple(y.shape)}"
            )
        return y

    def forward(self, t, y):
        field = self.extend(y)
        spectrum = self.to_spectrum(field)
        rate = self.linear_symbol(field) * spectrum + self.nonlinear_spectrum(spectrum)
        return self.restrict(self.from_spectrum(rate))

    def simulate(self, y0: torch.Tensor, times, *, method: str = "etdrk4", step_size: float | None = None,
                 rtol: float = 1e-8, atol: float = 1e-10, options: Mapping | None = None,
                 contour_points: int = 32) -> ODESolution:
        """Integrate from ``y0`` (shape ``(batch, *state_shape)``) and return the states at ``times``.

        Parameters
        ----------
        y0 : torch.Tensor
            Initial states; dtype and device are followed.
        times : torch.Tensor or sequence of float
            Output times (strictly increasing for ETDRK4).
        method : str
            ``"etdrk4"`` (fixed step, exact in the stiff linear part) or any :func:`physml.solve_ode`
            method applied to :meth:`forward`.
        step_size : float, optional
            ETDRK4 step; defaults to ``options["step_size"]`` or the system's ``time_step``.
        rtol, atol, options
            Passed to :func:`physml.solve_ode` for the other methods.
        contour_points : int
            Contour points of the ETDRK4 φ-function weights.

        Returns
        -------
        ODESolution
            ``ys`` of shape ``(len(times), *y0.shape)``.
        """
        y0 = self.validate_state(y0)
        if method != "etdrk4":
            if step_size is not None:
                options = {**dict(options or {}), "step_size": step_size}
            return super().simulate(y0, times, method=method, rtol=rtol, atol=atol, options=options)
        if options:
            unknown = sorted(set(options) - {"step_size"})
            if unknown:
                raise ValueError(
                    f"options {unknown} are not understood by method 'etdrk4'; it accepts: step_size"
                )
            if step_size is None:
                step_size = options.get("step_size")
        step_size = self.time_step if step_size is None else _positive_number(step_size, "step_size")
        field = self.extend(y0)
        spectrum0 = self.to_spectrum(field)
        linear = self.linear_symbol(field)

        def nonlinear(t, spectrum):
            return self.nonlinear_spectrum(spectrum)

        solution = solve_etdrk4(linear, nonlinear, spectrum0, times, step_size=step_size,
                                contour_points=contour_points)
        solution.ys = self.restrict(self.from_spectrum(solution.ys))
        solution.stats["step_size"] = step_size
        return solution


class Burgers1D(PseudoSpectralSystem):
    """Viscous Burgers equation u_t + u u_x = ν u_xx on a periodic or homogeneous-Dirichlet interval.

    Pseudo-spectral in space (2/3-rule dealiased, conservative nonlinearity ½ (u²)_x) and ETDRK4 in
    time by default.  Dirichlet conditions u(lower) = u(upper) = 0 are exact through the odd reflection:
    Burgers' equation is invariant under (x, u) → (−x, −u), so the odd extension of the state to an
    interval twice as long stays odd and its periodic solution vanishes on the boundary.  The boundary
    entries of the state are taken as zero.

    Two setups of the literature:

    - PDE-FIND (Rudy et al. 2017), the default: ν = 0.1, periodic on x ∈ [−8, 8) with 256 points,
      t ∈ [0, 10] saved every 0.1 (101 times), a Gaussian bump steepening into a travelling front
      (:meth:`paper_initial_condition`; the data's exact centre is not documented, −2 is our choice).
      PDE-FIND integrated with ode45 on FFT derivatives (Rudy, PDE-FIND issue #8);
      ``simulate(y0, t, method="dopri5")`` on :meth:`forward` is the analogue here.
    - Raissi et al. (2019), :meth:`raissi`: ν = 0.01/π, Dirichlet on [−1, 1], u0 = −sin(πx).  The
      front at x = 0 is ~ν thick, so a PDE solve needs thousands of points; the reference data come
      from the exact Cole–Hopf solution, :func:`raissi_reference`.

    Parameters
    ----------
    points : int
        Grid points (periodic: without the repeated end point; Dirichlet: including both ends).
    lower, upper : float
        Domain ends.
    boundary : {"periodic", "dirichlet"}
    time_step : float
        Default ETDRK4 step of :meth:`simulate`.
    learnable, dtype, device, viscosity
        See :class:`physml.systems.System`; ``viscosity`` may hold one value per batch member.

    Examples
    --------
    >>> import torch
    >>> system = Burgers1D(points=64)
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> solution = system.simulate(y0, torch.linspace(0.0, 1.0, 3))
    >>> solution.ys.shape
    torch.Size([3, 2, 1, 64])
    >>> mass = solution.ys.sum(dim=-1)  # periodic Burgers conserves the mean
    >>> bool(torch.allclose(mass[-1], mass[0]))
    True
    """

    name = "burgers_1d"
    title = "Viscous Burgers equation (1-D)"
    state_variables = (Variable("u", "1", "velocity"),)
    parameter_specs = (ParameterSpec("viscosity", "1", 0.1, "kinematic viscosity ν"),)
    references = (
        "Rudy et al. (2017), Data-driven discovery of partial differential equations (PDE-FIND), Sci. Adv.; "
        "Raissi, Perdikaris & Karniadakis (2019), Physics-informed neural networks, J. Comput. Phys.; "
        "Basdevant et al. (1986), Spectral and finite difference solutions of the Burgers equation, "
        "Comput. Fluids"
    )
    boundary_conditions = ("periodic", "dirichlet")

    def __init__(self, *, points: int = 256, lower: float = -8.0, upper: float = 8.0,
                 boundary: str = "periodic", time_step: float = 0.01, learnable=(), dtype=torch.float64,
                 device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        if boundary not in self.boundary_conditions:
            raise ValueError(f"boundary must be one of {self.boundary_conditions}, got {boundary!r}")
        points = _positive_int(points, "points", minimum=4 if boundary == "periodic" else 3)
        lower, upper = _domain(lower, upper)
        self.time_step = _positive_number(time_step, "time_step")
        if not bool((self.viscosity > 0).all()):
            raise ValueError(f"viscosity must be positive, got {self.viscosity.tolist()}")
        self.boundary = boundary
        self.grid = Grid(dims=("x",), shape=(points,), lower=(lower,), upper=(upper,), boundary=(boundary,))

    @classmethod
    def pde_find(cls, **options) -> Burgers1D:
        """The PDE-FIND setup (the defaults): ν = 0.1, periodic, 256 points on [−8, 8)."""
        return cls(**options)

    @classmethod
    def raissi(cls, *, points: int = 8 * 255 + 1, time_step: float = 2.5e-4, **options) -> Burgers1D:
        """Raissi's setup: ν = 0.01/π, homogeneous Dirichlet on [−1, 1].

        The default 2041 points hold Raissi's 256-point grid as every 8th point and resolve the front
        (spacing ≈ ν/3); the step keeps ETDRK4 stable for |u| ≤ 1 at that resolution.
        """
        options.setdefault("viscosity", RAISSI_VISCOSITY)
        return cls(points=points, lower=-1.0, upper=1.0, boundary="dirichlet", time_step=time_step, **options)

    # -- spectral method ------------------------------------------------------------------------------

    def periodic_shape(self):
        n = self.grid.shape[0]
        return (n,) if self.boundary == "periodic" else (2 * (n - 1),)

    def periodic_lengths(self):
        length = self.grid.upper[0] - self.grid.lower[0]
        return (length,) if self.boundary == "periodic" else (2 * length,)

    def extend(self, y):
        if self.boundary == "periodic":
            return y
        interior = y[..., 1:-1]
        zero = torch.zeros_like(y[..., :1])
        return torch.cat([zero, interior, zero, -interior.flip(-1)], dim=-1)

    def restrict(self, z):
        if self.boundary == "periodic":
            return z
        # The odd extension vanishes at the reflection points up to rounding; return exact zeros there.
        zero = torch.zeros_like(z[..., :1])
        return torch.cat([zero, z[..., 1 : self.grid.shape[0] - 1], zero], dim=-1)

    def validate_state(self, y, name="y0"):
        y = super().validate_state(y, name)
        if self.boundary == "dirichlet":
            boundary = torch.stack([y[..., 0], y[..., -1]]).abs().max()
            if boundary > 1e-8 * (1 + float(y.abs().max())):
                raise ValueError(f"{name} must vanish on the Dirichlet boundary (u = 0 at both ends), got "
                                 f"max |u| = {float(boundary):.3g} there")
        return y

    def linear_symbol(self, like):
        (k,) = self.wave_vectors(like.dtype, like.device, even=True)
        return -self.broadcast(self.viscosity, like) * k**2

    def nonlinear_spectrum(self, spectrum):
        (k,) = self.wave_vectors(spectrum.real.dtype, spectrum.device)
        u = self.from_spectrum(self.dealias(spectrum))
        return -0.5j * k * self.dealias(self.to_spectrum(u * u))

    # -- initial conditions ---------------------------------------------------------------------------

    def _periodic_gaussian(self, x, amplitude, centre, width):
        length = self.grid.upper[0] - self.grid.lower[0]
        # A sum over periodic images keeps the bump smooth across the boundary.
        return sum(amplitude * torch.exp(-(((x - centre + image * length) / width) ** 2))
                   for image in range(-2, 3))

    def paper_initial_condition(self) -> torch.Tensor:
        """The setup's initial condition, shape ``(1, 1, points)``.

        Periodic: the Gaussian exp(−(x + 2)²) (periodised); Dirichlet: −sin(2π (x − centre) / length),
        which is Raissi's −sin(πx) on [−1, 1].
        """
        x = self.coordinates()
        if self.boundary == "periodic":
            u = self._periodic_gaussian(x, 1.0, -2.0, 1.0)
        else:
            lower, upper = self.grid.lower[0], self.grid.upper[0]
            u = -torch.sin(2 * math.pi * (x - 0.5 * (lower + upper)) / (upper - lower))
            u[0] = u[-1] = 0.0
        return u.view(1, 1, -1)

    def sample_initial_conditions(self, n, generator):
        """Random initial states from ``generator``, shape ``(n, 1, points)``.

        Periodic: a periodised Gaussian bump a exp(−((x − c)/w)²) with a ~ U(0.5, 1.5), c uniform in the
        middle half of the domain and w ~ U(0.75, 1.5) (PDE-FIND's family of one bump).  Dirichlet: a
        sine series Σ_{m=1}^{4} b_m sin(mπ (x − lower)/length) with b_m ~ U(−1, 1)/m, which vanishes on
        the boundary and contains Raissi's −sin(πx).
        """
        check_count(n)
        dtype, device = self.viscosity.dtype, self.viscosity.device
        x = self.coordinates()
        lower, upper = self.grid.lower[0], self.grid.upper[0]
        length = upper - lower
        if self.boundary == "periodic":
            amplitude = uniform(generator, (n, 1, 1), 0.5, 1.5, dtype, device)
            centre = uniform(generator, (n, 1, 1), lower + length / 4, upper - length / 4, dtype, device)
            width = uniform(generator, (n, 1, 1), 0.75, 1.5, dtype, device)
            return self._periodic_gaussian(x, amplitude, centre, width)
        modes = torch.arange(1, 5, dtype=dtype, device=device)
        coefficients = uniform(generator, (n, 1, 4), -1.0, 1.0, dtype, device) / modes
        basis = torch.sin(math.pi * modes[:, None] * (x - lower) / length)
        u = coefficients @ basis
        u[..., 0] = u[..., -1] = 0.0
        return u


def burgers_cole_hopf_cosine(x, t, *, viscosity: float, offset: float = 2.0, length: float = 2 * math.pi):
    """Exact periodic Burgers solution from the heat solution φ = offset + exp(−ν κ² t) cos(κ x).

    With κ = 2π/length, u = −2ν φ_x/φ = 2νκ exp(−νκ²t) sin(κx) / (offset + exp(−νκ²t) cos(κx)) solves
    u_t + u u_x = ν u_xx (Cole–Hopf); ``offset > 1`` keeps φ positive.  Broadcasts ``x`` against ``t``.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1]
    >>> burgers_cole_hopf_cosine(x, 0.0, viscosity=0.5).abs().max() < 1
    tensor(True)
    """
    if not offset > 1:
        raise ValueError(f"offset must exceed 1 so that the heat solution stays positive, got {offset}")
    x = torch.as_tensor(x, dtype=torch.float64) if not isinstance(x, torch.Tensor) else x
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    kappa = 2 * math.pi / length
    decay = torch.exp(-viscosity * kappa**2 * t)
    return 2 * viscosity * kappa * decay * torch.sin(kappa * x) / (offset + decay * torch.cos(kappa * x))


def raissi_reference(nx: int = 256, nt: int = 100, *, final_time: float = 0.99,
                     viscosity: float = RAISSI_VISCOSITY, quadrature_points: int = 120, dtype=torch.float64,
                     device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact solution of Raissi's Burgers problem by Cole–Hopf and Gauss–Hermite quadrature.

    u_t + u u_x = ν u_xx on x ∈ [−1, 1], u(0, x) = −sin(πx), u(t, ±1) = 0.  Following Basdevant et al.
    (1986), with f(y) = exp(−cos(πy)/(2πν)) and η = 2√(νt) z,

        u(x, t) = −∫ sin(π(x − η)) f(x − η) e^{−z²} dz / ∫ f(x − η) e^{−z²} dz,

    evaluated with ``quadrature_points`` Gauss–Hermite nodes in log space (f spans e^{±1/(2πν)}).  With
    the defaults this reproduces Basdevant's max |u_x| = 152.00516 at t = 1.6037/π, and 120 nodes are
    converged to rounding on Raissi's grid.

    Parameters
    ----------
    nx, nt : int
        Points in x (``linspace(-1, 1, nx)``) and t (``linspace(0, final_time, nt)``).
    final_time : float
        Last time; Raissi's ``burgers_shock.mat`` (= DeepXDE's ``Burgers.npz``) stops at 0.99 with
        100 times (step 0.01) inside the problem's t ∈ [0, 1].
    viscosity : float
        ν (0.01/π).
    quadrature_points : int
        Gauss–Hermite nodes (at most 150: NumPy's weights overflow beyond ~200).

    Returns
    -------
    x : torch.Tensor, shape (nx,)
    t : torch.Tensor, shape (nt,)
    u : torch.Tensor, shape (nt, nx)
        Time first as in physml datasets; Raissi's ``usol`` is the transpose (256 × 100).

    Examples
    --------
    >>> x, t, u = raissi_reference(nx=5, nt=3)
    >>> u.shape, float(t[-1])
    (torch.Size([3, 5]), 0.99)
    """
    nx = _positive_int(nx, "nx", minimum=2)
    nt = _positive_int(nt, "nt", minimum=1)
    final_time = _positive_number(final_time, "final_time")
    viscosity = _positive_number(viscosity, "viscosity")
    quadrature_points = _positive_int(quadrature_points, "quadrature_points", minimum=2)
    if quadrature_points > 150:
        raise ValueError(f"quadrature_points must be at most 150 (Gauss–Hermite weights overflow), got "
                         f"{quadrature_points}")
    x = torch.linspace(-1.0, 1.0, nx, dtype=torch.float64, device=device)
    t = torch.linspace(0.0, final_time, nt, dtype=torch.float64, device=device)
    u = cole_hopf_sine(x, t, viscosity=viscosity, quadrature_points=quadrature_points)
    return x.to(dtype), t.to(dtype), u.to(dtype)


def cole_hopf_sine(x: torch.Tensor, t: torch.Tensor, *, viscosity: float, quadrature_points: int = 120):
    """Cole–Hopf solution for u0 = −sin(πx) at every (t, x) pair of the 1-D tensors ``t`` and ``x``.

    Returns shape ``(len(t), len(x))``; rows with t = 0 are −sin(πx) exactly.  Differentiable in ``x``
    (autograd gives u_x).
    """
    nodes, weights = np.polynomial.hermite.hermgauss(quadrature_points)
    nodes = torch.as_tensor(nodes, dtype=x.dtype, device=x.device)
    log_weights = torch.log(torch.as_tensor(weights, dtype=x.dtype, device=x.device))
    scale = torch.sqrt(4 * viscosity * t.to(x.dtype))[:, None, None]
    shifted = x[None, :, None] - scale * nodes
    exponent = log_weights - torch.cos(math.pi * shifted) / (2 * math.pi * viscosity)
    # Subtract the largest exponent per point: the weights span e^{±1/(2πν)} = e^{±50}.
    weight = torch.exp(exponent - exponent.detach().amax(dim=-1, keepdim=True))
    return -(torch.sin(math.pi * shifted) * weight).sum(-1) / weight.sum(-1)


class Burgers2D(PseudoSpectralSystem):
    """PDE-Net 2.0's vector Burgers equation on the periodic square [0, 2π)².

    u_t = −u u_x − v u_y + ν Δu,  v_t = −u v_x − v v_y + ν Δv.

    State ``(batch, 2, ny, nx)`` with grid dims ``("y", "x")``; pseudo-spectral with the 2/3 rule (fields
    truncated before the products, products truncated after), ETDRK4 in time.  The flow need not be
    divergence-free.

    Initial conditions follow aTEAM's ``initgen`` as PDE-Net 2.0 calls it: per sample and component,
    white noise on the grid is low-pass filtered to the Fourier modes with |k_x|, |k_y| ≤
    ``initial_frequency`` (4), normalised to max |·| = 1, multiplied by ``initial_amplitude`` (2) and
    shifted by a constant uniform on (−``initial_shift``, ``initial_shift``) = (−2, 2).  PDE-Net 2.0
    also pre-evolves half of each batch to t = 1 (``data_start_time``); that is a dataset choice, done
    by simulating.

    Parameters
    ----------
    points : int or (int, int)
        Grid points (ny, nx).  PDE-Net 2.0 generates on 128² (the default) and observes every 4th point
        (32², δx = 2π/32).  From the default initial conditions, a 128² solve is within ~3e-4 of a
        256² one at t = 1; a 32² solve is off by ~0.1 (fronts ~4ν/|Δu| thin are not resolved).
    time_step : float
        Default ETDRK4 step (PDE-Net's δt = 0.01 is four steps).
    initial_frequency, initial_amplitude, initial_shift
        The initial-condition family above.
    learnable, dtype, device, viscosity
        See :class:`physml.systems.System` (ν = 0.05 by default).

    Examples
    --------
    >>> import torch
    >>> system = Burgers2D(points=32)
    >>> y0 = system.sample_initial_conditions(3, torch.Generator().manual_seed(0))
    >>> y0.shape
    torch.Size([3, 2, 32, 32])
    >>> system.simulate(y0, [0.0, 0.01]).ys.shape
    torch.Size([2, 3, 2, 32, 32])
    """

    name = "burgers_2d"
    title = "Viscous vector Burgers equation (2-D, PDE-Net 2.0)"
    state_variables = (
        Variable("u", "1", "velocity along x"),
        Variable("v", "1", "velocity along y"),
    )
    parameter_specs = (ParameterSpec("viscosity", "1", 0.05, "kinematic viscosity ν"),)
    references = (
        "Long, Lu & Dong (2019), PDE-Net 2.0: Learning PDEs from data with a numeric-symbolic hybrid deep "
        "network, J. Comput. Phys."
    )

    def __init__(self, *, points: int | Sequence[int] = 128, time_step: float = 2.5e-3,
                 initial_frequency: int = 4, initial_amplitude: float = 2.0, initial_shift: float = 2.0,
                 learnable=(), dtype=torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        if isinstance(points, int) and not isinstance(points, bool):
            points = (points, points)
        if not (isinstance(points, Sequence) and len(points) == 2):
            raise ValueError(f"points must be an integer or a pair (ny, nx), got {points!r}")
        ny, nx = (_positive_int(p, "points", minimum=4) for p in points)
        self.time_step = _positive_number(time_step, "time_step")
        self.initial_frequency = _positive_int(initial_frequency, "initial_frequency")
        if 2 * self.initial_frequency + 1 > min(ny, nx):
            raise ValueError(f"initial_frequency must satisfy 2 * initial_frequency + 1 <= min(points) = "
                             f"{min(ny, nx)}, got {initial_frequency}")
        self.initial_amplitude = _positive_number(initial_amplitude, "initial_amplitude")
        self.initial_shift = float(initial_shift)
        if not (self.initial_shift >= 0 and math.isfinite(self.initial_shift)):
            raise ValueError(f"initial_shift must be a non-negative number, got {initial_shift!r}")
        if not bool((self.viscosity > 0).all()):
            raise ValueError(f"viscosity must be positive, got {self.viscosity.tolist()}")
        self.grid = Grid(dims=("y", "x"), shape=(ny, nx), lower=(0.0, 0.0), upper=(2 * math.pi, 2 * math.pi),
                         boundary=("periodic", "periodic"))

    def linear_symbol(self, like):
        ky, kx = self.wave_vectors(like.dtype, like.device, even=True)
        return -self.broadcast(self.viscosity, like) * (ky**2 + kx**2)

    def nonlinear_spectrum(self, spectrum):
        ky, kx = self.wave_vectors(spectrum.real.dtype, spectrum.device)
        truncated = self.dealias(spectrum)
        velocity = self.from_spectrum(truncated)  # (batch, 2, ny, nx)
        u, v = velocity[:, :1], velocity[:, 1:]
        d_dx = self.from_spectrum(1j * kx * truncated)
        d_dy = self.from_spectrum(1j * ky * truncated)
        advection = u * d_dx + v * d_dy  # (u·∇) applied to both components
        return -self.dealias(self.to_spectrum(advection))

    def sample_initial_conditions(self, n, generator):
        """PDE-Net 2.0 initial velocities from ``generator``, shape ``(n, 2, ny, nx)`` (see the class)."""
        check_count(n)
        dtype, device = self.viscosity.dtype, self.viscosity.device
        ny, nx = self.grid.shape
        noise = torch.randn((n, 2, ny, nx), generator=generator, dtype=dtype, device=device)
        spectrum = torch.fft.fft2(noise)
        keep_y = torch.fft.fftfreq(ny, d=1.0 / ny, device=device).abs() <= self.initial_frequency
        keep_x = torch.fft.fftfreq(nx, d=1.0 / nx, device=device).abs() <= self.initial_frequency
        # A symmetric box of modes keeps the Hermitian symmetry, so the filtered field is real.
        field = torch.fft.ifft2(spectrum * (keep_y[:, None] & keep_x[None, :])).real
        field = field / field.abs().amax(dim=(-2, -1), keepdim=True)
        shift = uniform(generator, (n, 2, 1, 1), -self.initial_shift, self.initial_shift, dtype, device)
        return self.initial_amplitude * field + shift


__all__ = [
    "Burgers1D", "Burgers2D", "PseudoSpectralSystem", "RAISSI_VISCOSITY", "burgers_cole_hopf_cosine",
    "cole_hopf_sine", "raissi_reference",
]
