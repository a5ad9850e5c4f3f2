"""Public ODE entry points: :func:`odeint`, :func:`odeint_adjoint` and :func:`solve_ode`.

``odeint`` keeps torchdiffeq's call, defaults and return shape so existing code switches by changing
the import; ``solve_ode`` returns an :class:`ODESolution` with solver statistics and a status, and
offers per-sample step-size control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._explicit import StepSizeController, integrate_adaptive, integrate_fixed
from ._implicit import integrate_implicit
from ._per_sample import integrate_per_sample
from ._tableaux import TABLEAUX, ButcherTableau
from ._validation import (
    check_method,
    check_module_devices,
    check_positive_int,
    check_state,
    check_times,
    check_tolerance,
)
from ._vector_field import VectorField

#: Every ODE method with its classical order and kind, as data (the tests check the orders).
METHODS: dict[str, dict] = {
    name: {
        "order": tableau.order,
        "adaptive": tableau.adaptive,
        "implicit": tableau.implicit,
        "error_order": tableau.error_order,
        "stages": tableau.n_stages,
    }
    for name, tableau in TABLEAUX.items()
}

_ADAPTIVE_OPTIONS = {
    "first_step", "safety", "ifactor", "dfactor", "max_num_steps", "max_step", "step_t", "jump_t", "norm",
    "dtype",
}
_IMPLICIT_OPTIONS = _ADAPTIVE_OPTIONS | {"newton_tolerance", "newton_max_iterations"}
_FIXED_OPTIONS = {"step_size", "dtype"}
DEFAULT_MAX_STEPS = 100_000


@dataclass
class ODESolution:
    """Result of :func:`solve_ode`.

    Attributes
    ----------
    ts : torch.Tensor
        The requested output times (float64).
    ys : torch.Tensor
        States at ``ts``, shape ``(len(ts), *y0.shape)``; NaN at times the solve did not reach.
    stats : dict
        ``nfe``, ``n_steps``, ``n_accepted``, ``n_rejected`` (ints, or per-sample tensors of shape
        ``(batch,)`` when ``per_sample=True``), plus method-specific counts.  For adjoint solves,
        ``nfe_adjoint`` is added once the backward pass has run.
    status : str
        ``"success"``, ``"max_steps_reached"`` or ``"step_size_underflow"``.
    """

    ts: torch.Tensor
    ys: torch.Tensor
    stats: dict = field(default_factory=dict)
    status: str = "success"

    @property
    def success(self) -> bool:
        return self.status == "success"


def solve_ode(
    func,
    y0: torch.Tensor,
    t,
    *,
    method: str = "tsit5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    per_sample: bool = False,
    max_steps: int = DEFAULT_MAX_STEPS,
    options: dict | None = None,
    args=None,
    adjoint: bool = False,
    adjoint_params=None,
    adjoint_method: str | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_options: dict | None = None,
) -> ODESolution:
    """Solve ``dy/dt = func(t, y)`` and report statistics and status.

    Parameters
    ----------
    func : callable
        Vector field ``func(t, y)`` (``func(t, y, args)`` when ``args`` is given) returning a tensor of
        ``y``'s shape.  ``t`` is a 0-dim tensor of ``y``'s dtype, or shape ``(batch,)`` when
        ``per_sample=True``.
    y0 : torch.Tensor
        Initial state of any shape, float32 or float64, on any device.
    t : torch.Tensor or sequence of float
        Output times, at least two, strictly increasing or strictly decreasing.  Kept in float64.
    method : str
        One of :data:`METHODS`: fixed-step ``euler``, ``midpoint``, ``heun``, ``rk4``
        (``options=dict(step_size=...)``); adaptive ``bosh3``, ``dopri5``, ``tsit5``, ``dopri8``;
        stiff ``kvaerno3`` (L-stable ESDIRK with Newton iterations and exact gradients).
    rtol, atol : float
        Relative and absolute tolerances of the adaptive methods.
    per_sample : bool
        Give each member of the batch (first dimension of ``y0``) its own step size; finished members
        leave the batch.  Per-sample parameters go in ``args`` (leading batch dimension).
    max_steps : int
        Step attempts allowed; reaching it returns the partial solution with ``status``
        ``"max_steps_reached"`` (NaN at the unreached times) instead of raising.
    options : dict, optional
        torchdiffeq-style options: ``step_size``; ``first_step``, ``safety``, ``ifactor``, ``dfactor``,
        ``max_step``, ``step_t``, ``jump_t``, ``norm``; ``newton_tolerance``, ``newton_max_iterations``.
    args : optional
        Passed to ``func`` as third argument.
    adjoint : bool
        Compute gradients by the continuous adjoint method (memory independent of the step count).
    adjoint_params, adjoint_method, adjoint_rtol, adjoint_atol, adjoint_options
        See :func:`odeint_adjoint`.

    Returns
    -------
    ODESolution

    Examples
    --------
    >>> import torch, physml
    >>> solution = physml.solve_ode(lambda t, y: -y, torch.ones(3), torch.linspace(0, 1, 5))
    >>> solution.ys.shape, solution.status
    (torch.Size([5, 3]), 'success')
    >>> round(float(solution.ys[-1, 0]), 6)
    0.367879
    """
    if adjoint:
        from ._adjoint import solve_with_adjoint

        if per_sample:
            raise ValueError(
                "per_sample=True cannot be combined with adjoint=True; per-sample solves are "
                "differentiated by backpropagation through the solver (adjoint=False)"
            )

        return solve_with_adjoint(
            func, y0, t, method=method, rtol=rtol, atol=atol, options=options, max_steps=max_steps,
            args=args, adjoint_params=adjoint_params, adjoint_method=adjoint_method,
            adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, adjoint_options=adjoint_options,
        )
    y0 = check_state(y0)
    times = check_times(t, y0)
    method = check_method(method, METHODS)
    rtol = check_tolerance(rtol, name="rtol")
    atol = check_tolerance(atol, name="atol")
    max_steps = check_positive_int(max_steps, name="max_steps")
    check_module_devices(func, y0)
    tableau = TABLEAUX[method]
    options = _check_options(options, tableau)
    if "max_num_steps" in options:
        max_steps = check_positive_int(options["max_num_steps"], name="options['max_num_steps']")
    if per_sample:
        _check_per_sample(y0, tableau)

    time_list = times.tolist()
    direction = 1.0 if time_list[-1] > time_list[0] else -1.0
    internal = [direction * value for value in time_list]
    vector_field = VectorField(func, y0, direction, internal[0], internal[-1], None if per_sample else args)
    controller = _controller(tableau, rtol, atol, options)
    first_step = options.get("first_step")

    stats: dict = {}
    if not tableau.adaptive:
        step_size = options.get("step_size")
        if step_size is not None:
            step_size = check_tolerance(step_size, name="options['step_size']")
        result = integrate_fixed(vector_field, y0, internal, tableau, step_size)
    elif per_sample:
        result, stats = integrate_per_sample(
            vector_field, y0, internal, tableau, controller, first_step=first_step, max_steps=max_steps, args=args
        )
    elif tableau.implicit:
        result, stats = integrate_implicit(
            vector_field, y0, internal, tableau, controller, first_step=first_step, max_steps=max_steps,
            newton_tolerance=float(options.get("newton_tolerance", 1e-3)),
            newton_max_iterations=int(options.get("newton_max_iterations", 10)),
        )
    else:
        result = integrate_adaptive(
            vector_field, y0, internal, tableau, controller, first_step=first_step, max_steps=max_steps,
            step_points=[direction * p for p in _time_list(options.get("step_t"), "step_t")],
            jump_points=[direction * p for p in _time_list(options.get("jump_t"), "jump_t")],
        )
    if not per_sample:
        stats = {
            "nfe": vector_field.evaluations,
            "n_steps": result.n_steps,
            "n_accepted": result.n_accepted,
            "n_rejected": result.n_rejected,
            **stats,
        }
    ys = _stack_outputs(result.outputs, y0)
    return ODESolution(ts=times, ys=ys, stats=stats, status=result.status)


def odeint(func, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str | None = None,
           options: dict | None = None, adjoint: bool = False, **adjoint_arguments):
    """Integrate ``dy/dt = func(t, y)`` with torchdiffeq's call, defaults and return shape.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` returning a tensor shaped like ``y``; ``t`` is a 0-dim tensor.
    y0 : torch.Tensor
        Initial state of any shape.
    t : torch.Tensor
        Output times (strictly monotone, increasing or decreasing).
    rtol, atol : float
        Tolerances (torchdiffeq's defaults 1e-7 and 1e-9).
    method : str, optional
        Defaults to ``"dopri5"`` as in torchdiffeq; see :data:`METHODS`.
    options : dict, optional
        As for :func:`solve_ode`; ``max_num_steps`` bounds the step attempts.
    adjoint : bool
        Same as calling :func:`odeint_adjoint` (which takes ``adjoint_params``, ``adjoint_rtol``,
        ``adjoint_atol``, ``adjoint_method`` and ``adjoint_options`` as further keywords).

    Returns
    -------
    torch.Tensor
        Shape ``(len(t), *y0.shape)``.

    Raises
    ------
    RuntimeError
        If the solve stops early (maximum steps or step-size underflow); :func:`solve_ode` returns
        the partial solution instead.

    Examples
    --------
    >>> import torch, physml
    >>> ys = physml.odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]))
    >>> ys.shape
    torch.Size([2, 2])
    """
    if adjoint:
        return odeint_adjoint(func, y0, t, rtol=rtol, atol=atol, method=method, options=options,
                              **adjoint_arguments)
    if adjoint_arguments:
        raise TypeError(
            f"odeint got unexpected keyword arguments {sorted(adjoint_arguments)}; "
            "adjoint_* arguments need adjoint=True"
        )
    solution = solve_ode(func, y0, t, method=method or "dopri5", rtol=rtol, atol=atol, options=options)
    _raise_unless_success(solution, "odeint")
    return solution.ys


def odeint_adjoint(func, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str | None = None,
                   options: dict | None = None, adjoint_rtol: float | None = None,
                   adjoint_atol: float | None = None, adjoint_method: str | None = None,
                   adjoint_options: dict | None = None, adjoint_params=None):
    """:func:`odeint` whose gradients come from the continuous adjoint (memory independent of steps).

    The backward pass integrates the adjoint system from ``t[-1]`` back to ``t[0]``, restarting the
    state from the stored forward outputs at every output time.  ``adjoint_params`` defaults to
    ``func.parameters()`` (``func`` must then be an ``nn.Module``);
    ``adjoint_options=dict(norm="seminorm")`` leaves the parameter-gradient channels out of the error
    control (Kidger, Chen & Lyons 2021), which typically saves backward steps.

    Examples
    --------
    >>> import torch, physml
    >>> rate = torch.nn.Linear(1, 1, bias=False)
    >>> ys = physml.odeint_adjoint(rate, torch.ones(4, 1), torch.tensor([0.0, 1.0]))
    >>> ys[-1].sum().backward()
    >>> rate.weight.grad.shape
    torch.Size([1, 1])
    """
    solution = solve_ode(
        func, y0, t, method=method or "dopri5", rtol=rtol, atol=atol, options=options, adjoint=True,
        adjoint_params=adjoint_params, adjoint_method=adjoint_method, adjoint_rtol=adjoint_rtol,
        adjoint_atol=adjoint_atol, adjoint_options=adjoint_options,
    )
    _raise_unless_success(solution, "odeint_adjoint")
    return solution.ys


def _raise_unless_success(solution: ODESolution, name: str) -> None:
    if not solution.success:
        raise RuntimeError(
            f"{name} stopped early with status {solution.status!r} after {solution.stats.get('n_steps')} steps; "
            "raise options['max_num_steps'], loosen rtol/atol or use a stiff method ('kvaerno3'); "
            "physml.solve_ode returns the partial solution instead of raising"
        )


def _check_options(options, tableau: ButcherTableau) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    allowed = _IMPLICIT_OPTIONS if tableau.implicit else _ADAPTIVE_OPTIONS if tableau.adaptive else _FIXED_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"options {unknown} are not understood by method {tableau.name!r}; "
            f"it accepts: {', '.join(sorted(allowed))}"
        )
    return options


def _check_per_sample(y0: torch.Tensor, tableau: ButcherTableau) -> None:
    if y0.ndim < 1:
        raise ValueError("per_sample=True needs y0 with a leading batch dimension, got a 0-dim tensor")
    if not tableau.adaptive or tableau.implicit:
        raise ValueError(
            f"per_sample=True needs an adaptive explicit method (bosh3, dopri5, tsit5, dopri8), "
            f"got method {tableau.name!r}"
        )


def _controller(tableau: ButcherTableau, rtol: float, atol: float, options: dict) -> StepSizeController:
    norm = options.get("norm")
    if norm is not None and not callable(norm):
        raise TypeError(f"options['norm'] must be callable (tensor -> scalar tensor), got {norm!r}")
    max_step = options.get("max_step", math.inf)
    return StepSizeController(
        rtol=rtol,
        atol=atol,
        safety=float(options.get("safety", 0.9)),
        ifactor=float(options.get("ifactor", 10.0)),
        dfactor=float(options.get("dfactor", 0.2)),
        max_step=check_tolerance(max_step, name="options['max_step']") if max_step != math.inf else math.inf,
        norm=norm,
    )


def _time_list(value, name: str) -> list[float]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).reshape(-1).tolist()
    try:
        return [float(v) for v in value]
    except TypeError:
        raise TypeError(f"options[{name!r}] must be a sequence or tensor of times, got {value!r}") from None


def _stack_outputs(outputs, y0: torch.Tensor) -> torch.Tensor:
    if all(output is not None for output in outputs):
        return torch.stack(outputs)
    missing = torch.full_like(y0, float("nan"))
    return torch.stack([missing if output is None else output for output in outputs])
