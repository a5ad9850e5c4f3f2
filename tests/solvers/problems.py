"""Reference problems with known or SciPy-computed solutions, shared by the solver tests."""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp

# A damped rotation: y' = A y with y(t) = expm(A t) y0.
ROTATION = torch.tensor([[-0.1, 1.0], [-1.0, -0.1]], dtype=torch.float64)


def linear_field(t, y):
    return y @ ROTATION.T.to(y.dtype)


def linear_exact(y0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    return torch.stack([y0 @ torch.linalg.matrix_exp(ROTATION * float(t)).T.to(y0.dtype) for t in times])


def van_der_pol(mu: float):
    def field(t, y):
        return torch.stack([y[..., 1], mu * (1 - y[..., 0] ** 2) * y[..., 1] - y[..., 0]], dim=-1)

    return field


def lotka_volterra(t, y):
    prey, predator = y[..., 0], y[..., 1]
    return torch.stack([1.5 * prey - prey * predator, -3.0 * predator + prey * predator], dim=-1)


def robertson(t, y):
    y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
    return torch.stack(
        [-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2, 3e7 * y2**2], dim=-1
    )


def scipy_solution(field, y0: torch.Tensor, times: torch.Tensor, method: str = "DOP853") -> torch.Tensor:
    """Reference solution from SciPy at rtol 1e-12 (DOP853, or Radau for stiff problems)."""

    def numpy_field(t, y):
        return field(torch.tensor(t, dtype=torch.float64), torch.from_numpy(y)).numpy()

    times_np = times.numpy()
    span = (float(times_np[0]), float(times_np[-1]))
    solution = solve_ivp(numpy_field, span, y0.numpy(), method=method, t_eval=times_np, rtol=1e-12,
                         atol=1e-14 if method == "DOP853" else 1e-16)
    assert solution.success, solution.message
    return torch.from_numpy(np.ascontiguousarray(solution.y.T))


class RecordingField(torch.nn.Module):
    """Vector field that records every time it is evaluated at."""

    def __init__(self, field):
        super().__init__()
        self.field = field
        self.times: list[float] = []

    def forward(self, t, y, *args):
        self.times.extend(torch.as_tensor(t).reshape(-1).tolist())
        return self.field(t, y, *args)
