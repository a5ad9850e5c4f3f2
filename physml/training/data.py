"""Trajectories as tensors, one block per environment: :class:`TrajectorySet` and :func:`load_trajectories`.

A :class:`TrajectorySet` holds ``states`` of shape ``(n_environments, n_samples, n_times, *state)`` with
``state = (n_variables,)`` for ODE data and ``(n_variables, *grid)`` for fields (the layout of
:class:`physml.systems.System`), the common observation ``times``, the variable names, the environment
ids and the per-sample physical parameters.  Single-environment data have ``n_environments == 1``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

__all__ = ["TrajectorySet", "load_trajectories"]

# Coordinates on ``sample`` that describe bookkeeping, not physics.
_BOOKKEEPING = {"sample", "split", "environment", "seed_spawn_key", "seed", "qc_flag"}


@dataclass(frozen=True)
class TrajectorySet:
    """Observed trajectories grouped by environment.

    Attributes
    ----------
    states : torch.Tensor
        ``(n_environments, n_samples, n_times, *state)``.
    times : torch.Tensor
        ``(n_times,)`` observation times (float64), shared by every trajectory.
    variables : tuple of str
        Names of the state variables (channels), in order.
    environments : tuple of int
        Environment id of each block of ``states``.
    parameters : dict of str to torch.Tensor
        Per-sample physical parameters, each ``(n_environments, n_samples)``.
    name : str
        Where the data came from (used in error messages).

    Examples
    --------
    >>> import torch
    >>> data = TrajectorySet(torch.zeros(3, 4, 10, 2), torch.linspace(0, 4.5, 10), ("x", "y"), (0, 1, 2))
    >>> data.n_environments, data.n_samples, data.state_shape
    (3, 4, (2,))
    >>> data.select_environments([2, 0]).environments
    (2, 0)
    """

    states: torch.Tensor
    times: torch.Tensor
    variables: tuple[str, ...]
    environments: tuple[int, ...]
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.states, torch.Tensor) or self.states.ndim < 4:
            raise ValueError(
                f"states must be a tensor (n_environments, n_samples, n_times, *state) with a state of at "
                f"least one dimension, got {getattr(self.states, 'shape', type(self.states).__name__)}"
            )
        times = torch.as_tensor(self.times, dtype=torch.float64)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "environments", tuple(int(e) for e in self.environments))
        if times.ndim != 1 or len(times) != self.states.shape[2]:
            raise ValueError(f"times must have one entry per time step ({self.states.shape[2]}), got shape "
                             f"{tuple(times.shape)}")
        if len(self.environments) != self.states.shape[0]:
            raise ValueError(f"environments must name the {self.states.shape[0]} environment blocks of "
                             f"states, got {self.environments}")
        if len(self.variables) != self.states.shape[3]:
            raise ValueError(f"variables must name the {self.states.shape[3]} state channels, got "
                             f"{self.variables}")
        for key, value in self.parameters.items():
            if tuple(value.shape) != tuple(self.states.shape[:2]):
                raise ValueError(f"parameter {key!r} must have shape {tuple(self.states.shape[:2])} "
                                 f"(environment, sample), got {tuple(value.shape)}")

    # -- sizes ------------------------------------------------------------------------------------

    @property
    def n_environments(self) -> int:
        return self.states.shape[0]

    @property
    def n_samples(self) -> int:
        """Trajectories per environment."""
        return self.states.shape[1]

    @property
    def n_times(self) -> int:
        return self.states.shape[2]

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.states.shape[3:])

    def __repr__(self) -> str:
        return (f"TrajectorySet({self.name or 'unnamed'}: {self.n_environments} environment(s) x "
                f"{self.n_samples} trajectories x {self.n_times} times, state {self.state_shape}, "
                f"variables {list(self.variables)})")

    # -- transformations --------------------------------------------------------------------------

    def to(self, dtype: torch.dtype | None = None, device=None) -> TrajectorySet:
        """A copy with ``states`` (and parameters) converted; ``times`` stay float64."""
        return replace(self, states=self.states.to(dtype=dtype, device=device),
                       parameters={k: v.to(device=device) for k, v in self.parameters.items()})

    def select_environments(self, environments: Sequence[int]) -> TrajectorySet:
        """The blocks of the given environment ids, in that order; missing ids raise a ``ValueError``."""
        environments = [int(e) for e in environments]
        missing = [e for e in environments if e not in self.environments]
        if missing:
            raise ValueError(
                f"environments {missing} are missing from {self.name or 'this trajectory set'}; it holds "
                f"environments {list(self.environments)}"
            )
        index = torch.tensor([self.environments.index(e) for e in environments], device=self.states.device)
        return replace(self, states=self.states[index], environments=tuple(environments),
                       parameters={k: v[index.to(v.device)] for k, v in self.parameters.items()})

    def select_samples(self, samples) -> TrajectorySet:
        """The same trajectories (a slice or index sequence) of every environment."""
        index = samples if isinstance(samples, slice) else torch.as_tensor(samples, dtype=torch.long)
        states = self.states[:, index]
        if states.shape[1] == 0:
            raise ValueError(f"samples {samples!r} selects no trajectory of the {self.n_samples} available")
        return replace(self, states=states, parameters={k: v[:, index] for k, v in self.parameters.items()})

    def windows(self, length: int, stride: int = 1) -> TrajectorySet:
        """Cut every trajectory into windows of ``length`` frames starting every ``stride`` frames.

        Window ``k`` of trajectory ``n`` becomes sample ``n * n_windows + k``; its times restart at
        ``times[0]``, which is exact for autonomous dynamics (the observations must be evenly spaced).
        APHYNITY's wave data set is one trajectory cut this way into 25-step windows.
        """
        if isinstance(length, bool) or not isinstance(length, int) or not 2 <= length <= self.n_times:
            raise ValueError(f"length must be an integer in [2, {self.n_times}], got {length!r}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        steps = torch.diff(self.times)
        if not torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-9, atol=0.0):
            raise ValueError("windows need evenly spaced observation times")
        starts = range(0, self.n_times - length + 1, stride)
        states = torch.stack([self.states[:, :, start: start + length] for start in starts], dim=2)
        states = states.reshape(self.n_environments, -1, length, *self.state_shape)
        count = len(starts)
        parameters = {k: v.repeat_interleave(count, dim=1) for k, v in self.parameters.items()}
        return replace(self, states=states, times=self.times[:length], parameters=parameters)


def load_trajectories(source, split: str | None = None, *, variables: Sequence[str] | None = None,
                      environments: Sequence[int] | None = None, include_flagged: bool = False,
                      dtype: torch.dtype = torch.float64, device=None) -> TrajectorySet:
    """Read a physml dataset split into a :class:`TrajectorySet`.

    Parameters
    ----------
    source : path-like or xarray.Dataset
        A split file (``.nc``/``.zarr``), a directory written by :func:`physml.data.generate` (with
        ``split``), or an open dataset.
    split : str, optional
        Split to read from a directory (``"train"``, ``"validation"``, ``"test"``,
        ``"adaptation_train"``, ...).
    variables : sequence of str, optional
        Data variables to stack as state channels, in order (default: all, in file order).  Unknown
        names raise a ``ValueError`` listing the available ones.
    environments : sequence of int, optional
        Environment ids to keep, in that order (default: all present, ascending).  Ids absent from the
        split raise a ``ValueError`` naming them.
    include_flagged : bool
        Keep samples whose ``qc_flag`` is not 0 (left out by default).
    dtype, device : optional
        Of the returned states.

    Examples
    --------
    >>> import tempfile
    >>> from physml.data import generate
    >>> report = generate("leads_lv", "mini", out=tempfile.mkdtemp())
    >>> data = load_trajectories(report.files["train"])
    >>> data.states.shape, data.variables      # 10 environments x 1 trajectory x 20 times x (x, y)
    (torch.Size([10, 1, 20, 2]), ('x', 'y'))
    """
    import xarray as xr

    from ..data import open_dataset

    if isinstance(source, xr.Dataset):
        dataset, name, close = source, source.attrs.get("id", "dataset"), False
    else:
        dataset = open_dataset(source, split=split)
        name = f"{os.fspath(source)}" + (f" (split {split!r})" if split else "")
        close = True
    try:
        return _from_dataset(dataset, name, variables, environments, include_flagged, dtype, device)
    finally:
        if close:
            dataset.close()


def _from_dataset(dataset, name, variables, environments, include_flagged, dtype, device) -> TrajectorySet:
    available = list(dataset.data_vars)
    chosen = list(available if variables is None else variables)
    unknown = [variable for variable in chosen if variable not in available]
    if unknown:
        raise ValueError(f"variables {unknown} are not in {name}; it holds {available}")
    if not chosen:
        raise ValueError(f"no variables selected from {name}")
    dims = {variable: dataset[variable].dims for variable in chosen}
    if len(set(dims.values())) != 1 or tuple(dims[chosen[0]][:2]) != ("sample", "time"):
        raise ValueError(f"variables of {name} must all have dims (sample, time, ...) alike, got {dims}")
    n_samples = dataset.sizes["sample"]
    keep = np.ones(n_samples, dtype=bool)
    if not include_flagged and "qc_flag" in dataset.coords:
        keep = np.asarray(dataset["qc_flag"].values) == 0
    labels = (np.asarray(dataset["environment"].values).astype(np.int64) if "environment" in dataset.coords
              else np.zeros(n_samples, dtype=np.int64))
    present = sorted({int(label) for label in labels[keep]})
    wanted = present if environments is None else [int(e) for e in environments]
    missing = [e for e in wanted if e not in present]
    if missing:
        raise ValueError(f"environments {missing} are missing from {name}; it holds environments {present}")
    rows = [np.flatnonzero(keep & (labels == environment)) for environment in wanted]
    counts = {environment: len(row) for environment, row in zip(wanted, rows, strict=True)}
    if len(set(counts.values())) != 1:
        raise ValueError(f"environments of {name} hold different numbers of usable trajectories {counts}; a "
                         f"TrajectorySet needs the same number in each")
    order = np.concatenate(rows)
    values = np.stack([np.asarray(dataset[variable].values)[order] for variable in chosen], axis=2)
    states = torch.from_numpy(np.ascontiguousarray(values)).to(dtype=dtype, device=device)
    states = states.reshape(len(wanted), -1, *states.shape[1:])
    parameters = {}
    for coordinate in dataset.coords:
        variable = dataset[coordinate]
        if (coordinate in _BOOKKEEPING or variable.dims != ("sample",)
                or not np.issubdtype(variable.dtype, np.number)):
            continue
        values = np.asarray(variable.values, dtype=np.float64)[order]
        parameters[coordinate] = torch.from_numpy(values).reshape(len(wanted), -1).to(device=device)
    times = torch.tensor(np.asarray(dataset["time"].values, dtype=np.float64))
    return TrajectorySet(states, times, tuple(chosen), tuple(wanted), parameters, name=name)
