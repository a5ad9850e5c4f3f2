"""Neural ODE: a learned vector field integrated by :mod:`physml.solvers`, and the base of the hybrid models.

:class:`NeuralODE` owns the solver settings and the state conventions shared by :class:`Aphynity`,
:class:`Leads` and :class:`Coda`:

- an *environment-agnostic* model (``n_environments is None``) maps states ``(batch, *state)``;
- a *multi-environment* model maps ``(n_environments, batch, *state)``, one parameter set per
  environment, all environments in one vectorised call (see :mod:`physml.nn.stacked`);
- ``penalty(states)`` returns the model's regulariser on observed trajectories (``None`` when it has
  none); :func:`physml.training.fit_trajectories` adds it to the weighted trajectory loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..nn.stacked import StackedModules
from ..solvers import METHODS, odeint, odeint_adjoint

__all__ = ["NeuralODE"]


def _check_environment_count(value, name: str = "n_environments") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class NeuralODE(nn.Module):
    """dy/dt = f(y) (or f(t, y)) with a learned ``f``, integrated by :func:`physml.odeint`.

    Parameters
    ----------
    vector_field : nn.Module
        Any module mapping states to their time derivative: an :class:`physml.nn.mlp.MLP` for ODE
        states ``(batch, n_state)``, a :class:`physml.nn.conv.ConvNet2d` or :class:`physml.nn.fno.FNO2d`
        for fields ``(batch, channels, ny, nx)``, or a :class:`physml.nn.stacked.StackedModules` for one
        network per environment (then ``n_environments`` is its member count).
    method : str
        Solver method, one of :data:`physml.solvers.METHODS` (the papers: ``"rk4"``, or ``"euler"`` for
        LEADS/CoDA Navier–Stokes).
    step_size : float, optional
        Step of the fixed-step methods; ``None`` takes exactly one step per observation interval, as
        torchdiffeq's fixed-step methods do without options (what all three papers use).
    rtol, atol : float
        Tolerances of the adaptive methods.
    adjoint : bool
        Differentiate by the continuous adjoint (memory independent of the number of steps) instead of
        back-propagating through the solver.  The adjoint gives the gradient of the continuous problem,
        which differs from the gradient of the discrete solve by the discretisation error (with one RK4
        step per observation, noticeably).
    adjoint_options : dict, optional
        Options of the backward solve (default: ``{"norm": "seminorm"}`` for adaptive methods, the
        forward step size for fixed-step ones).
    solver_options : dict, optional
        Further solver options (``max_num_steps``, ``max_step``, ...).
    time_dependent : bool
        Call ``vector_field(t, y)`` instead of ``vector_field(y)``.
    state_names : sequence of str, optional
        Names of the state variables in order; training checks them against the dataset's variables.
    n_environments : int, optional
        Number of environments of a multi-environment vector field (inferred for ``StackedModules``).

    Examples
    --------
    >>> import torch
    >>> from physml.nn.mlp import MLP
    >>> model = NeuralODE(MLP(2, 2, (16,), generator=torch.Generator().manual_seed(0)), method="rk4")
    >>> model.simulate(torch.zeros(5, 2), torch.linspace(0.0, 1.0, 4)).shape
    torch.Size([4, 5, 2])
    """

    def __init__(self, vector_field: nn.Module | None, *, method: str = "rk4", step_size: float | None = None,
                 rtol: float = 1e-6, atol: float = 1e-8, adjoint: bool = False,
                 adjoint_options: dict | None = None, solver_options: dict | None = None,
                 time_dependent: bool = False, state_names: Sequence[str] | None = None,
                 n_environments: int | None = None):
        super().__init__()
        if vector_field is None and type(self) is NeuralODE:
            raise TypeError("vector_field must be an nn.Module, got None")
        if vector_field is not None and not isinstance(vector_field, nn.Module):
            raise TypeError(f"vector_field must be an nn.Module, got {type(vector_field).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        if step_size is not None:
            if METHODS[method]["adaptive"]:
                raise ValueError(f"step_size is for the fixed-step methods; method {method!r} is adaptive")
            if not (isinstance(step_size, int | float) and step_size > 0):
                raise ValueError(f"step_size must be a positive number or None, got {step_size!r}")
        self.vector_field = vector_field
        self.method, self.step_size, self.rtol, self.atol = method, step_size, float(rtol), float(atol)
        self.adjoint = bool(adjoint)
        if adjoint_options is None:
            # Fixed-step methods retrace the forward grid backwards; adaptive ones control the error on
            # the state and adjoint only (the seminorm of Kidger, Chen & Lyons 2021).
            adaptive = METHODS[method]["adaptive"]
            adjoint_options = {"norm": "seminorm"} if adaptive else (
                {"step_size": step_size} if step_size is not None else {})
        self.adjoint_options = dict(adjoint_options)
        self.solver_options = dict(solver_options or {})
        self.time_dependent = bool(time_dependent)
        self.state_names = tuple(state_names) if state_names is not None else None
        if n_environments is None and isinstance(vector_field, StackedModules):
            n_environments = vector_field.count
        self.n_environments = None if n_environments is None else _check_environment_count(n_environments)

    # -- the vector field -------------------------------------------------------------------------

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.time_dependent:
            return self.vector_field(t, y)
        return self.vector_field(y)

    def prepared_vector_field(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The vector field with its per-solve preparation done once (stacking, hypernetwork outputs).

        Valid while the parameters do not change: one solve, or the segments of one rollout.  Models
        without such work return themselves.
        """
        if isinstance(self.vector_field, StackedModules) and not self.time_dependent:
            plan = self.vector_field.plan()
            return lambda t, y: plan(y)
        return self

    def uses_adjoint(self) -> bool:
        """Whether :meth:`simulate` differentiates by the adjoint now (adjoint on, gradients recorded)."""
        return self.adjoint and torch.is_grad_enabled()

    def penalty(self, states: torch.Tensor) -> torch.Tensor | None:
        """Regulariser on observed trajectories ``(batch, time, *state)`` (multi-environment models:
        ``(n_environments, batch, time, *state)``); ``None`` for a plain neural ODE."""
        return None

    # -- integration ------------------------------------------------------------------------------

    def simulate(self, y0: torch.Tensor, times: torch.Tensor, *,
                 vector_field: Callable | None = None) -> torch.Tensor:
        """Integrate from ``y0`` and return the states at ``times``, shape ``(len(times), *y0.shape)``.

        The adjoint is used only when gradients are being recorded; evaluation under ``torch.no_grad()``
        runs the plain forward solve.  ``vector_field`` may pass a :meth:`prepared_vector_field` shared by
        several solves with the same parameters (the segments of a rollout); the adjoint ignores it (its
        backward pass differentiates the module itself).
        """
        if self.n_environments is not None and (y0.ndim < 2 or y0.shape[0] != self.n_environments):
            raise ValueError(
                f"this model has {self.n_environments} environments and needs states of shape "
                f"({self.n_environments}, batch, ...), got y0 of shape {tuple(y0.shape)}"
            )
        options = dict(self.solver_options)
        if self.step_size is not None:
            options["step_size"] = self.step_size
        arguments = {"method": self.method, "rtol": self.rtol, "atol": self.atol, "options": options or None}
        if self.uses_adjoint():
            parameters = tuple(parameter for parameter in self.parameters() if parameter.requires_grad)
            return odeint_adjoint(self, y0, times, adjoint_params=parameters,
                                  adjoint_options=dict(self.adjoint_options) or None, **arguments)
        field = vector_field if vector_field is not None else self.prepared_vector_field()
        return odeint(field, y0, times, **arguments)

    def extra_repr(self) -> str:
        settings = [f"method={self.method!r}"]
        if self.step_size is not None:
            settings.append(f"step_size={self.step_size:g}")
        if self.adjoint:
            settings.append("adjoint=True")
        if self.n_environments is not None:
            settings.append(f"n_environments={self.n_environments}")
        return ", ".join(settings)
