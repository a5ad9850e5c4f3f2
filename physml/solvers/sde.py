r"""Fixed-step SDE solvers with torchsde's SDE protocol, any state shape and either time direction.

The solve is split into three phases so that the stepping loop does nothing but call the vector fields:

1. checks and the step grid (Python floats: ``n = ceil(|Δ| / dt - 1e-9)`` equal steps per output
   interval, the last one landing exactly on the output time, so there is no interpolation);
2. all Brownian increments (and Lévy areas) for the whole grid, drawn or looked up in one vectorised
   call, and all evaluation times as 0-dim tensor views, clamped to their step;
3. the loop, one closure call per step.

Reverse time (decreasing ``ts``) is the same SDE solved with a negative step ``h``: the drift contributes
``f h`` and the increments ``W(t_{n+1}) - W(t_n)`` still have variance ``|h|``. In the reversed time
variable ``s = -t`` this is an ordinary forward Itô/Stratonovich SDE driven by the Brownian motion
``s ↦ W(-s)``, so every scheme keeps its order; only the Itô correction ``ΔW² - |h|`` needs the absolute
step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import torch

from ._validation import (
    check_method,
    check_module_devices,
    check_state,
    check_times,
    check_tolerance,
    check_vector_field_output,
)
from .brownian import BrownianPath

__all__ = ["sdeint", "SDEMethod", "SDE_METHODS", "NOISE_TYPES", "SDE_TYPES"]

NOISE_TYPES = ("diagonal", "additive", "scalar", "general")
SDE_TYPES = ("ito", "stratonovich")


# ---------------------------------------------------------------------- step context


class _StepContext:
    """Everything a method's step needs, prepared once before the loop.

    ``increments[i]`` is already shaped for ``noise_product``: the state's shape for diagonal noise, a
    broadcastable ``(batch, 1, ..., 1)`` column for scalar noise and a matrix-product operand for
    additive/general noise. Scalar noise is handled as diagonal noise with one shared increment per
    sample (``diffusion`` drops the trailing ``m = 1`` axis).
    """

    __slots__ = (
        "drift",
        "diffusion",
        "noise_product",
        "noise_type",
        "sde_type",
        "grid",
        "step_sizes",
        "times",
        "increments",
        "increment_tensor",
        "levy_area_tensor",
        "step_column",
        "real_dtype",
        "device",
        "track_graph",
    )

    def stage_times(self, fraction: float) -> list[torch.Tensor]:
        """0-dim time tensors ``t_i + fraction * h_i``, clamped into step ``i`` so that no stage ever
        leaves the integration interval (rounding could otherwise push it past an output time)."""
        grid = self.grid
        values = []
        for start, stop in pairwise(grid):
            low, high = (start, stop) if start <= stop else (stop, start)
            values.append(min(high, max(low, start + fraction * (stop - start))))
        return list(torch.tensor(values, dtype=self.real_dtype, device=self.device).unbind(0))

    def per_step(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Split a ``(num_steps, *noise_shape)`` tensor into per-step views shaped like ``increments``."""
        return list(tensor.reshape(self.increment_tensor.shape).unbind(0))


@dataclass(frozen=True, eq=False)
class SDEMethod:
    """A fixed-step SDE scheme and what it supports, as data.

    Attributes
    ----------
    name : str
        Name passed as ``method=`` to :func:`sdeint`.
    strong_order : Mapping[str, float]
        Declared strong order of convergence for each supported noise type.
    sde_types : tuple of str
        Supported ``sde.sde_type`` values.
    noise_types : tuple of str
        Supported ``sde.noise_type`` values.
    needs_levy_area : bool
        Whether the scheme uses the space-time Lévy area ``ΔZ = ∫ (W(s) - W(t_n)) ds``.
    evaluations_per_step : str
        Vector-field evaluations per step, for the reader.
    build_step : callable
        ``build_step(context) -> step(i, y)``: returns the closure that advances ``y`` over step ``i``.
    """

    name: str
    strong_order: Mapping[str, float]
    sde_types: tuple[str, ...]
    noise_types: tuple[str, ...]
    needs_levy_area: bool
    evaluations_per_step: str
    build_step: Callable[[_StepContext], Callable[[int, torch.Tensor], torch.Tensor]]

    def supports(self, sde_type: str, noise_type: str) -> bool:
        return sde_type in self.sde_types and noise_type in self.noise_types


# ---------------------------------------------------------------------- schemes


def _build_euler_maruyama(context: _StepContext):
    drift, diffusion, product = context.drift, context.diffusion, context.noise_product
    times, step_sizes, increments = context.times, context.step_sizes, context.increments

    if context.noise_type in ("diagonal", "scalar"):
        # One fused multiply-add for the noise: as cheap as a hand-written loop.
        def step(i, y):
            t = times[i]
            return torch.addcmul(
                torch.add(y, drift(t, y), alpha=step_sizes[i]), diffusion(t, y), increments[i]
            )

    else:

        def step(i, y):
            t = times[i]
            return torch.add(y, drift(t, y), alpha=step_sizes[i]).add_(
                product(diffusion(t, y), increments[i])
            )

    return step


def _build_milstein(context: _StepContext):
    if context.noise_type == "additive":
        # dg/dy = 0, so the Milstein correction vanishes and the scheme is Euler–Maruyama (order 1 here);
        # for additive noise the Itô and Stratonovich forms are the same equation.
        return _build_euler_maruyama(context)

    drift, diffusion = context.drift, context.diffusion
    times, step_sizes, increments = context.times, context.step_sizes, context.increments
    # Correction weight ½(ΔW² - |h|) (Itô) or ½ΔW² (Stratonovich), for all steps at once.
    squared = context.increment_tensor.square()
    if context.sde_type == "ito":
        squared = squared - context.step_column.abs()
    correction_weights = context.per_step(0.5 * squared)
    track_graph = context.track_graph
    diagonal = context.noise_type == "diagonal"

    def diffusion_and_derivative(t, y):
        """g and the Milstein term (∂g/∂y) g by autograd; for diagonal noise ∂g/∂y is diagonal, so the
        single vjp gᵀ(∂g/∂y) equals it."""
        with torch.enable_grad():
            y_tracked = y if y.requires_grad else y.detach().requires_grad_(True)
            g = diffusion(t, y_tracked)
            if not g.requires_grad:  # g does not depend on y (nor on anything trainable)
                return g, torch.zeros_like(g)
            if diagonal:
                (derivative,) = torch.autograd.grad(
                    g, y_tracked, g, create_graph=track_graph, allow_unused=True
                )
            else:
                # Scalar noise: ∂g/∂y is a full matrix and the term is the jvp (∂g/∂y) g, obtained with
                # the double-vjp trick (the vjp is linear in its cotangent, so differentiating it again
                # with respect to the cotangent yields the jvp).
                cotangent = torch.zeros_like(g, requires_grad=True)
                (vjp,) = torch.autograd.grad(g, y_tracked, cotangent, create_graph=True, allow_unused=True)
                if vjp is None:
                    return g, torch.zeros_like(g)
                (derivative,) = torch.autograd.grad(
                    vjp, cotangent, g, create_graph=track_graph, allow_unused=True
                )
        if derivative is None:
            derivative = torch.zeros_like(g)
        if not track_graph:
            # Nothing upstream needs gradients: drop the graph through the temporary leaf y_tracked so
            # the solve neither grows a graph nor returns a tensor that requires grad.
            g = g.detach()
        return g, derivative

    def step(i, y):
        t = times[i]
        g, derivative = diffusion_and_derivative(t, y)
        y_next = torch.add(y, drift(t, y), alpha=step_sizes[i]).addcmul_(g, increments[i])
        return y_next.addcmul_(derivative, correction_weights[i])

    return step


def _build_heun(context: _StepContext):
    drift, diffusion, product = context.drift, context.diffusion, context.noise_product
    start_times, step_sizes, increments = context.times, context.step_sizes, context.increments
    end_times = start_times[1:]

    def step(i, y):
        h, dw = step_sizes[i], increments[i]
        start_drift = drift(start_times[i], y)
        start_noise = product(diffusion(start_times[i], y), dw)
        predictor = torch.add(y, start_drift, alpha=h).add_(start_noise)
        end_drift = drift(end_times[i], predictor)
        end_noise = product(diffusion(end_times[i], predictor), dw)
        return torch.add(y, start_drift + end_drift, alpha=0.5 * h).add_(start_noise + end_noise, alpha=0.5)

    return step


def _build_midpoint(context: _StepContext):
    drift, diffusion, product = context.drift, context.diffusion, context.noise_product
    start_times, step_sizes, increments = context.times, context.step_sizes, context.increments
    middle_times = context.stage_times(0.5)

    def step(i, y):
        h, dw = step_sizes[i], increments[i]
        start = start_times[i]
        middle_state = torch.add(y, drift(start, y), alpha=0.5 * h).add_(
            product(diffusion(start, y), dw), alpha=0.5
        )
        middle = middle_times[i]
        return torch.add(y, drift(middle, middle_state), alpha=h).add_(
            product(diffusion(middle, middle_state), dw)
        )

    return step


def _build_stochastic_runge_kutta(context: _StepContext):
    """Rößler's SRA1 (SIAM J. Numer. Anal. 48, 2010): strong order 1.5 for additive noise.

    With ``b = ΔZ / h`` and ``a = ΔW - b`` (ΔZ the space-time Lévy area of the step)::

        H  = y + ¾ h f(t, y) + 3/2 g(t + h) b
        y' = y + h (f(t, y) + 2 f(t + ¾h, H)) / 3 + g(t + h) a + g(t) b

    Written with the signed step and the oriented ΔZ, the same formula solves in reverse time.
    """
    drift, diffusion, product = context.drift, context.diffusion, context.noise_product
    start_times, step_sizes = context.times, context.step_sizes
    end_times = start_times[1:]
    stage_times = context.stage_times(0.75)
    scaled_areas = context.levy_area_tensor / context.step_column
    area_weights = context.per_step(scaled_areas)
    increment_weights = context.per_step(context.increment_tensor - scaled_areas)
    # Additive noise does not depend on y, so g(t_{i+1}) of one step is g(t_i) of the next.
    cache = {}

    def step(i, y):
        h = step_sizes[i]
        start_diffusion = cache.pop(i, None)
        if start_diffusion is None:
            start_diffusion = diffusion(start_times[i], y)
        end_diffusion = diffusion(end_times[i], y)
        cache[i + 1] = end_diffusion
        start_drift = drift(start_times[i], y)
        stage = torch.add(y, start_drift, alpha=0.75 * h).add_(
            product(end_diffusion, area_weights[i]), alpha=1.5
        )
        stage_drift = drift(stage_times[i], stage)
        y_next = torch.add(y, start_drift, alpha=h / 3).add_(stage_drift, alpha=2 * h / 3)
        return y_next.add_(product(end_diffusion, increment_weights[i])).add_(
            product(start_diffusion, area_weights[i])
        )

    return step


_ALL_NOISE = ("diagonal", "additive", "scalar", "general")

SDE_METHODS: dict[str, SDEMethod] = {
    method.name: method
    for method in (
        SDEMethod(
            name="euler",
            strong_order={"diagonal": 0.5, "scalar": 0.5, "general": 0.5, "additive": 1.0},
            sde_types=("ito",),
            noise_types=_ALL_NOISE,
            needs_levy_area=False,
            evaluations_per_step="1 f, 1 g",
            build_step=_build_euler_maruyama,
        ),
        SDEMethod(
            name="milstein",
            strong_order={"diagonal": 1.0, "scalar": 1.0, "additive": 1.0},
            sde_types=("ito", "stratonovich"),
            noise_types=("diagonal", "scalar", "additive"),
            needs_levy_area=False,
            evaluations_per_step="1 f, 1 g + 1 vjp (diagonal) or 2 vjps (scalar)",
            build_step=_build_milstein,
        ),
        SDEMethod(
            name="heun",
            strong_order={"diagonal": 1.0, "scalar": 1.0, "additive": 1.0, "general": 0.5},
            sde_types=("stratonovich",),
            noise_types=_ALL_NOISE,
            needs_levy_area=False,
            evaluations_per_step="2 f, 2 g",
            build_step=_build_heun,
        ),
        SDEMethod(
            name="midpoint",
            strong_order={"diagonal": 1.0, "scalar": 1.0, "additive": 1.0, "general": 0.5},
            sde_types=("stratonovich",),
            noise_types=_ALL_NOISE,
            needs_levy_area=False,
            evaluations_per_step="2 f, 2 g",
            build_step=_build_midpoint,
        ),
        SDEMethod(
            name="srk",
            strong_order={"additive": 1.5},
            # With additive noise the Itô and Stratonovich equations coincide.
            sde_types=("ito", "stratonovich"),
            noise_types=("additive",),
            needs_levy_area=True,
            evaluations_per_step="2 f, 1 g",
            build_step=_build_stochastic_runge_kutta,
        ),
    )
}


def _default_method(sde_type: str, noise_type: str) -> str:
    if noise_type == "additive":
        return "srk"
    return "euler" if sde_type == "ito" else "midpoint"


# ---------------------------------------------------------------------- public entry point


def sdeint(
    sde, y0: torch.Tensor, ts, *, method: str | None = None, dt: float = 1e-3, bm=None, generator=None
):
    r"""Solve an SDE on a fixed step grid and return the states at the times ``ts``.

    Parameters
    ----------
    sde : object
        torchsde's SDE protocol: methods ``f(t, y)`` (drift) and ``g(t, y)`` (diffusion) and attributes
        ``noise_type`` in {"diagonal", "additive", "scalar", "general"} and ``sde_type`` in
        {"ito", "stratonovich"}. ``t`` is a 0-dim tensor of ``y``'s dtype on ``y``'s device. ``g``
        returns ``y.shape`` for diagonal noise and ``(*y.shape, m)`` otherwise (``m = 1`` for scalar
        noise); ``m`` is read from one evaluation at ``(ts[0], y0)``.
    y0 : torch.Tensor
        Initial state of any shape, floating point. With additive/general/scalar noise and
        ``y0.ndim >= 2`` the first dimension is the batch: each sample gets its own ``m`` Brownian motions.
    ts : 1-D tensor or sequence of float
        Output times, at least two, strictly increasing or strictly decreasing (reverse-time solving,
        e.g. for score-based diffusion sampling: the step is negative, increments keep variance ``|h|``).
    method : str, optional
        One of ``SDE_METHODS`` ("euler", "milstein", "heun", "midpoint", "srk"). Default: "srk" for
        additive noise, "euler" for other Itô SDEs, "midpoint" for Stratonovich SDEs.
    dt : float, default 1e-3
        Largest step: each output interval ``Δ`` is split into ``ceil(|Δ| / dt - 1e-9)`` equal steps.
    bm : BrownianPath or torchsde Brownian motion, optional
        The Brownian motion to use; its grid must contain the solver's step grid (e.g. built with a
        ``dt`` that divides the solver's). Its shape is ``y0.shape`` (diagonal noise), ``(batch, m)`` or
        ``(m,)`` for a 1-D state. A torchsde ``BrownianInterval`` is queried once per step before the
        loop. Default: a :class:`~physml.solvers.brownian.BrownianPath` on the solver's own grid.
    generator : torch.Generator, optional
        Randomness for the default Brownian motion (ignored otherwise; passing both is an error).

    Returns
    -------
    torch.Tensor
        Shape ``(len(ts), *y0.shape)``, dtype and device of ``y0``; ``[0]`` is ``y0``.

    Raises
    ------
    TypeError, ValueError
        On malformed input, naming the argument: non-finite ``y0``, non-monotone ``ts``, unknown or
        unsupported ``method``, ``dt <= 0``, wrongly shaped ``f``/``g`` output, ``bm`` that does not fit,
        parameters on another device.

    Notes
    -----
    Declared strong orders (``SDE_METHODS[name].strong_order``): euler 0.5 (1.0 additive), milstein
    1.0, heun and midpoint 1.0 (0.5 general noise), srk 1.5 (additive noise). The vector fields are
    only evaluated at times inside ``[min(ts), max(ts)]``. Gradients flow through the solve by ordinary
    backpropagation.

    Examples
    --------
    >>> import torch
    >>> from physml.solvers.sde import sdeint
    >>> class OrnsteinUhlenbeck(torch.nn.Module):
    ...     noise_type, sde_type = "diagonal", "ito"
    ...     def f(self, t, y):
    ...         return -y
    ...     def g(self, t, y):
    ...         return torch.full_like(y, 0.5)
    >>> y0 = torch.ones(256, 2)
    >>> generator = torch.Generator().manual_seed(0)
    >>> ys = sdeint(OrnsteinUhlenbeck(), y0, [0.0, 0.5, 1.0], dt=0.01, generator=generator)
    >>> ys.shape
    torch.Size([3, 256, 2])
    >>> samples = sdeint(OrnsteinUhlenbeck(), y0, [1.0, 0.0], dt=0.01)  # reverse time
    >>> samples.shape
    torch.Size([2, 256, 2])
    """
    y0 = check_state(y0, name="y0")
    if y0.is_complex():
        raise TypeError(f"y0 must have a real floating-point dtype (float32 or float64), got {y0.dtype}")
    times = check_times(ts, y0, name="ts")
    noise_type, sde_type = _check_sde(sde)
    check_module_devices(sde, y0, name="sde")
    step_limit = check_tolerance(dt, name="dt")

    if method is None:
        method = _default_method(sde_type, noise_type)
    check_method(method, tuple(SDE_METHODS), name="method")
    scheme = SDE_METHODS[method]
    if not scheme.supports(sde_type, noise_type):
        raise ValueError(
            f"method {method!r} does not support sde_type={sde_type!r} with noise_type={noise_type!r}; "
            f"it supports sde_type in {scheme.sde_types} and noise_type in {scheme.noise_types}"
        )
    if bm is not None and generator is not None:
        raise ValueError("pass either bm or generator, not both: generator only seeds the default bm")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")

    output_times = times.tolist()
    grid, output_steps = _step_grid(output_times, step_limit)

    # One evaluation of f and g at the start checks their shapes and tells the number m of noises.
    t_start = torch.tensor(output_times[0], dtype=y0.dtype, device=y0.device)
    check_vector_field_output(sde.f(t_start, y0), y0, name="sde.f")
    noise_shape = _noise_shape(sde.g(t_start, y0), y0, noise_type)

    increments, levy_areas = _brownian_on_grid(bm, generator, grid, noise_shape, y0, scheme.needs_levy_area)

    context = _make_context(sde, y0, grid, noise_type, sde_type, increments, levy_areas)
    step = scheme.build_step(context)

    states = [y0]
    y = y0
    first_step = 0
    for stop in output_steps:
        for index in range(first_step, stop):
            y = step(index, y)
        first_step = stop
        states.append(y)
    return torch.stack(states)


# ---------------------------------------------------------------------- preparation


def _check_sde(sde) -> tuple[str, str]:
    for name in ("f", "g"):
        if not callable(getattr(sde, name, None)):
            raise TypeError(
                f"sde must define methods f(t, y) (drift) and g(t, y) (diffusion); "
                f"{type(sde).__name__} has no callable {name!r}"
            )
    noise_type = getattr(sde, "noise_type", None)
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"sde.noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    sde_type = getattr(sde, "sde_type", None)
    if sde_type not in SDE_TYPES:
        raise ValueError(f"sde.sde_type must be one of {SDE_TYPES}, got {sde_type!r}")
    return noise_type, sde_type


def _step_grid(output_times: list[float], step_limit: float) -> tuple[list[float], list[int]]:
    """All step times (output times hit exactly) and the index of the step ending at each output."""
    grid = [output_times[0]]
    output_steps = []
    for start, stop in pairwise(output_times):
        count = max(1, math.ceil(abs(stop - start) / step_limit - 1e-9))
        grid.extend(start + (stop - start) * k / count for k in range(1, count))
        grid.append(stop)
        output_steps.append(len(grid) - 1)
    return grid, output_steps


def _noise_shape(diffusion_value, y0: torch.Tensor, noise_type: str) -> tuple[int, ...]:
    if noise_type == "diagonal":
        check_vector_field_output(diffusion_value, y0, name="sde.g")
        return tuple(y0.shape)
    if not isinstance(diffusion_value, torch.Tensor):
        raise TypeError(f"sde.g(t, y0) must return a torch.Tensor, got {type(diffusion_value).__name__}")
    shape = tuple(diffusion_value.shape)
    expected = f"(*y0.shape, {'1' if noise_type == 'scalar' else 'm'}) = ({', '.join(map(str, y0.shape))}, "
    expected += "1)" if noise_type == "scalar" else "m)"
    if (
        diffusion_value.ndim != y0.ndim + 1
        or shape[:-1] != tuple(y0.shape)
        or (noise_type == "scalar" and shape[-1] != 1)
    ):
        raise ValueError(
            f"sde.g(t, y0) returned shape {shape}, expected {expected} for noise_type={noise_type!r}"
        )
    if diffusion_value.device != y0.device:
        raise ValueError(
            f"sde.g(t, y0) returned a tensor on {diffusion_value.device}, but y0 is on {y0.device}"
        )
    noise_count = shape[-1]
    return (y0.shape[0], noise_count) if y0.ndim >= 2 else (noise_count,)


def _brownian_on_grid(bm, generator, grid, noise_shape, y0, needs_levy_area):
    """Increments (and Lévy areas) of every solver step, as ``(num_steps, *noise_shape)`` tensors."""
    low, high = min(grid[0], grid[-1]), max(grid[0], grid[-1])
    if bm is None:
        bm = BrownianPath(
            grid[0], grid[-1], noise_shape, grid=grid, dtype=y0.dtype, device=y0.device,
            generator=generator, levy_area=needs_levy_area,
        )  # fmt: skip
    _check_brownian(bm, noise_shape, y0, low, high)
    if isinstance(bm, BrownianPath):
        if needs_levy_area and not bm.has_levy_area:
            raise ValueError("bm has no Lévy areas but the method needs them; build it with levy_area=True")
        try:
            increments = bm.increments_along(grid)
            levy_areas = bm.levy_areas_along(grid) if needs_levy_area else None
        except ValueError as error:
            raise ValueError(f"bm does not fit the solver's step grid: {error}") from None
    else:
        increments, levy_areas = _query_torchsde_brownian(bm, grid, needs_levy_area)
    increments = increments.to(y0.dtype)
    if levy_areas is not None:
        levy_areas = levy_areas.to(y0.dtype)
    return increments, levy_areas


def _check_brownian(bm, noise_shape, y0, low, high) -> None:
    if not (callable(bm) and hasattr(bm, "shape") and hasattr(bm, "device")):
        raise TypeError(
            f"bm must be a physml BrownianPath or a torchsde Brownian motion, got {type(bm).__name__}"
        )
    if tuple(bm.shape) != tuple(noise_shape):
        raise ValueError(
            f"bm has shape {tuple(bm.shape)}, expected {tuple(noise_shape)} for this SDE's noise "
            "(y0.shape for diagonal noise, (batch, m) or (m,) otherwise)"
        )
    if torch.device(bm.device) != y0.device:
        raise ValueError(f"bm is on device {bm.device} but y0 is on {y0.device}")
    start = getattr(bm, "start", getattr(bm, "_start", None))
    end = getattr(bm, "end", getattr(bm, "_end", None))
    if start is not None and end is not None:
        slack = 1e-9 * max(1.0, abs(low), abs(high))
        if start > low + slack or end < high - slack:
            raise ValueError(f"bm covers [{start}, {end}] but ts spans [{low}, {high}]; it must cover ts")


def _query_torchsde_brownian(bm, grid, needs_levy_area):
    """One query per step, before the loop (torchsde's objects only answer ta <= tb)."""
    if needs_levy_area and getattr(bm, "levy_area_approximation", "none") == "none":
        raise ValueError(
            "bm has no Lévy area but the method needs it; build the torchsde BrownianInterval with "
            "levy_area_approximation='space-time'"
        )
    increments, levy_areas = [], []
    for start, stop in pairwise(grid):
        if start < stop:
            if needs_levy_area:
                increment, area = bm(start, stop, return_U=True)
                levy_areas.append(area)
            else:
                increment = bm(start, stop)
            increments.append(increment)
        else:
            if needs_levy_area:
                increment, area = bm(stop, start, return_U=True)
                # Oriented ∫_{start}^{stop} (W(s) - W(start)) ds = (start - stop) ΔW - U over [stop, start].
                levy_areas.append((start - stop) * increment - area)
            else:
                increment = bm(stop, start)
            increments.append(-increment)
    return torch.stack(increments), (torch.stack(levy_areas) if needs_levy_area else None)


def _make_context(sde, y0, grid, noise_type, sde_type, increments, levy_areas) -> _StepContext:
    context = _StepContext()
    context.noise_type, context.sde_type = noise_type, sde_type
    context.real_dtype, context.device = y0.dtype, y0.device
    # Whether a Milstein step must keep the autograd graph of its derivative term. An nn.Module tells us
    # whether anything is trainable; for any other object we must assume it may close over parameters.
    context.track_graph = torch.is_grad_enabled() and (
        y0.requires_grad
        or not isinstance(sde, torch.nn.Module)
        or any(parameter.requires_grad for parameter in sde.parameters())
    )
    context.grid = grid
    context.step_sizes = [stop - start for start, stop in pairwise(grid)]
    context.times = list(torch.tensor(grid, dtype=y0.dtype, device=y0.device).unbind(0))
    num_steps = len(grid) - 1
    context.drift = sde.f

    if noise_type == "diagonal":
        operand_shape = (num_steps, *y0.shape)
        context.diffusion = sde.g
        context.noise_product = torch.mul
    elif noise_type == "scalar":
        # One increment per sample, broadcast over the state: handled like diagonal noise.
        operand_shape = (num_steps, y0.shape[0]) + (1,) * (y0.ndim - 1) if y0.ndim >= 2 else (num_steps, 1)
        diffusion = sde.g

        def scalar_diffusion(t, y):
            return diffusion(t, y).squeeze(-1)

        context.diffusion = scalar_diffusion
        context.noise_product = torch.mul
    else:
        noise_count = increments.shape[-1]
        if y0.ndim >= 2:
            # g (B, ..., d_last, m) @ dW (B, 1, ..., m, 1) -> (B, ..., d_last, 1): a batched matrix product.
            operand_shape = (num_steps, y0.shape[0]) + (1,) * (y0.ndim - 2) + (noise_count, 1)

            def product(g, dw):
                return torch.matmul(g, dw).squeeze(-1)

        else:
            operand_shape = (num_steps, noise_count)
            product = torch.mv
        context.diffusion = sde.g
        context.noise_product = product

    context.increment_tensor = increments.reshape(operand_shape)
    context.increments = list(context.increment_tensor.unbind(0))
    context.levy_area_tensor = None if levy_areas is None else levy_areas.reshape(operand_shape)
    context.step_column = torch.tensor(context.step_sizes, dtype=y0.dtype, device=y0.device).reshape(
        (num_steps,) + (1,) * (len(operand_shape) - 1)
    )
    return context
