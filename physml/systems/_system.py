"""The System protocol: a physical system as an ``nn.Module`` whose ``forward(t, y)`` is its right-hand side.

One object serves twice: it generates data (float64, tight tolerances, through :mod:`physml.solvers`) and
it is a differentiable prior inside learned models (APHYNITY's F_p, say), with chosen parameters made
learnable.  Physical parameters are named tensors registered as buffers (fixed) or ``nn.Parameter``
(learnable); a parameter may carry a leading batch dimension, one value per sample or environment.

State layout: ODE systems use ``(batch, n_state)``; field systems ``(batch, n_fields, *grid.shape)``
(channels first, grid dimensions in the order of ``grid.dims``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

BOUNDARY_CONDITIONS = ("periodic", "dirichlet", "neumann", "open")


@dataclass(frozen=True)
class Variable:
    """A state variable (or field): name, CF units and a long name for labels."""

    name: str
    units: str
    long_name: str
    standard_name: str | None = None


@dataclass(frozen=True)
class ParameterSpec:
    """A physical parameter: name, units, default value and meaning."""

    name: str
    units: str
    default: float
    description: str


@dataclass(frozen=True)
class Grid:
    """A uniform rectilinear grid with one boundary condition per dimension.

    Parameters
    ----------
    dims : tuple of str
        Dimension names in array order, e.g. ``("x",)`` or ``("y", "x")``.
    shape : tuple of int
        Number of points along each dimension.
    lower, upper : tuple of float
        Domain ends along each dimension.  Periodic dimensions hold ``shape`` points spaced
        ``(upper - lower) / shape`` starting at ``lower`` (the end point is the start point again);
        other dimensions hold ``shape`` points including both ends.
    boundary : tuple of str
        One of :data:`BOUNDARY_CONDITIONS` per dimension.
    units : str
        Units of the coordinates.

    Examples
    --------
    >>> grid = Grid(dims=("x",), shape=(4,), lower=(0.0,), upper=(1.0,), boundary=("periodic",))
    >>> grid.coordinates()["x"].tolist(), grid.spacing
    ([0.0, 0.25, 0.5, 0.75], (0.25,))
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    boundary: tuple[str, ...]
    units: str = "1"
    long_names: tuple[str, ...] = field(default=())

    def __post_init__(self):
        lengths = {len(self.dims), len(self.shape), len(self.lower), len(self.upper), len(self.boundary)}
        if len(lengths) != 1:
            raise ValueError(
                f"Grid dims, shape, lower, upper and boundary must have one entry per dimension, got "
                f"{self.dims}, {self.shape}, {self.lower}, {self.upper}, {self.boundary}"
            )
        for name, condition in zip(self.dims, self.boundary):
            if condition not in BOUNDARY_CONDITIONS:
                raise ValueError(
                    f"boundary for dimension {name!r} must be one of {BOUNDARY_CONDITIONS}, got {condition!r}"
                )

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(
            (upper - lower) / (n if condition == "periodic" else n - 1)
            for n, lower, upper, condition in zip(self.shape, self.lower, self.upper, self.boundary)
        )

    def coordinates(self) -> dict[str, np.ndarray]:
        """Coordinate values along each dimension (float64)."""
        return {
            name: lower + step * np.arange(n, dtype=np.float64)
            for name, n, lower, step in zip(self.dims, self.shape, self.lower, self.spacing)
        }

    def mesh(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, ...]:
        """Coordinate tensors broadcast over the grid (``indexing="ij"`` in ``dims`` order)."""
        axes = [torch.as_tensor(values, dtype=dtype, device=device) for values in self.coordinates().values()]
        return torch.meshgrid(*axes, indexing="ij")


class System(torch.nn.Module):
    """Base class of physical systems; subclasses declare their variables and parameters as data.

    Subclasses set the class attributes ``name``, ``title``, ``state_variables``, ``parameter_specs``
    (and ``time_units``, ``references``), implement :meth:`forward` and
    :meth:`sample_initial_conditions`, and set ``self.grid`` for field systems.

    Parameters
    ----------
    learnable : iterable of str
        Parameters to register as ``nn.Parameter`` (the others are buffers).
    dtype : torch.dtype
        Floating-point dtype of the parameters (float64 by default: data generation).
    device : torch device, optional
    **values
        Parameter values overriding the defaults: a number, or a 1-D tensor/sequence with one value per
        batch member (sample or environment).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    state_variables: ClassVar[tuple[Variable, ...]] = ()
    parameter_specs: ClassVar[tuple[ParameterSpec, ...]] = ()
    time_units: ClassVar[str] = "1"
    references: ClassVar[str] = ""

    def __init__(self, *, learnable: Iterable[str] = (), dtype: torch.dtype = torch.float64, device=None,
                 **values):
        super().__init__()
        known = {spec.name for spec in self.parameter_specs}
        learnable = set(learnable)
        unknown = sorted((set(values) | learnable) - known)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameter(s) {unknown}; its parameters are "
                f"{sorted(known) or 'none'}"
            )
        self.grid: Grid | None = None
        for spec in self.parameter_specs:
            value = values.get(spec.name, spec.default)
            tensor = torch.as_tensor(value, dtype=dtype, device=device).clone()
            if tensor.ndim > 1 or not torch.isfinite(tensor).all():
                raise ValueError(
                    f"parameter {spec.name!r} must be a finite number or a 1-D batch of numbers, got {value!r}"
                )
            if spec.name in learnable:
                self.register_parameter(spec.name, torch.nn.Parameter(tensor))
            else:
                self.register_buffer(spec.name, tensor)

    # -- description ------------------------------------------------------------------------------

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one state (without the batch dimension)."""
        if self.grid is None:
            return (len(self.state_variables),)
        return (len(self.state_variables), *self.grid.shape)

    def parameter_values(self) -> dict[str, torch.Tensor]:
        """Current parameter tensors by name."""
        return {spec.name: getattr(self, spec.name) for spec in self.parameter_specs}

    def batch_size(self) -> int | None:
        """Batch size implied by batched parameters (``None`` when every parameter is a scalar)."""
        sizes = {value.shape[0] for value in self.parameter_values().values() if value.ndim == 1}
        if len(sizes) > 1:
            raise ValueError(f"batched parameters of {self.name} disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else None

    def describe(self) -> dict:
        """Plain-data description (names, units, defaults, grid), for dataset attributes and cards."""
        description = {
            "name": self.name,
            "title": self.title,
            "time_units": self.time_units,
            "state": [vars(variable) for variable in self.state_variables],
            "parameters": {
                spec.name: {"units": spec.units, "description": spec.description,
                            "value": getattr(self, spec.name).detach().cpu().tolist()}
                for spec in self.parameter_specs
            },
            "references": self.references,
        }
        if self.grid is not None:
            description["grid"] = {
                "dims": list(self.grid.dims), "shape": list(self.grid.shape), "lower": list(self.grid.lower),
                "upper": list(self.grid.upper), "boundary": list(self.grid.boundary), "units": self.grid.units,
            }
        return description

    # -- helpers for subclasses -------------------------------------------------------------------

    def broadcast(self, value: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Reshape a scalar or per-batch parameter to broadcast against a state ``y`` of shape (batch, ...).

        A parameter with one value per batch member gets shape ``(batch, 1, ..., 1)``.  In
        per-sample solves the batch shrinks as members finish; pass per-sample parameters through the
        solver's ``args`` in that case.
        """
        if value.ndim == 0:
            return value.to(y.dtype)
        return value.to(y.dtype).view(-1, *([1] * (y.ndim - 1)))

    # -- the protocol -----------------------------------------------------------------------------

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        """Draw ``n`` initial states, shape ``(n, *state_shape)``, from ``generator`` only."""
        raise NotImplementedError

    def simulate(self, y0: torch.Tensor, times, *, method: str = "dopri5", rtol: float = 1e-8,
                 atol: float = 1e-10, options: Mapping | None = None):
        """Integrate from ``y0`` and return a :class:`physml.solvers.ODESolution`.

        The default uses :func:`physml.solve_ode` on :meth:`forward`; systems with a dedicated scheme
        (exponential integrators, Crank–Nicolson) override it and keep the same return type.
        """
        from ..solvers import solve_ode

        return solve_ode(self, y0, times, method=method, rtol=rtol, atol=atol, options=dict(options or {}))


def check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return n


def uniform(generator: torch.Generator, shape, low: float, high: float, dtype=torch.float64,
            device=None) -> torch.Tensor:
    """Uniform draws on [low, high) from an explicit generator (no global random state)."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype, device=device)


__all__ = ["BOUNDARY_CONDITIONS", "Grid", "ParameterSpec", "System", "Variable", "check_count", "uniform"]
