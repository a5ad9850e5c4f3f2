"""Korteweg–de Vries equation u_t + a u u_x + b u_xxx = 0 (PDE-FIND's two-soliton data: a = 6, b = 1)."""

from __future__ import annotations

import math

import torch

from physml.systems import Grid, ParameterSpec, Variable, check_count, uniform
from simulators.burgers import PseudoSpectralSystem, _domain, _positive_int, _positive_number


class KortewegDeVries(PseudoSpectralSystem):
    """Korteweg–de Vries equation u_t + a u u_x + b u_xxx = 0 on a periodic interval.

    Pseudo-spectral (2/3-rule dealiased, conservative nonlinearity (a/2)(u²)_x); the dispersive term is
    stiff (symbol i b k³), so :meth:`simulate` uses ETDRK4 by default, exact in that term.

    PDE-FIND's setup (Rudy et al. 2017, Table 1) is the default: a = 6, b = 1, x ∈ [−30, 30) with 512
    points, t ∈ [0, 20] saved at 201 times, two solitons.  The solitons
    u = (3c/a) sech²(√(c/b)/2 (x − x0 − c t)) travel at their speed c (:meth:`soliton`).  PDE-FIND
    integrated with ode45 on FFT derivatives (Rudy, PDE-FIND issue #8); ``method="dopri5"`` is the
    analogue here, ETDRK4 is cheaper for the same accuracy.

    Parameters
    ----------
    points : int
        Grid points.
    lower, upper : float
        Domain ends (periodic).
    time_step : float
        Default ETDRK4 step: with 0.002 the fastest default soliton (c = 5, 512 points) is within ~1e-4
        of the exact one after t = 20 (the error falls as h⁴; 0.004 gives ~3e-3).
    speed_range : (float, float)
        Soliton speeds of :meth:`sample_initial_conditions`.
    learnable, dtype, device, advection_coefficient, dispersion_coefficient
        See :class:`physml.systems.System`.

    Examples
    --------
    >>> import torch
    >>> system = KortewegDeVries(points=256)
    >>> x = system.coordinates()
    >>> y0 = system.soliton(x, 0.0, speed=1.0, position=0.0).view(1, 1, -1)
    >>> solution = system.simulate(y0, [0.0, 1.0])
    >>> exact = system.soliton(x, 1.0, speed=1.0, position=0.0)
    >>> bool((solution.ys[-1, 0, 0] - exact).abs().max() < 1e-6)
    True
    """

    name = "korteweg_de_vries"
    title = "Korteweg–de Vries equation"
    state_variables = (Variable("u", "1", "wave amplitude"),)
    parameter_specs = (
        ParameterSpec("advection_coefficient", "1", 6.0, "coefficient a of the nonlinear term u u_x"),
        ParameterSpec("dispersion_coefficient", "1", 1.0, "coefficient b of the dispersive term u_xxx"),
    )
    references = (
        "Rudy et al. (2017), Data-driven discovery of partial differential equations (PDE-FIND), Sci. Adv.; "
        "Kassam & Trefethen (2005), Fourth-order time-stepping for stiff PDEs, SIAM J. Sci. Comput."
    )

    def __init__(self, *, points: int = 512, lower: float = -30.0, upper: float = 30.0,
                 time_step: float = 0.002, speed_range: tuple[float, float] = (1.0, 5.0), learnable=(),
                 dtype=torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        points = _positive_int(points, "points", minimum=4)
        lower, upper = _domain(lower, upper)
        self.time_step = _positive_number(time_step, "time_step")
        low, high = (float(value) for value in speed_range)
        if not (0 < low <= high and math.isfinite(high)):
            raise ValueError(f"speed_range must be (low, high) with 0 < low <= high, got {speed_range!r}")
        self.speed_range = (low, high)
        if not bool((self.dispersion_coefficient > 0).all()):
            raise ValueError(
                f"dispersion_coefficient must be positive, got {self.dispersion_coefficient.tolist()}"
            )
        self.grid = Grid(dims=("x",), shape=(points,), lower=(lower,), upper=(upper,), boundary=("periodic",))

    def linear_symbol(self, like):
        (k,) = self.wave_vectors(like.dtype, like.device)
        # −b ∂³/∂x³ has symbol −b (ik)³ = i b k³ (Nyquist zeroed: an odd derivative).
        return 1j * self.broadcast(self.dispersion_coefficient, like) * k**3

    def nonlinear_spectrum(self, spectrum):
        (k,) = self.wave_vectors(spectrum.real.dtype, spectrum.device)
        u = self.from_spectrum(self.dealias(spectrum))
        coefficient = self.broadcast(self.advection_coefficient, u)
        return -0.5j * k * self.dealias(self.to_spectrum(coefficient * u * u))

    def soliton(self, x, t, *, speed, position) -> torch.Tensor:
        """Periodised soliton (3c/a) sech²(√(c/b)/2 (x − x0 − c t)), exact up to its tails (e^{−√(c/b) L/2}).

        ``speed`` and ``position`` may be tensors broadcasting against ``x``; the scalar coefficients
        a and b are used (not per-sample values).
        """
        x = torch.as_tensor(x)
        speed = torch.as_tensor(speed, dtype=x.dtype, device=x.device)
        position = torch.as_tensor(position, dtype=x.dtype, device=x.device)
        a = float(self.advection_coefficient.detach().reshape(-1)[0])
        b = float(self.dispersion_coefficient.detach().reshape(-1)[0])
        lower, upper = self.grid.lower[0], self.grid.upper[0]
        length = upper - lower
        # Distance to the crest on the circle, in [−L/2, L/2).
        offset = torch.remainder(x - position - speed * t + length / 2, length) - length / 2
        return 3 * speed / a / torch.cosh(0.5 * torch.sqrt(speed / b) * offset) ** 2

    def sample_initial_conditions(self, n, generator):
        """Two solitons per sample from ``generator``, shape ``(n, 1, points)``.

        Speeds uniform on ``speed_range``; the first crest uniform on the domain, the second a uniform
        distance in [L/4, 3L/4) further along the circle, so the pair starts well separated (its
        overlap is below e^{−√c L/8}).  PDE-FIND's exact amplitudes and positions are not documented.
        """
        check_count(n)
        dtype, device = self.dispersion_coefficient.dtype, self.dispersion_coefficient.device
        x = self.coordinates()
        lower, upper = self.grid.lower[0], self.grid.upper[0]
        length = upper - lower
        speeds = uniform(generator, (n, 1, 2), *self.speed_range, dtype, device)
        first = uniform(generator, (n, 1, 1), lower, upper, dtype, device)
        gap = uniform(generator, (n, 1, 1), length / 4, 3 * length / 4, dtype, device)
        positions = torch.cat([first, first + gap], dim=-1)
        return sum(self.soliton(x, 0.0, speed=speeds[..., i:i + 1], position=positions[..., i:i + 1])
                   for i in range(2))


__all__ = ["KortewegDeVries"]
