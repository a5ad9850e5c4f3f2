"""Damped pendulum (APHYNITY): dq/dt = p, dp/dt = -ω0² sin q - α p."""

from __future__ import annotations

import math

import torch

from physml.systems import ParameterSpec, System, Variable, check_count, uniform


class DampedPendulum(System):
    """Damped pendulum with angle ``q`` and angular velocity ``p``.

    With ``alpha = 0`` this is the frictionless pendulum used as APHYNITY's incomplete physical prior
    (``DampedPendulum(alpha=0.0, learnable=["omega0_squared"])``).

    Initial conditions follow APHYNITY: a point uniform in [-1, 1]² rescaled to a radius uniform in
    [1.3, 2.3).

    Examples
    --------
    >>> import torch
    >>> pendulum = DampedPendulum()
    >>> y0 = pendulum.sample_initial_conditions(3, torch.Generator().manual_seed(0))
    >>> pendulum(torch.tensor(0.0), y0).shape
    torch.Size([3, 2])
    """

    name = "damped_pendulum"
    title = "Damped pendulum"
    state_variables = (
        Variable("q", "rad", "pendulum angle"),
        Variable("p", "rad s-1", "angular velocity"),
    )
    parameter_specs = (
        ParameterSpec("omega0_squared", "s-2", (2 * math.pi / 6) ** 2, "squared natural frequency (2π/T0)², T0 = 6"),
        ParameterSpec("alpha", "s-1", 0.2, "damping rate"),
    )
    time_units = "s"
    references = "Yin et al. (2021), Augmenting physical models with deep networks (APHYNITY), ICLR"

    def forward(self, t, y):
        q, p = y[..., 0], y[..., 1]
        omega0_squared = self.broadcast(self.omega0_squared, q)
        alpha = self.broadcast(self.alpha, q)
        return torch.stack([p, -omega0_squared * torch.sin(q) - alpha * p], dim=-1)

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """Mechanical energy per unit inertia, p²/2 + ω0² (1 - cos q): conserved when α = 0."""
        q, p = y[..., 0], y[..., 1]
        return 0.5 * p**2 + self.broadcast(self.omega0_squared, q) * (1 - torch.cos(q))

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        dtype = self.omega0_squared.dtype
        device = self.omega0_squared.device
        point = uniform(generator, (n, 2), -1.0, 1.0, dtype, device)
        radius = uniform(generator, (n, 1), 1.3, 2.3, dtype, device)
        return point / point.norm(dim=1, keepdim=True) * radius
