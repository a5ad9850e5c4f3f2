"""Kuramoto–Sivashinsky equation u_t + u u_x + α u_xx + β u_xxxx = 0 (PDE-FIND: α = β = 1, L = 32π)."""

from __future__ import annotations

import math

import torch

from physml.systems import Grid, ParameterSpec, Variable, check_count, uniform
from simulators.burgers import PseudoSpectralSystem, _domain, _positive_int, _positive_number


class KuramotoSivashinsky(PseudoSpectralSystem):
    """Kuramoto–Sivashinsky equation u_t + u u_x + α u_xx + β u_xxxx = 0 on a periodic interval.

    Long waves grow (anti-diffusion α), short ones are damped (hyperdiffusion β): the linear symbol
    α k² − β k⁴ is stiff, so :meth:`simulate` uses ETDRK4 by default (Kassam & Trefethen's scheme, with
    2/3-rule dealiasing of ½ (u²)_x here).

    PDE-FIND's setup (Rudy et al. 2017, Table 1) is the default: α = β = 1, x ∈ [0, 32π) with 1024
    points, t ∈ [0, 100] saved at 251 times.  Its data were made with Kassam & Trefethen's ETDRK4 code
    (the .mat file keeps that code's names ``uu``, ``tt``) from their initial condition
    u0 = cos(x/16)(1 + sin(x/16)) (:meth:`paper_initial_condition`).

    Parameters
    ----------
    points : int
        Grid points.
    lower, upper : float
        Domain ends (periodic).
    time_step : float
        Default ETDRK4 step.
    learnable, dtype, device, anti_diffusion, hyperdiffusion
        See :class:`physml.systems.System`.

    Examples
    --------
    >>> import torch
    >>> system = KuramotoSivashinsky(points=128)
    >>> y0 = system.paper_initial_condition()
    >>> solution = system.simulate(y0, torch.linspace(0.0, 10.0, 3), step_size=0.25)
    >>> solution.ys.shape, bool(solution.ys.abs().max() < 10)
    (torch.Size([3, 1, 1, 128]), True)
    """

    name = "kuramoto_sivashinsky"
    title = "Kuramoto–Sivashinsky equation"
    state_variables = (Variable("u", "1", "interface height gradient"),)
    parameter_specs = (
        ParameterSpec("anti_diffusion", "1", 1.0, "coefficient α of u_xx (destabilises long waves)"),
        ParameterSpec("hyperdiffusion", "1", 1.0, "coefficient β of u_xxxx (damps short waves)"),
    )
    references = (
        "Rudy et al. (2017), Data-driven discovery of partial differential equations (PDE-FIND), Sci. Adv.; "
        "Kassam & Trefethen (2005), Fourth-order time-stepping for stiff PDEs, SIAM J. Sci. Comput."
    )

    def __init__(self, *, points: int = 1024, lower: float = 0.0, upper: float = 32 * math.pi,
                 time_step: float = 0.025, learnable=(), dtype=torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        points = _positive_int(points, "points", minimum=4)
        lower, upper = _domain(lower, upper)
        self.time_step = _positive_number(time_step, "time_step")
        if not bool((self.hyperdiffusion > 0).all()):
            raise ValueError(f"hyperdiffusion must be positive, got {self.hyperdiffusion.tolist()}")
        self.grid = Grid(dims=("x",), shape=(points,), lower=(lower,), upper=(upper,), boundary=("periodic",))

    def linear_symbol(self, like):
        (k,) = self.wave_vectors(like.dtype, like.device, even=True)
        k_squared = k**2
        return (self.broadcast(self.anti_diffusion, like) * k_squared
                - self.broadcast(self.hyperdiffusion, like) * k_squared**2)

    def nonlinear_spectrum(self, spectrum):
        (k,) = self.wave_vectors(spectrum.real.dtype, spectrum.device)
        u = self.from_spectrum(self.dealias(spectrum))
        return -0.5j * k * self.dealias(self.to_spectrum(u * u))

    def paper_initial_condition(self) -> torch.Tensor:
        """Kassam & Trefethen's u0 = cos(x/16)(1 + sin(x/16)) (for L = 32π), shape ``(1, 1, points)``.

        On other domains the wavenumber 1/16 becomes 2π/L, so the state stays periodic.
        """
        x = self.coordinates()
        kappa = 2 * math.pi / (self.grid.upper[0] - self.grid.lower[0])
        phase = kappa * (x - self.grid.lower[0])
        return (torch.cos(phase) * (1 + torch.sin(phase))).view(1, 1, -1)

    def sample_initial_conditions(self, n, generator):
        """Random smooth states from ``generator``, shape ``(n, 1, points)``.

        Σ_{m=1}^{4} a_m cos(m κ x + φ_m) with κ = 2π/L, a_m ~ U(0, 1)/m and phases uniform: the span of
        the four longest waves, which contains Kassam & Trefethen's cos(κx) + ½ sin(2κx).
        """
        check_count(n)
        dtype, device = self.hyperdiffusion.dtype, self.hyperdiffusion.device
        x = self.coordinates()
        kappa = 2 * math.pi / (self.grid.upper[0] - self.grid.lower[0])
        modes = torch.arange(1, 5, dtype=dtype, device=device)
        amplitudes = uniform(generator, (n, 1, 4, 1), 0.0, 1.0, dtype, device) / modes[:, None]
        phases = uniform(generator, (n, 1, 4, 1), 0.0, 2 * math.pi, dtype, device)
        waves = amplitudes * torch.cos(modes[:, None] * kappa * (x - self.grid.lower[0]) + phases)
        return waves.sum(dim=-2)


__all__ = ["KuramotoSivashinsky"]
