"""Exponential time differencing for stiff semilinear problems: ETDRK4 (Cox & Matthews 2002).

A semilinear problem ``dv/dt = L v + N(t, v)`` whose stiff part ``L`` is diagonal (a Fourier symbol:
diffusion ``-ν k²``, dispersion ``i k³``, hyperdiffusion ``k² - k⁴``) is integrated exactly in its linear
part, so the step size is limited by the nonlinear term only.  The φ-function weights are evaluated by
Kassam & Trefethen's (2005) contour integrals: each weight is the mean of its formula over points on a
circle of radius one around ``h L``, which avoids the cancellation of the closed forms near ``h L = 0``.

Everything is a torch operation on the inputs' dtype and device, so gradients flow to parameters that
enter ``L`` (a learnable viscosity, say) and ``N``.

References
----------
S. M. Cox and P. C. Matthews, "Exponential time differencing for stiff systems", J. Comput. Phys. 176
(2002) 430-455.  A.-K. Kassam and L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J.
Sci. Comput. 26 (2005) 1214-1233.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validation import check_positive_int, check_state, check_times, check_tolerance
from .ode import ODESolution

#: Exponential integrators with their order and stage count, as data (the tests check the order).
EXPONENTIAL_METHODS: dict[str, dict] = {
    "etdrk4": {"order": 4, "stages": 4, "adaptive": False, "implicit": False},
}


@dataclass(frozen=True)
class ETDRK4Weights:
    """Per-mode weights of one ETDRK4 step of size ``h`` (all shaped like the linear symbol).

    Attributes
    ----------
    full_step_exponential, half_step_exponential : torch.Tensor
        ``exp(h L)`` and ``exp(h L / 2)``.
    half_step_weight : torch.Tensor
        ``h φ1(h L / 2) / 2 = (exp(h L / 2) - 1) / L``, weight of the nonlinear term in the stages.
    first_stage_weight, middle_stages_weight, last_stage_weight : torch.Tensor
        Cox & Matthews' ``f1``, ``f2``, ``f3`` (times ``h``), weights of ``N(v)``, ``N(a) + N(b)`` (with a
        factor 2 applied in the step) and ``N(c)`` in the update.
    """

    full_step_exponential: torch.Tensor
    half_step_exponential: torch.Tensor
    half_step_weight: torch.Tensor
    first_stage_weight: torch.Tensor
    middle_stages_weight: torch.Tensor
    last_stage_weight: torch.Tensor


def etdrk4_weights(linear: torch.Tensor, step_size: float, *, contour_points: int = 32,
                   real: bool | None = None) -> ETDRK4Weights:
    """ETDRK4 weights for the diagonal linear symbol ``linear`` and step ``step_size``.

    Parameters
    ----------
    linear : torch.Tensor
        Diagonal of ``L`` (real or complex), any shape; a leading batch dimension gives one operator
        per sample.
    step_size : float
        The step ``h`` (positive).
    contour_points : int
        Points on the circle of radius one around each ``h L`` (Kassam & Trefethen use 32 on a half
        circle for real symbols; the full circle here also serves complex symbols).
    real : bool, optional
        Return real weights; defaults to ``not linear.is_complex()``.

    Returns
    -------
    ETDRK4Weights

    Examples
    --------
    >>> import torch
    >>> weights = etdrk4_weights(torch.tensor([0.0, -1.0], dtype=torch.float64), 0.1)
    >>> [round(value, 10) for value in weights.half_step_weight.tolist()]  # (exp(hL/2) - 1) / L
    [0.05, 0.0487705755]
    """
    if not isinstance(linear, torch.Tensor):
        raise TypeError(f"linear must be a torch.Tensor, got {type(linear).__name__}")
    step_size = check_tolerance(step_size, name="step_size")
    contour_points = check_positive_int(contour_points, name="contour_points")
    if real is None:
        real = not linear.is_complex()
    complex_dtype = linear.dtype if linear.is_complex() else (
        torch.complex128 if linear.dtype == torch.float64 else torch.complex64)
    z = (step_size * linear).to(complex_dtype)
    # Points (j - 1/2) 2π / M on the unit circle: never exactly on the real axis, so a real z = -1 cannot
    # put a node on the removable singularity at 0.
    angles = 2 * math.pi * (torch.arange(contour_points, dtype=torch.float64, device=linear.device) + 0.5)
    angles = angles / contour_points
    circle = torch.polar(torch.ones_like(angles), angles).to(complex_dtype)
    nodes = z.unsqueeze(-1) + circle
    exp_nodes = torch.exp(nodes)

    def contour_mean(values):
        mean = values.mean(dim=-1)
        return mean.real if real else mean

    h = step_size
    half_step_weight = h * contour_mean((torch.exp(nodes / 2) - 1) / nodes)
    first = h * contour_mean((-4 - nodes + exp_nodes * (4 - 3 * nodes + nodes**2)) / nodes**3)
    middle = h * contour_mean((2 + nodes + exp_nodes * (nodes - 2)) / nodes**3)
    last = h * contour_mean((-4 - 3 * nodes - nodes**2 + exp_nodes * (4 - nodes)) / nodes**3)
    full = torch.exp(z)
    half = torch.exp(z / 2)
    if real:
        full, half = full.real, half.real
    return ETDRK4Weights(full, half, half_step_weight, first, middle, last)


def etdrk4_step(nonlinear: Callable, t: float, v: torch.Tensor, step_size: float,
                weights: ETDRK4Weights) -> torch.Tensor:
    """One ETDRK4 step from ``(t, v)``: four evaluations of ``nonlinear(t, v)``.

    The stages follow Cox & Matthews (2002), eq. (26)-(29).
    """
    w = weights
    nonlinear_v = nonlinear(t, v)
    a = w.half_step_exponential * v + w.half_step_weight * nonlinear_v
    nonlinear_a = nonlinear(t + step_size / 2, a)
    b = w.half_step_exponential * v + w.half_step_weight * nonlinear_a
    nonlinear_b = nonlinear(t + step_size / 2, b)
    c = w.half_step_exponential * a + w.half_step_weight * (2 * nonlinear_b - nonlinear_v)
    nonlinear_c = nonlinear(t + step_size, c)
    return (w.full_step_exponential * v + w.first_stage_weight * nonlinear_v
            + 2 * w.middle_stages_weight * (nonlinear_a + nonlinear_b) + w.last_stage_weight * nonlinear_c)


def solve_etdrk4(linear: torch.Tensor, nonlinear: Callable, y0: torch.Tensor, t, *, step_size: float,
                 contour_points: int = 32) -> ODESolution:
    """Integrate ``dy/dt = linear * y + nonlinear(t, y)`` with fixed-step ETDRK4.

    Each output interval is split into ``ceil(Δt / step_size)`` equal steps, so the outputs are hit
    exactly (no interpolation); the weights are computed once per distinct step.

    Parameters
    ----------
    linear : torch.Tensor
        Diagonal of the stiff linear operator, broadcastable against ``y0`` (real or complex).
    nonlinear : callable
        ``nonlinear(t, y)`` with ``t`` a float, returning a tensor shaped like ``y``.
    y0 : torch.Tensor
        Initial state (real, or complex such as Fourier coefficients), any shape.
    t : torch.Tensor or sequence of float
        Strictly increasing output times (exponential integrators of dissipative problems do not run
        backwards).
    step_size : float
        Largest internal step.
    contour_points : int
        See :func:`etdrk4_weights`.

    Returns
    -------
    ODESolution
        ``ys`` of shape ``(len(t), *y0.shape)``; ``stats`` with ``nfe`` (4 per step), ``n_steps``,
        ``n_accepted`` and ``n_rejected`` (always 0).

    Examples
    --------
    >>> import torch
    >>> y0 = torch.ones(1, dtype=torch.float64)
    >>> solution = solve_etdrk4(torch.tensor([-1000.0], dtype=torch.float64), lambda t, y: torch.ones_like(y),
    ...                         y0, [0.0, 1.0], step_size=0.5)
    >>> round(float(solution.ys[-1, 0]), 6)  # stiff decay onto the equilibrium 1/1000, exact in one step
    0.001
    """
    y0 = check_state(y0)
    times = check_times(t, y0)
    time_list = times.tolist()
    if time_list[-1] < time_list[0]:
        raise ValueError(
            f"t must be strictly increasing for solve_etdrk4, got {time_list[0]} ... {time_list[-1]}"
        )
    step_size = check_tolerance(step_size, name="step_size")
    if not isinstance(linear, torch.Tensor):
        raise TypeError(f"linear must be a torch.Tensor, got {type(linear).__name__}")
    try:
        torch.broadcast_shapes(linear.shape, y0.shape)
    except RuntimeError:
        raise ValueError(
            f"linear of shape {tuple(linear.shape)} does not broadcast against y0 of shape {tuple(y0.shape)}"
        ) from None
    # A real symbol gives real weights even for a complex state (Fourier coefficients of a real field).
    real = not linear.is_complex()
    if linear.is_complex() and not y0.is_complex():
        raise TypeError(
            f"y0 must be complex when linear is complex (the state becomes complex), got dtype {y0.dtype}"
        )

    weights_by_step: dict[float, ETDRK4Weights] = {}
    outputs = [y0]
    y = y0
    n_steps = 0
    for start, end in zip(time_list[:-1], time_list[1:]):
        n = max(1, math.ceil((end - start) / step_size - 1e-9))
        step = (end - start) / n
        key = round(step, 15)
        if key not in weights_by_step:
            weights_by_step[key] = etdrk4_weights(linear, step, contour_points=contour_points, real=real)
        weights = weights_by_step[key]
        for index in range(n):
            y = etdrk4_step(nonlinear, start + index * step, y, step, weights)
            n_steps += 1
        outputs.append(y)
    stats = {"nfe": 4 * n_steps, "n_steps": n_steps, "n_accepted": n_steps, "n_rejected": 0}
    return ODESolution(ts=times, ys=torch.stack(outputs), stats=stats, status="success")


__all__ = ["EXPONENTIAL_METHODS", "ETDRK4Weights", "etdrk4_step", "etdrk4_weights", "solve_etdrk4"]
