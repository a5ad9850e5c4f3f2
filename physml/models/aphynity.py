"""APHYNITY (Yin et al., ICLR 2021): a physical model completed by the smallest neural augmentation.

dX/dt = F_p(X; θ_p) + F_a(X).  Training minimises ‖F_a‖² subject to the trajectories fitting the data,
relaxed to ``λ · L_traj + ‖F_a‖²`` with λ raised after every batch by ``τ₂ · L_traj`` (Algorithm 1 of
the paper).  The λ rule lives in the training loop (``trajectory_weight`` and
``trajectory_weight_increment`` of :class:`physml.training.TrainingConfig`); this module supplies the
‖F_a‖² term as its :meth:`Aphynity.penalty`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .neural_ode import NeuralODE

__all__ = ["AUGMENTATION_NORMS", "Aphynity", "Scaled", "ScaledSigmoid"]

#: How ‖F_a‖² is measured: plain, or relative to the state (the pendulum), or not at all (ablation).
AUGMENTATION_NORMS = ("l2", "l2_normalized", None)

# Guards the normalised norm against states at the origin (the reference implementation's value).
_NORM_EPSILON = 1e-5


def _available_parameters(physical_model: nn.Module) -> list[str]:
    specs = getattr(physical_model, "parameter_specs", None)
    if specs:
        return [spec.name for spec in specs]
    names = [name for name, _ in physical_model.named_parameters(recurse=False)]
    return names + [name for name, _ in physical_model.named_buffers(recurse=False)]


def _squared_magnitude(values: torch.Tensor, states: torch.Tensor, norm: str | None) -> torch.Tensor:
    """Mean over samples (and grid points) of ``|values|²`` over the state axis (``"l2_normalized"``: per
    ``|state|²``)."""
    squared = values.norm(dim=1) ** 2
    if norm == "l2_normalized":
        squared = squared / (states.norm(dim=1) + _NORM_EPSILON) ** 2
    return squared.mean()


def _floating_dtypes(module: nn.Module | None) -> set[torch.dtype]:
    if module is None:
        return set()
    tensors = [*module.parameters(), *module.buffers()]
    return {tensor.dtype for tensor in tensors if tensor.is_floating_point()}


class ScaledSigmoid(nn.Module):
    """Parametrisation ``value = scale · sigmoid(raw)``: a physical parameter kept in ``(0, scale)``.

    APHYNITY learns the reaction–diffusion coefficients as ``1e-2 · sigmoid(raw)``: the optimiser then
    moves an O(1) raw value instead of a 1e-3 coefficient, whose sign could flip.  Register it with
    ``torch.nn.utils.parametrize``; the current value is kept (``right_inverse``).

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> from simulators.reaction_diffusion import FitzHughNagumo
    >>> prior = FitzHughNagumo(grid_size=8, reaction=False, a=1.19e-3, b=1.19e-3, learnable=["a", "b"])
    >>> for name in ("a", "b"):
    ...     _ = parametrize.register_parametrization(prior, name, ScaledSigmoid(1e-2))
    >>> round(prior.a.item(), 7), round(prior.parametrizations.a.original.item(), 3)
    (0.00119, -2.002)
    """

    def __init__(self, scale: float):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.scale = float(scale)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.sigmoid(raw)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        fraction = value / self.scale
        if torch.any((fraction <= 0) | (fraction >= 1)):
            raise ValueError(f"values must lie in (0, {self.scale:g}) for ScaledSigmoid({self.scale:g}), got "
                             f"{value.tolist()}")
        return torch.logit(fraction)


class Scaled(nn.Module):
    """Parametrisation ``value = scale · raw`` (APHYNITY's wave speed ``c = 100 · raw``).

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> layer = torch.nn.Linear(1, 1)
    >>> _ = parametrize.register_parametrization(layer, "bias", Scaled(100.0))
    >>> torch.allclose(layer.bias, 100.0 * layer.parametrizations.bias.original)
    True
    """

    def __init__(self, scale: float):
        super().__init__()
        if not scale != 0:
            raise ValueError(f"scale must be non-zero, got {scale!r}")
        self.scale = float(scale)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.scale * raw

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value / self.scale


class Aphynity(NeuralODE):
    """Physical model plus neural augmentation, dX/dt = F_p(t, X) + F_a(X).

    Parameters
    ----------
    physical_model : nn.Module or None
        F_p, called as ``physical_model(t, y)``: typically a :class:`physml.systems.System` with the
        parameters to identify made learnable (the frictionless pendulum with learnable
        ``omega0_squared``).  ``None`` leaves a pure neural ODE.
    augmentation : nn.Module or None
        F_a, called as ``augmentation(y)``.  ``None`` gives the physical model alone (the "Param ODE"
        baseline: parameters fitted, no augmentation).
    augmentation_norm : {"l2", "l2_normalized", None}
        ‖F_a‖² as the mean over batch and time of ``|F_a(X_t)|²`` (``"l2"``: reaction–diffusion, wave)
        or of ``|F_a(X_t)|² / (|X_t| + 1e-5)²`` (``"l2_normalized"``: the pendulum); the norm is taken
        over the state (channel) axis, pointwise for fields.  ``None`` disables the minimisation (the
        ablation "APHYNITY without norm minimisation").
    identified_parameters : sequence of str, optional
        Physical parameters to report (and to score by relative error); by default the learnable
        parameters of a :class:`physml.systems.System` prior.  Names the prior does not have raise a
        ``ValueError`` listing the ones it has.
    state_names : sequence of str, optional
        Defaults to the physical model's ``state_variables`` names when it declares them.
    **solver
        ``method``, ``step_size``, ``rtol``, ``atol``, ``adjoint``, ... as for :class:`NeuralODE`
        (APHYNITY: ``method="rk4"``, one step per observation).

    Examples
    --------
    >>> import torch
    >>> from physml.nn.mlp import MLP
    >>> from simulators.pendulum import DampedPendulum
    >>> prior = DampedPendulum(alpha=0.0, omega0_squared=0.2, learnable=["omega0_squared"])
    >>> augmentation = MLP(2, 2, (16,), activation="relu", dtype=torch.float64)
    >>> model = Aphynity(prior, augmentation)
    >>> model.state_names, sorted(model.physical_parameters())
    (('q', 'p'), ['omega0_squared'])
    >>> states = torch.randn(3, 10, 2, dtype=torch.float64)   # (batch, time, state)
    >>> model.penalty(states).ndim
    0
    """

    def __init__(self, physical_model: nn.Module | None, augmentation: nn.Module | None, *,
                 augmentation_norm: str | None = "l2_normalized",
                 identified_parameters: Sequence[str] | None = None, state_names: Sequence[str] | None = None,
                 **solver):
        if physical_model is None and augmentation is None:
            raise ValueError("Aphynity needs a physical_model, an augmentation or both; got neither")
        for name, module in (("physical_model", physical_model), ("augmentation", augmentation)):
            if module is not None and not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module or None, got {type(module).__name__}")
        if augmentation_norm not in AUGMENTATION_NORMS:
            raise ValueError(
                f"augmentation_norm must be one of {AUGMENTATION_NORMS}, got {augmentation_norm!r}")
        dtypes = _floating_dtypes(physical_model) | _floating_dtypes(augmentation)
        if len(dtypes) > 1:
            raise TypeError(
                f"physical_model and augmentation must share one floating dtype, got "
                f"{sorted(str(dtype) for dtype in dtypes)}; build both with the same dtype"
            )
        if state_names is None and physical_model is not None:
            variables = getattr(physical_model, "state_variables", None)
            state_names = tuple(variable.name for variable in variables) if variables else None
        super().__init__(None, state_names=state_names, **solver)
        self.physical_model = physical_model
        self.augmentation = augmentation
        self.augmentation_norm = augmentation_norm
        self.identified_parameters = self._check_identified(identified_parameters)

    def _check_identified(self, names) -> tuple[str, ...]:
        if self.physical_model is None:
            if names:
                raise ValueError(f"identified_parameters {list(names)} given but physical_model is None")
            return ()
        available = _available_parameters(self.physical_model)
        if names is None:
            return tuple(name for name in available
                         if isinstance(getattr(self.physical_model, name, None), torch.Tensor)
                         and getattr(self.physical_model, name).requires_grad)
        names = tuple(names)
        missing = [name for name in names
                   if not isinstance(getattr(self.physical_model, name, None), torch.Tensor)]
        if missing:
            raise ValueError(
                f"identified_parameters {missing} are not parameters of the physical model "
                f"{type(self.physical_model).__name__}; its parameters are {available}"
            )
        return names

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        derivative = None
        if self.physical_model is not None:
            derivative = self.physical_model(t, y)
        if self.augmentation is not None:
            correction = self.augmentation(y)
            derivative = correction if derivative is None else derivative + correction
        return derivative

    def augmentation_magnitude(self, states: torch.Tensor) -> torch.Tensor:
        """‖F_a‖² on observed states ``(batch, time, *state)`` with this model's norm (0 without F_a)."""
        flat = states.reshape(-1, *states.shape[2:])
        if self.augmentation is None:
            return flat.new_zeros(())
        return _squared_magnitude(self.augmentation(flat), flat, self.augmentation_norm)

    def penalty(self, states: torch.Tensor) -> torch.Tensor | None:
        if self.augmentation is None or self.augmentation_norm is None:
            return None
        return self.augmentation_magnitude(states)

    def physical_parameters(self) -> dict[str, torch.Tensor]:
        """Current values of the identified physical parameters (detached copies), by name."""
        return {name: getattr(self.physical_model, name).detach().clone()
                for name in self.identified_parameters}

    def missing_physics_magnitude(self, field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                                  states: torch.Tensor) -> torch.Tensor:
        """‖field − F_p‖² on observed states ``(batch, time, *state)``: the ‖F_a‖² a perfect F_a would need.

        Measured with this model's ``augmentation_norm`` (``"l2"`` when it has none), at t = 0.

        Examples
        --------
        >>> import torch
        >>> from simulators.pendulum import DampedPendulum
        >>> model = Aphynity(DampedPendulum(alpha=0.0), None)
        >>> states = torch.randn(4, 10, 2, dtype=torch.float64)
        >>> float(model.missing_physics_magnitude(DampedPendulum(alpha=0.0), states))
        0.0
        """
        if self.physical_model is None:
            raise ValueError("missing_physics_magnitude needs a physical_model; this Aphynity has none")
        flat = states.reshape(-1, *states.shape[2:])
        time = flat.new_zeros(())
        with torch.no_grad():
            return _squared_magnitude(field(time, flat) - self.physical_model(time, flat), flat,
                                      self.augmentation_norm or "l2")

    def minimum_norm_fit(self, field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         states: torch.Tensor, *, max_iterations: int = 200) -> dict:
        """Set θ_p to the minimiser of ‖field − F_p‖² over ``states``: APHYNITY's optimum for a perfect F_a.

        With an F_a able to represent anything, the constrained problem "min ‖F_a‖ such that the
        trajectories fit" has F_a = F − F_p on the data, so its θ_p minimises ‖F − F_p(θ_p)‖² there (the
        projection of the true vector field F on the prior).  This θ_p is the true one only if the missing
        physics has no component along the prior's parameter directions on these states; comparing it with
        the true values tells whether the parameters are identifiable by APHYNITY's objective at all,
        independently of any training schedule.  The norm is this model's ``augmentation_norm`` (``"l2"``
        when it has none); the fit runs L-BFGS in float64 on a copy and writes the result back through each
        parameter's parametrisation, so constrained parameters stay in their range.

        Parameters
        ----------
        field : callable
            The true vector field ``field(t, y)`` (e.g. the simulator that made the data, at its true
            parameters); evaluated once, at t = 0 (autonomous systems).
        states : torch.Tensor
            Observed states ``(batch, time, *state)``, as for :meth:`augmentation_magnitude`.
        max_iterations : int
            L-BFGS iterations.

        Returns
        -------
        dict
            ``residual`` (the minimal ‖F − F_p‖², what F_a must still carry) and ``initial_residual``.

        Examples
        --------
        >>> import torch
        >>> from simulators.pendulum import DampedPendulum
        >>> prior = DampedPendulum(alpha=0.0, omega0_squared=0.2, learnable=["omega0_squared"])
        >>> model = Aphynity(prior, None)
        >>> states = torch.randn(4, 10, 2, dtype=torch.float64)
        >>> fit = model.minimum_norm_fit(DampedPendulum(alpha=0.0, omega0_squared=1.5), states)
        >>> round(model.physical_parameters()["omega0_squared"].item(), 6), fit["residual"] < 1e-12
        (1.5, True)
        """
        if self.physical_model is None:
            raise ValueError("minimum_norm_fit needs a physical_model; this Aphynity has none")
        if not isinstance(states, torch.Tensor) or states.ndim < 3:
            raise ValueError(f"states must be a tensor (batch, time, *state), got "
                             f"{getattr(states, 'shape', type(states).__name__)}")
        if not (isinstance(max_iterations, int) and max_iterations > 0):
            raise ValueError(f"max_iterations must be a positive int, got {max_iterations!r}")
        norm = self.augmentation_norm or "l2"
        work = copy.deepcopy(self.physical_model).to(torch.float64)
        flat = states.reshape(-1, *states.shape[2:]).to(torch.float64)
        time = flat.new_zeros(())
        # A module field (a simulator in float32, say) is evaluated in float64 too, on a copy.
        evaluator = copy.deepcopy(field).to(torch.float64) if isinstance(field, nn.Module) else field
        with torch.no_grad():
            target = evaluator(time, flat).to(torch.float64)
        parameters = [parameter for parameter in work.parameters() if parameter.requires_grad]
        if not parameters:
            raise ValueError("the physical model has no learnable parameters to fit")

        def residual() -> torch.Tensor:
            return _squared_magnitude(target - work(time, flat), flat, norm)

        with torch.no_grad():
            initial = float(residual())
        optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=max_iterations, tolerance_grad=1e-12,
                                      tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = residual()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            final = float(residual())
        self.physical_model.load_state_dict(work.state_dict())
        return {"residual": final, "initial_residual": initial}
