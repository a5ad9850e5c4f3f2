"""From physml datasets (xarray) to the arrays and grids pysindy 2.1 expects.

physml datasets have dims ``(sample, time, *spatial)`` with one data variable per field; pysindy wants one
array per trajectory with the spatial axes first, then time, then the fields on the last axis
(``(n_x, n_t, n_fields)`` or ``(n_y, n_x, n_t, n_fields)``), a 1-D time grid (required by 2.x), a spatial
grid for :class:`pysindy.PDELibrary` and a space-time grid for :class:`pysindy.WeakPDELibrary`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Relative tolerance on grid spacings for a grid to count as uniform (float32 coordinates pass).
UNIFORM_TOLERANCE = 1e-5


def _spacing_deviation(coordinates: np.ndarray) -> float:
    steps = np.diff(coordinates)
    mean = float(np.mean(steps))
    return float(np.max(np.abs(steps - mean)) / abs(mean)) if len(steps) else 0.0


@dataclass(frozen=True)
class DiscoveryData:
    """Fields of a dataset laid out for pysindy, with their grids and boundary conditions.

    Attributes
    ----------
    fields : numpy.ndarray
        Shape ``(n_samples, *spatial_shape, n_times, n_variables)``: each ``fields[k]`` is one trajectory
        in pysindy's layout.
    times : numpy.ndarray
        Shape ``(n_times,)``, strictly increasing.
    coordinates : tuple of numpy.ndarray
        One 1-D coordinate array per spatial dimension (empty for ODE data).
    spatial_dims : tuple of str
        Spatial dimension names in array order, e.g. ``("x",)`` or ``("y", "x")``.
    variables : tuple of str
        Field names, in the order of the last axis.
    periodic : tuple of bool
        Whether each spatial dimension is periodic (then its coordinates exclude the repeated end point).
    """

    fields: np.ndarray
    times: np.ndarray
    coordinates: tuple[np.ndarray, ...]
    spatial_dims: tuple[str, ...]
    variables: tuple[str, ...]
    periodic: tuple[bool, ...]

    # ------------------------------------------------------------------ shapes
    @property
    def n_samples(self) -> int:
        return self.fields.shape[0]

    @property
    def n_times(self) -> int:
        return len(self.times)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coordinates)

    @property
    def is_pde(self) -> bool:
        return len(self.spatial_dims) > 0

    def trajectories(self) -> list[np.ndarray]:
        """One array per sample, ``(*spatial_shape, n_times, n_variables)`` (pysindy's layout)."""
        return [self.fields[index] for index in range(self.n_samples)]

    # ------------------------------------------------------------------ grids
    def time_is_uniform(self) -> bool:
        return _spacing_deviation(self.times) <= UNIFORM_TOLERANCE

    def space_is_uniform(self) -> bool:
        return all(_spacing_deviation(c) <= UNIFORM_TOLERANCE for c in self.coordinates)

    @property
    def time_step(self) -> float:
        """Mean spacing of the time grid."""
        return float(np.mean(np.diff(self.times)))

    @property
    def spacings(self) -> tuple[float, ...]:
        """Mean spacing along each spatial dimension."""
        return tuple(float(np.mean(np.diff(c))) for c in self.coordinates)

    @property
    def lengths(self) -> tuple[float, ...]:
        """Period of each periodic dimension (points × spacing); extent ``last - first`` otherwise."""
        return tuple(
            len(c) * spacing if periodic else float(c[-1] - c[0])
            for c, spacing, periodic in zip(self.coordinates, self.spacings, self.periodic, strict=True)
        )

    def spatial_grid(self) -> np.ndarray:
        """The ``spatial_grid`` of :class:`pysindy.PDELibrary`: ``(n_x,)`` in 1-D, else the stacked meshgrid
        ``(*spatial_shape, n_spatial_dims)``."""
        if not self.is_pde:
            raise ValueError("spatial_grid() needs a dataset with spatial dimensions; this one has none")
        if len(self.coordinates) == 1:
            return np.asarray(self.coordinates[0], dtype=float)
        return np.stack(np.meshgrid(*self.coordinates, indexing="ij"), axis=-1)

    def spatiotemporal_grid(self) -> np.ndarray:
        """The ``spatiotemporal_grid`` of :class:`pysindy.WeakPDELibrary`:
        ``(*spatial_shape, n_times, n_spatial_dims + 1)`` with time on the last coordinate."""
        mesh = np.meshgrid(*self.coordinates, self.times, indexing="ij")
        return np.stack(mesh, axis=-1)

    # ------------------------------------------------------------------ selections
    def select_times(self, indices) -> DiscoveryData:
        """The same data at a subset of its time indices (a slice or an index array)."""
        indices = np.arange(self.n_times)[indices]
        return DiscoveryData(
            self.fields[..., indices, :],
            self.times[indices],
            self.coordinates,
            self.spatial_dims,
            self.variables,
            self.periodic,
        )

    def crop(self, slices: Sequence[slice]) -> DiscoveryData:
        """A spatial box (one slice per spatial dim); cropped dims are no longer periodic."""
        if len(slices) != len(self.spatial_dims):
            raise ValueError(
                f"slices must have one entry per spatial dim {self.spatial_dims}, got {len(slices)}"
            )
        index = (slice(None), *slices, slice(None), slice(None))
        coordinates = tuple(c[s] for c, s in zip(self.coordinates, slices, strict=True))
        periodic = tuple(
            p and len(c) == len(full)
            for p, c, full in zip(self.periodic, coordinates, self.coordinates, strict=True)
        )
        return DiscoveryData(
            self.fields[index], self.times, coordinates, self.spatial_dims, self.variables, periodic
        )

    def with_fields(self, fields: np.ndarray) -> DiscoveryData:
        """The same grids with other field values (e.g. noisy ones) of the same shape."""
        if fields.shape != self.fields.shape:
            raise ValueError(f"fields must have shape {self.fields.shape}, got {fields.shape}")
        return DiscoveryData(
            fields, self.times, self.coordinates, self.spatial_dims, self.variables, self.periodic
        )


def _boundary_of(dataset, dim: str) -> str | None:
    """Boundary condition of a spatial dim from the physml attributes (``physml_bc_<dim>``), if recorded."""
    value = dataset.attrs.get(f"physml_bc_{dim}")
    if value is None:
        value = dataset[dim].attrs.get("boundary") if dim in dataset.coords else None
    return None if value is None else str(value)


def from_dataset(
    dataset,
    variables: Sequence[str] | None = None,
    *,
    samples=None,
    times=None,
    periodic: bool | Sequence[bool] | None = None,
    dtype=np.float64,
) -> DiscoveryData:
    """Lay out a physml dataset (xarray) for pysindy.

    Parameters
    ----------
    dataset : xarray.Dataset
        A dataset of the physml schema: dims ``sample``, ``time``, then spatial dims; one data variable
        per field.  A dataset without a ``sample`` dim is taken as one sample.
    variables : sequence of str, optional
        Fields to use, in order (default: the ``physml_state_variables`` attribute, else every data
        variable with the ``time`` dim).
    samples : int, slice or sequence of int, optional
        Samples to keep (positions along ``sample``; default all).
    times : slice or sequence of int, optional
        Time indices to keep (default all).
    periodic : bool or sequence of bool, optional
        Periodicity of each spatial dim; default from the ``physml_bc_<dim>`` attributes (periodic when
        recorded as ``"periodic"``, otherwise not).
    dtype : numpy dtype
        dtype of the returned fields (float64 by default: finite differences of float32 data lose
        digits fast).

    Returns
    -------
    DiscoveryData

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    >>> t = np.linspace(0, 1, 5)
    >>> u = np.sin(x[None, None, :] - t[None, :, None])
    >>> dataset = xr.Dataset({"u": (("sample", "time", "x"), u)}, coords={"time": t, "x": x},
    ...                      attrs={"physml_bc_x": "periodic"})
    >>> data = from_dataset(dataset)
    >>> data.fields.shape, data.variables, data.periodic
    ((1, 16, 5, 1), ('u',), (True,))
    """
    try:
        import xarray as xr
    except ImportError as error:  # pragma: no cover - xarray is a dependency of physml.data
        raise ImportError("physml.discovery.from_dataset needs xarray") from error
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(
            f"dataset must be an xarray.Dataset of the physml schema, got {type(dataset).__name__}"
        )
    if "time" not in dataset.dims:
        raise ValueError(
            f"dataset must have a 'time' dim (physml schema: sample, time, *space); "
            f"its dims are {tuple(dataset.dims)}"
        )
    if variables is None:
        recorded = str(dataset.attrs.get("physml_state_variables", "")).split()
        variables = recorded or [name for name, array in dataset.data_vars.items() if "time" in array.dims]
    variables = [variables] if isinstance(variables, str) else list(variables)
    if not variables:
        raise ValueError("variables is empty: give at least one field of the dataset")
    missing = [name for name in variables if name not in dataset.data_vars]
    if missing:
        raise ValueError(
            f"variables {missing} are not data variables of the dataset; it has {sorted(dataset.data_vars)}"
        )
    reference = dataset[variables[0]]
    spatial_dims = tuple(dim for dim in reference.dims if dim not in ("sample", "time"))
    for name in variables[1:]:
        other = tuple(dim for dim in dataset[name].dims if dim not in ("sample", "time"))
        if other != spatial_dims:
            raise ValueError(
                f"variables must share their spatial dims; {variables[0]!r} has {spatial_dims}, "
                f"{name!r} has {other}"
            )
    order = (("sample",) if "sample" in reference.dims else ()) + ("time",) + spatial_dims
    arrays = []
    for name in variables:
        array = dataset[name].transpose(*order)
        if samples is not None and "sample" in array.dims:
            array = array.isel(sample=[samples] if isinstance(samples, int | np.integer) else samples)
        if times is not None:
            array = array.isel(time=times)
        values = np.asarray(array.values, dtype=dtype)
        if "sample" not in array.dims:
            values = values[None]
        arrays.append(values)
    fields = np.stack(arrays, axis=-1)  # (sample, time, *space, variable)
    fields = np.moveaxis(fields, 1, -2)  # (sample, *space, time, variable)
    time_values = np.asarray(
        dataset["time"].values if times is None else dataset["time"].values[times], dtype=float
    )
    time_values = np.atleast_1d(time_values)
    if len(time_values) > 1 and not np.all(np.diff(time_values) > 0):
        raise ValueError("the dataset's time coordinate must be strictly increasing")
    coordinates = []
    for dim in spatial_dims:
        if dim not in dataset.coords:
            raise ValueError(
                f"spatial dim {dim!r} has no coordinate; physml datasets carry the grid as coordinates"
            )
        values = np.asarray(dataset[dim].values, dtype=float)
        if len(values) > 1 and not np.all(np.diff(values) > 0):
            raise ValueError(f"coordinate {dim!r} must be strictly increasing")
        coordinates.append(values)
    if periodic is None:
        periodic = tuple(_boundary_of(dataset, dim) == "periodic" for dim in spatial_dims)
    elif isinstance(periodic, bool):
        periodic = (periodic,) * len(spatial_dims)
    else:
        periodic = tuple(bool(value) for value in periodic)
        if len(periodic) != len(spatial_dims):
            raise ValueError(f"periodic must have one entry per spatial dim {spatial_dims}, got {periodic}")
    if not np.all(np.isfinite(fields)):
        raise ValueError(
            "the dataset's fields hold non-finite values (NaN or inf); drop or repair those "
            "samples first (see the qc_flag coordinate)"
        )
    return DiscoveryData(fields, time_values, tuple(coordinates), spatial_dims, tuple(variables), periodic)


def add_noise(
    data: DiscoveryData, level: float, seed: int | np.random.SeedSequence | None = 0
) -> DiscoveryData:
    """Gaussian measurement noise of ``level`` times each field's standard deviation (PDE-FIND's model).

    u_noisy = u + level · std(u) · N(0, 1), with std over all samples, times and points of that field.

    Parameters
    ----------
    data : DiscoveryData
    level : float
        Noise level as a fraction of the standard deviation, in [0, 1] (0.01 is PDE-FIND's 1 %).
    seed : int or numpy.random.SeedSequence
        Seed of the noise draw.

    Examples
    --------
    >>> import numpy as np
    >>> clean = DiscoveryData(np.ones((1, 4, 3, 1)), np.arange(3.0), (np.arange(4.0),), ("x",), ("u",),
    ...                       (True,))
    >>> noisy = add_noise(clean, 0.0)
    >>> bool(np.array_equal(noisy.fields, clean.fields))
    True
    """
    if isinstance(level, bool) or not isinstance(level, int | float | np.floating | np.integer):
        raise TypeError(f"level must be a number in [0, 1], got {level!r}")
    level = float(level)
    if not (math.isfinite(level) and 0.0 <= level <= 1.0):
        raise ValueError(
            f"level must be a noise fraction of the field's standard deviation in [0, 1], got {level}"
        )
    generator = np.random.default_rng(seed)
    scale = data.fields.reshape(-1, data.fields.shape[-1]).std(axis=0)
    noise = generator.standard_normal(data.fields.shape)
    return data.with_fields(data.fields + level * scale * noise)
