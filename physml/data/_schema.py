"""The physml dataset schema: an xarray Dataset with CF/ACDD metadata, written atomically to netCDF4 or Zarr.

Layout of every dataset (one file per split):

- dims ``sample``, ``time``, then the system's grid dims (``x``, ``y``, ...); one data variable per state
  variable with ``units``, ``long_name`` (and ``standard_name`` when the system sets one);
- coordinates ``time`` (plain units such as "s" or "1", never "... since ..."), the grid coordinates,
  and on ``sample``: ``split``, ``environment``, ``seed_spawn_key``, ``seed``, ``qc_flag`` (CF
  ``flag_values``/``flag_meanings``) and one coordinate per physical parameter;
- global CF/ACDD attributes and the ``physml_*`` block (see :data:`REQUIRED_GLOBAL_ATTRIBUTES`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

SCHEMA_VERSION = "1.0"
CONVENTIONS = "CF-1.10 ACDD-1.3"
#: QC flag values and their CF ``flag_meanings``.  Flagged samples stay in the data.
QC_FLAG_VALUES = np.array([0, 1, 2], dtype=np.int8)
QC_FLAG_MEANINGS = "good non_finite solver_failure"
QC_GOOD, QC_NON_FINITE, QC_SOLVER_FAILURE = 0, 1, 2
#: Coordinates every dataset carries along ``sample``.
SAMPLE_COORDINATES = ("split", "environment", "seed_spawn_key", "seed", "qc_flag")
#: Global attributes every dataset carries (CF, ACDD, then the physml block).
REQUIRED_GLOBAL_ATTRIBUTES = (
    "Conventions",
    "title",
    "source",
    "history",
    "references",
    "summary",
    "license",
    "date_created",
    "product_version",
    "physml_schema_version",
    "physml_version",
    "physml_system",
    "physml_config",
    "physml_solver",
    "physml_rtol",
    "physml_atol",
    "physml_dt_internal",
    "physml_dt_save",
    "physml_boundary_conditions",
    "physml_seed_entropy",
    "physml_seed_rule",
    "physml_parameter_names",
)
#: Names of the per-variable attributes holding train-split normalisation statistics.
STATISTICS_ATTRIBUTES = (
    "physml_train_mean",
    "physml_train_std",
    "physml_train_rms",
    "physml_train_increment_mean",
    "physml_train_increment_std",
    "physml_train_increment_rms",
)
ADAPTIVE_STEP = "adaptive"
#: Recorded for tolerances a fixed-step scheme ignores, and for the solver of a reference dataset.
NOT_APPLICABLE = "not applicable"


def _physml_version() -> str:
    import physml

    return physml.__version__


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _per_sample(value, n: int, name: str, dtype=None) -> np.ndarray:
    """Broadcast a scalar or check a per-sample sequence of length ``n``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 0:
        return np.full(n, array.item(), dtype=array.dtype if dtype is None else dtype)
    if array.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or have one value per sample ({n}), got shape {array.shape}"
        )
    return array


def _strings(values, n: int, name: str) -> np.ndarray:
    if isinstance(values, str):
        values = [values] * n
    values = list(values)
    if len(values) != n or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{name} must be a string or {n} strings (one per sample), got {values!r}")
    array = np.empty(n, dtype=object)
    array[:] = values
    return array


def qc_flags(data: Mapping[str, np.ndarray], solver_failed=None) -> np.ndarray:
    """QC flag per sample: 2 where the solver failed, else 1 where any value is non-finite, else 0.

    Examples
    --------
    >>> qc_flags({"q": np.array([[0.0, 1.0], [np.nan, 1.0]])}).tolist()
    [0, 1]
    """
    arrays = list(data.values())
    n = arrays[0].shape[0]
    non_finite = np.zeros(n, dtype=bool)
    for array in arrays:
        non_finite |= ~np.isfinite(array.reshape(n, -1)).all(axis=1)
    flags = np.where(non_finite, QC_NON_FINITE, QC_GOOD).astype(np.int8)
    if solver_failed is not None:
        flags[_per_sample(solver_failed, n, "solver_failed", bool)] = QC_SOLVER_FAILURE
    return flags


def build_dataset(
    system,
    times,
    trajectories,
    *,
    split: str | Sequence[str] = "train",
    environment=0,
    parameters: Mapping | None = None,
    seed_spawn_keys: str | Sequence[str] = "",
    seeds=-1,
    solver: Mapping | None = None,
    solver_failed=None,
    seed_entropy: int = -1,
    seed_rule: str = "unrecorded",
    config: Mapping | None = None,
    attributes: Mapping | None = None,
    dtype: str | None = None,
    grid=None,
    auxiliary: Sequence = (),
):
    """Build a schema-conforming xarray Dataset from a system and its trajectories.

    Parameters
    ----------
    system : physml.systems.System
        Supplies variable names, units and long names, parameter specs, grid and boundary conditions.
    times : array-like
        Saved times, shape ``(n_time,)``, in ``system.time_units``.
    trajectories : torch.Tensor or numpy.ndarray
        States in the ``ODESolution.ys`` layout ``(n_time, n_sample, *system.state_shape)``.
    split : str or sequence of str
        Split of every sample (``"train"``, ``"validation"``, ``"test"``).
    environment : int or sequence of int
        Environment id of every sample.
    parameters : mapping, optional
        Parameter values by name (scalar or one per sample); defaults to the system's current values.
    seed_spawn_keys, seeds
        Per-sample seed provenance: the spawn key as text ``"split-environment-index"`` and the integer
        seed given to ``torch.Generator.manual_seed`` ("" and -1 mean not recorded).
    solver : mapping, optional
        ``method``, ``rtol``, ``atol`` and ``internal_dt`` (None for adaptive methods).
    solver_failed : bool or sequence of bool, optional
        Samples whose solve did not succeed (flagged 2); non-finite samples are flagged 1.
    seed_entropy, seed_rule
        Root SeedSequence entropy and seed rule, recorded as attributes.
    config : mapping, optional
        Full generation config, stored as the JSON string ``physml_config``.
    attributes : mapping, optional
        Global attributes that override the defaults (title, summary, license, ...).
    dtype : {"float32", "float64"}, optional
        Storage dtype of the state variables (default: the trajectories' dtype).
    grid : physml.systems.Grid, optional
        The grid the trajectories are on, when it is not ``system.grid`` (e.g. every 4th point of it).
    auxiliary : sequence of (Variable, array), optional
        Further data variables that are not part of the state (e.g. a prescribed velocity), each with
        values in the trajectories' layout ``(n_time, n_sample, *grid.shape)``.  They carry
        ``physml_role = "auxiliary"``; ``physml_state_variables`` names the state variables.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import torch
    >>> from physml.systems import get_system
    >>> pendulum = get_system("damped_pendulum")()
    >>> y0 = pendulum.sample_initial_conditions(3, torch.Generator().manual_seed(0))
    >>> times = torch.linspace(0, 1, 5, dtype=torch.float64)
    >>> ds = build_dataset(pendulum, times, pendulum.simulate(y0, times).ys)
    >>> dict(ds.sizes), ds["q"].attrs["units"], int(ds["qc_flag"].sum())
    ({'sample': 3, 'time': 5}, 'rad', 0)
    """
    import xarray as xr

    if hasattr(trajectories, "detach"):
        trajectories = trajectories.detach().cpu().numpy()
    trajectories = np.asarray(trajectories)
    grid = system.grid if grid is None else grid
    state_shape = (
        (len(system.state_variables), *grid.shape) if grid is not None else tuple(system.state_shape)
    )
    if trajectories.ndim != 2 + len(state_shape) or trajectories.shape[2:] != state_shape:
        raise ValueError(
            f"trajectories must have shape (n_time, n_sample, *state_shape) = (n_time, n_sample, "
            f"{', '.join(map(str, state_shape))}) for {system.name}, got {trajectories.shape}"
        )
    times = np.asarray(times.detach().cpu().numpy() if hasattr(times, "detach") else times, dtype=np.float64)
    if times.shape != trajectories.shape[:1]:
        raise ValueError(
            f"times must have shape ({trajectories.shape[0]},) like trajectories' first axis, got "
            f"{times.shape}"
        )
    if dtype is not None and dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    n_sample = trajectories.shape[1]
    grid_dims = tuple(grid.dims) if grid is not None else ()
    reserved = {"sample", "time", *grid_dims, *SAMPLE_COORDINATES}

    data_vars = {}
    for index, variable in enumerate(system.state_variables):
        if variable.name in reserved:
            raise ValueError(
                f"state variable name {variable.name!r} of {system.name} clashes with a schema name"
            )
        values = np.moveaxis(trajectories[:, :, index], 0, 1)
        if dtype is not None:
            values = values.astype(dtype)
        attrs = {"units": variable.units, "long_name": variable.long_name, "physml_tensor_order": 0}
        if variable.standard_name:
            attrs["standard_name"] = variable.standard_name
        data_vars[variable.name] = (("sample", "time", *grid_dims), values, attrs)
    for variable, values in auxiliary:
        if variable.name in reserved or variable.name in data_vars:
            raise ValueError(f"auxiliary variable name {variable.name!r} clashes with a schema or state name")
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        values = np.asarray(values)
        expected = (trajectories.shape[0], n_sample, *state_shape[1:])
        if values.shape != expected:
            raise ValueError(
                f"auxiliary variable {variable.name!r} must have shape (n_time, n_sample, *grid) = "
                f"{expected}, got {values.shape}"
            )
        values = np.moveaxis(values, 0, 1)
        if dtype is not None:
            values = values.astype(dtype)
        attrs = {"units": variable.units, "long_name": variable.long_name, "physml_role": "auxiliary"}
        if variable.standard_name:
            attrs["standard_name"] = variable.standard_name
        data_vars[variable.name] = (("sample", "time", *grid_dims), values, attrs)
    flags = qc_flags({name: value[1] for name, value in data_vars.items()}, solver_failed)

    coords = {
        "sample": (
            "sample",
            np.arange(n_sample, dtype=np.int64),
            {"units": "1", "long_name": "sample index in this file"},
        ),
        "time": ("time", times, {"units": system.time_units, "long_name": "time"}),
        "split": ("sample", _strings(split, n_sample, "split"), {"long_name": "data split"}),
        "environment": (
            "sample",
            _per_sample(environment, n_sample, "environment", np.int32),
            {"units": "1", "long_name": "environment id (parameter set)"},
        ),
        "seed_spawn_key": (
            "sample",
            _strings(seed_spawn_keys, n_sample, "seed_spawn_keys"),
            {"long_name": "SeedSequence spawn key (split id, environment id, sample index)"},
        ),
        "seed": (
            "sample",
            _per_sample(seeds, n_sample, "seeds", np.int64),
            {"units": "1", "long_name": "integer seed of the sample's torch.Generator (-1: not recorded)"},
        ),
        "qc_flag": (
            "sample",
            flags,
            {
                "units": "1",
                "long_name": "quality control flag",
                "flag_values": QC_FLAG_VALUES,
                "flag_meanings": QC_FLAG_MEANINGS,
            },
        ),
    }
    if grid is not None:
        for index, (name, values) in enumerate(grid.coordinates().items()):
            long_name = grid.long_names[index] if index < len(grid.long_names) else f"{name} coordinate"
            attrs = {"units": grid.units, "long_name": long_name}
            if name in ("x", "y", "z"):
                attrs["axis"] = name.upper()
            coords[name] = (name, values, attrs)
    values = dict(system.parameter_values())
    values.update(parameters or {})
    specs = {spec.name: spec for spec in system.parameter_specs}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ValueError(
            f"parameters {unknown} are not parameters of {system.name}; its parameters are {sorted(specs)}"
        )
    for name, spec in specs.items():
        if name in reserved or name in data_vars:
            raise ValueError(
                f"parameter name {name!r} of {system.name} clashes with a schema or variable name"
            )
        coords[name] = (
            "sample",
            _per_sample(values[name], n_sample, f"parameters[{name!r}]", np.float64),
            {"units": spec.units, "long_name": spec.description},
        )

    solver = dict(solver or {})
    internal_dt = solver.get("internal_dt")
    save_interval = float(times[1] - times[0]) if len(times) > 1 else float("nan")
    if grid is None:
        boundary = "none (no spatial grid)"
        boundary_attrs = {}
    else:
        boundary = ", ".join(
            f"{name}: {condition}" for name, condition in zip(grid.dims, grid.boundary, strict=True)
        )
        boundary_attrs = {
            f"physml_bc_{name}": condition for name, condition in zip(grid.dims, grid.boundary, strict=True)
        }
    version = _physml_version()
    method = str(solver.get("method", "unrecorded"))
    attrs = {
        "Conventions": CONVENTIONS,
        "title": system.title or system.name,
        "source": f"physml {version}, system {system.name}, solver {method}",
        "history": f"{_now()} created by physml {version} (physml.data.build_dataset)",
        "references": system.references or "none",
        "summary": f"Trajectories of the {system.title or system.name} system.",
        "license": "unspecified",
        "date_created": _now(),
        "product_version": "0",
        "physml_schema_version": SCHEMA_VERSION,
        "physml_version": version,
        "physml_system": system.name,
        "physml_system_description": json.dumps(system.describe(), sort_keys=True),
        "physml_config": json.dumps(dict(config or {}), sort_keys=True),
        "physml_solver": method,
        "physml_rtol": _tolerance(solver, "rtol"),
        "physml_atol": _tolerance(solver, "atol"),
        # Adaptive methods choose their own steps: record that in words rather than a fake number.
        "physml_dt_internal": (
            ADAPTIVE_STEP
            if internal_dt is None
            else internal_dt
            if isinstance(internal_dt, str)
            else float(internal_dt)
        ),
        "physml_dt_save": save_interval,
        "physml_boundary_conditions": boundary,
        **boundary_attrs,
        "physml_seed_entropy": int(seed_entropy),
        "physml_seed_rule": seed_rule,
        "physml_parameter_names": " ".join(specs),
        "physml_state_variables": " ".join(variable.name for variable in system.state_variables),
        "physml_qc_counts": json.dumps(
            {
                meaning: int((flags == value).sum())
                for value, meaning in zip(QC_FLAG_VALUES.tolist(), QC_FLAG_MEANINGS.split(), strict=True)
            }
        ),
    }
    attrs.update(attributes or {})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _tolerance(solver: Mapping, name: str):
    """A tolerance as a number, :data:`NOT_APPLICABLE` when given as ``None`` or as that text."""
    if name in solver and (solver[name] is None or solver[name] == NOT_APPLICABLE):
        return NOT_APPLICABLE
    return float(solver.get(name, float("nan")))


# -- statistics and checksums ----------------------------------------------------------------------


def compute_statistics(dataset) -> dict[str, dict[str, float]]:
    """Mean, std and rms of every data variable and of its increment between saved frames.

    Only samples with ``qc_flag == 0`` enter (a flagged sample would make every statistic NaN).  Call
    it on the train split: normalising with statistics that saw the test data leaks them.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"u": (("sample", "time"), [[0.0, 2.0], [4.0, 6.0]])},
    ...                 coords={"qc_flag": ("sample", [0, 0])})
    >>> compute_statistics(ds)["u"]["mean"], compute_statistics(ds)["u"]["increment_mean"]
    (3.0, 2.0)
    """
    good = np.asarray(dataset["qc_flag"].values) == QC_GOOD
    statistics = {}
    for name, variable in dataset.data_vars.items():
        values = np.asarray(variable.values, dtype=np.float64)[good]
        increments = np.diff(values, axis=variable.dims.index("time"))
        entry = {}
        for prefix, array in (("", values), ("increment_", increments)):
            entry[f"{prefix}mean"] = float(array.mean()) if array.size else float("nan")
            entry[f"{prefix}std"] = float(array.std()) if array.size else float("nan")
            entry[f"{prefix}rms"] = float(np.sqrt((array**2).mean())) if array.size else float("nan")
        entry["samples"] = int(good.sum())
        statistics[name] = entry
    return statistics


def attach_statistics(dataset, statistics: Mapping[str, Mapping[str, float]]):
    """Store train statistics as ``physml_train_*`` attributes of each data variable (in place; returned)."""
    for name, entry in statistics.items():
        attrs = dataset[name].attrs
        for key in ("mean", "std", "rms", "increment_mean", "increment_std", "increment_rms"):
            attrs[f"physml_train_{key}"] = float(entry[key])
        attrs["physml_train_samples"] = int(entry["samples"])
    return dataset


def checksums(dataset) -> dict[str, str]:
    """SHA-256 of every variable's values (data variables and coordinates), not of the file bytes.

    Files embed their creation date and history, so byte-identical data give different file hashes;
    these hashes cover dtype, shape and values only (strings as UTF-8).

    Examples
    --------
    >>> import xarray as xr
    >>> sums = checksums(xr.Dataset({"u": ("sample", [1.0, 2.0])}))
    >>> sorted(sums), len(sums["u"])
    (['u'], 64)
    """
    result = {}
    for name in sorted(dataset.variables):
        values = np.asarray(dataset[name].values)
        digest = hashlib.sha256()
        digest.update(f"{values.shape}".encode())
        if values.dtype.kind in "OUST":  # T: numpy 2 StringDType (read back from Zarr v3)
            digest.update(b"str")
            for item in values.ravel():
                digest.update(str(item).encode("utf-8") + b"\0")
        else:
            digest.update(values.dtype.str.encode())
            digest.update(np.ascontiguousarray(values).tobytes())
        result[str(name)] = digest.hexdigest()
    return result


# -- reading and writing ---------------------------------------------------------------------------


def _store_kind(path: Path) -> str:
    if path.suffix == ".nc":
        return "netcdf"
    if path.suffix == ".zarr":
        return "zarr"
    raise ValueError(f"path must end in '.nc' (netCDF4) or '.zarr' (Zarr), got {str(path)!r}")


def _encoding(dataset, store: str) -> dict:
    """No fill values (NaN is written as NaN, bit for bit); one chunk per sample for fields."""
    encoding = {}
    for name, variable in dataset.variables.items():
        entry = {} if variable.dtype == object else {"_FillValue": None}
        if name in dataset.data_vars and variable.ndim > 2 and store == "netcdf":
            entry["chunksizes"] = (1, *variable.shape[1:])
        encoding[name] = entry
    return encoding


def write_dataset(dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` atomically to a netCDF4 (``.nc``) file or a Zarr (``.zarr``) store.

    The data go to a temporary name in the same directory, then ``os.replace`` puts them under the
    final name, so a crash never leaves a half-written file under a final name.

    Parameters
    ----------
    dataset : xarray.Dataset
    path : path-like
        Destination ending in ``.nc`` or ``.zarr``.
    overwrite : bool
        Replace an existing destination (otherwise :class:`FileExistsError`).

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> path = write_dataset(xr.Dataset({"u": ("sample", [1.0])}), tempfile.mkdtemp() + "/u.nc")
    >>> path.name
    'u.nc'
    """
    path = Path(path)
    store = _store_kind(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        if store == "netcdf":
            dataset.to_netcdf(
                temporary, engine="netcdf4", format="NETCDF4", encoding=_encoding(dataset, store)
            )
        else:
            # Variable-length UTF-8 has a Zarr v3 data type; numpy's fixed-width unicode has none.
            text = {
                name: variable.astype(object)
                for name, variable in dataset.variables.items()
                if variable.dtype.kind == "U"
            }
            dataset = dataset.assign_coords(text) if text else dataset
            dataset.to_zarr(temporary, mode="w-", encoding=_encoding(dataset, store), consolidated=False)
        if store == "zarr" and path.exists():
            # Directories cannot be replaced in one rename: move the old store aside first.
            retired = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
            os.replace(path, retired)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()
    return path


def open_dataset(path: str | os.PathLike, split: str | None = None):
    """Open a physml dataset file (``.nc`` or ``.zarr``) lazily, or one split of a generated directory.

    Time stays a plain float: ``decode_timedelta=False`` and ``decode_times=False`` stop xarray from
    turning simulation time into timedeltas or dates.

    Parameters
    ----------
    path : path-like
        A ``.nc`` file, a ``.zarr`` store, or a directory written by :func:`physml.data.generate`.
    split : str, optional
        With a directory: the split to open (``"train"``, ``"validation"``, ``"test"``).

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> path = write_dataset(xr.Dataset({"u": ("sample", [1.0])}), tempfile.mkdtemp() + "/u.nc")
    >>> with open_dataset(path) as ds:
    ...     float(ds["u"][0])
    1.0
    """
    import xarray as xr

    path = Path(path)
    if path.is_dir() and path.suffix != ".zarr":
        if split is None:
            raise ValueError(f"{str(path)!r} is a directory: pass split= one of {list_splits(path)}")
        candidates = [path / f"{split}.nc", path / f"{split}.zarr"]
        found = [candidate for candidate in candidates if candidate.exists()]
        if not found:
            raise ValueError(
                f"split {split!r} not found in {str(path)!r}; its splits are {list_splits(path)}"
            )
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"dataset {str(path)!r} does not exist")
    if _store_kind(path) == "netcdf":
        return xr.open_dataset(path, engine="netcdf4", decode_timedelta=False, decode_times=False)
    # physml writes Zarr v3 without consolidated metadata (not part of the v3 specification).
    return xr.open_dataset(
        path, engine="zarr", consolidated=False, decode_timedelta=False, decode_times=False
    )


def list_splits(directory: str | os.PathLike) -> list[str]:
    """Splits stored in a generated directory (``train.nc``, ``test.nc``, ... or ``.zarr``), in order."""
    from ._spec import SPLIT_IDS

    directory = Path(directory)
    names = {
        entry.stem
        for entry in directory.iterdir()
        if entry.suffix in (".nc", ".zarr") and not entry.name.startswith(".")
    }
    return sorted(names, key=lambda name: (SPLIT_IDS.get(name, len(SPLIT_IDS)), name))
