"""The schema validator: every violation of the physml dataset schema, listed, not just the first."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np

from ._schema import (
    ADAPTIVE_STEP,
    NOT_APPLICABLE,
    QC_FLAG_VALUES,
    QC_GOOD,
    REQUIRED_GLOBAL_ATTRIBUTES,
    SAMPLE_COORDINATES,
    STATISTICS_ATTRIBUTES,
    list_splits,
    open_dataset,
)
from ._spec import SPLIT_IDS

_NUMBER_ATTRIBUTES = ("physml_dt_save",)
#: Tolerances: positive numbers, or NOT_APPLICABLE (fixed-step schemes, reference solutions).
_TOLERANCE_ATTRIBUTES = ("physml_rtol", "physml_atol")


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _is_text(variable) -> bool:
    return variable.dtype.kind in "OUST"  # T: numpy 2 StringDType (Zarr v3 strings)


def validate(path_or_dataset, *, require_statistics: bool = True) -> list[str]:
    """List every schema violation of a dataset (an empty list means valid).

    Parameters
    ----------
    path_or_dataset : xarray.Dataset or path-like
        A Dataset, a ``.nc``/``.zarr`` path, or a directory written by :func:`physml.data.generate`
        (every split is checked; messages are prefixed with the file name).
    require_statistics : bool
        Report data variables without the ``physml_train_*`` normalisation statistics.

    Returns
    -------
    list of str
        One message per violation, naming the variable or attribute and what was expected.

    Examples
    --------
    >>> import xarray as xr
    >>> problems = validate(xr.Dataset({"u": (("sample", "time"), [[1.0]])}))
    >>> any("missing global attribute 'Conventions'" in problem for problem in problems)
    True
    """
    if not hasattr(path_or_dataset, "data_vars"):
        path = Path(os.fspath(path_or_dataset))
        if path.is_dir() and path.suffix != ".zarr":
            splits = list_splits(path)
            if not splits:
                return [f"{path}: no .nc or .zarr split files in this directory"]
            problems = []
            for split in splits:
                problems += [
                    f"{split}: {problem}" for problem in _validate_path(path, split, require_statistics)
                ]
            return problems
        return _validate_path(path, None, require_statistics)
    return _validate_dataset(path_or_dataset, require_statistics)


def _validate_path(path: Path, split, require_statistics: bool) -> list[str]:
    try:
        dataset = open_dataset(path, split=split)
    except Exception as error:  # any failure to open is itself the violation to report
        return [f"cannot open {str(path)!r}: {type(error).__name__}: {error}"]
    with dataset:
        problems = _validate_dataset(dataset, require_statistics)
        if split is not None and "split" in dataset.coords:
            wrong = sorted(set(map(str, dataset["split"].values)) - {split})
            if wrong:
                problems.append(f"file for split {split!r} holds samples of split(s) {wrong}")
    return problems


def _validate_dataset(dataset, require_statistics: bool) -> list[str]:
    problems: list[str] = []
    report = problems.append
    attrs = dataset.attrs

    # Global attributes.
    for name in REQUIRED_GLOBAL_ATTRIBUTES:
        value = attrs.get(name)
        if value is None:
            report(f"missing global attribute {name!r}")
        elif isinstance(value, str) and not value.strip():
            report(f"global attribute {name!r} is empty")
    if "CF-" not in str(attrs.get("Conventions", "CF-")):
        report(
            "global attribute 'Conventions' must name a CF version (e.g. 'CF-1.10'), "
            f"got {attrs['Conventions']!r}"
        )
    if "date_created" in attrs:
        try:
            datetime.datetime.fromisoformat(str(attrs["date_created"]))
        except ValueError:
            report(f"global attribute 'date_created' must be ISO 8601, got {attrs['date_created']!r}")
    for name in _NUMBER_ATTRIBUTES:
        if name in attrs and not (_is_number(attrs[name]) and float(attrs[name]) > 0):
            report(f"global attribute {name!r} must be a positive number, got {attrs[name]!r}")
    for name in _TOLERANCE_ATTRIBUTES:
        if name in attrs and not (
            attrs[name] == NOT_APPLICABLE or (_is_number(attrs[name]) and float(attrs[name]) > 0)
        ):
            report(
                f"global attribute {name!r} must be a positive number or {NOT_APPLICABLE!r}, "
                f"got {attrs[name]!r}"
            )
    if "physml_dt_internal" in attrs:
        value = attrs["physml_dt_internal"]
        if not (value in (ADAPTIVE_STEP, NOT_APPLICABLE) or (_is_number(value) and float(value) > 0)):
            report(
                f"global attribute 'physml_dt_internal' must be a positive number, {ADAPTIVE_STEP!r} or "
                f"{NOT_APPLICABLE!r}, got {value!r}"
            )
    if "physml_seed_entropy" in attrs and not isinstance(attrs["physml_seed_entropy"], int | np.integer):
        report(
            f"global attribute 'physml_seed_entropy' must be an integer, got {attrs['physml_seed_entropy']!r}"
        )
    if "physml_config" in attrs:
        try:
            json.loads(attrs["physml_config"])
        except (TypeError, ValueError) as error:
            report(f"global attribute 'physml_config' must be a JSON string ({error})")

    # Dimensions and data variables.
    if not dataset.data_vars:
        report("no data variables (expected one per state variable)")
    grid_dims: tuple | None = None
    for name, variable in dataset.data_vars.items():
        if variable.dims[:2] != ("sample", "time"):
            report(
                f"data variable {name!r} has dims {variable.dims}; expected ('sample', 'time', *grid dims)"
            )
            continue
        if grid_dims is None:
            grid_dims = variable.dims[2:]
        elif variable.dims[2:] != grid_dims:
            report(f"data variable {name!r} has grid dims {variable.dims[2:]}, others have {grid_dims}")
        if variable.dtype.kind != "f":
            report(f"data variable {name!r} must be floating point, got {variable.dtype}")
        if require_statistics:
            missing = [key for key in STATISTICS_ATTRIBUTES if key not in variable.attrs]
            if missing:
                report(f"data variable {name!r} lacks train statistics attribute(s) {missing}")

    # Units and long names on every variable and coordinate (text coordinates need no units).
    for name, variable in dataset.variables.items():
        kind = "data variable" if name in dataset.data_vars else "coordinate"
        if not str(variable.attrs.get("long_name", "")).strip():
            report(f"{kind} {name!r} has no 'long_name' attribute")
        if not _is_text(variable) and "units" not in variable.attrs:
            report(f"{kind} {name!r} has no 'units' attribute")
        if "since" in str(variable.attrs.get("units", "")):
            report(
                f"{kind} {name!r} has units {variable.attrs['units']!r}: use plain units ('s' or '1'), "
                "not '... since ...' (xarray would decode them as dates)"
            )

    # Coordinates: time, grid, per-sample metadata.
    if "time" not in dataset.coords:
        report("missing coordinate 'time'")
    else:
        time = dataset["time"]
        if time.dims != ("time",):
            report(f"coordinate 'time' must have dims ('time',), got {time.dims}")
        elif time.dtype.kind != "f":
            report(
                f"coordinate 'time' must be float (simulation time), got {time.dtype}: open files with "
                "decode_timedelta=False"
            )
        else:
            values = np.asarray(time.values)
            if values.size > 1 and not (np.diff(values) > 0).all():
                report("coordinate 'time' must be strictly increasing")
            step = attrs.get("physml_dt_save")
            if (
                values.size > 1
                and _is_number(step)
                and not np.allclose(np.diff(values), float(step), rtol=1e-9, atol=1e-12)
            ):
                report(
                    f"coordinate 'time' spacing {np.diff(values)[:3].tolist()}... disagrees with "
                    f"physml_dt_save = {step}"
                )
    for dim in grid_dims or ():
        if dim not in dataset.coords:
            report(f"missing coordinate for grid dimension {dim!r}")
        if f"physml_bc_{dim}" not in attrs:
            report(f"missing global attribute 'physml_bc_{dim}' (boundary condition of {dim!r})")
    if "sample" in dataset.dims and "sample" not in dataset.coords:
        report("missing coordinate 'sample'")
    for name in SAMPLE_COORDINATES:
        if name not in dataset.coords:
            report(f"missing coordinate {name!r} on 'sample'")
        elif dataset[name].dims != ("sample",):
            report(f"coordinate {name!r} must have dims ('sample',), got {dataset[name].dims}")
    for name in str(attrs.get("physml_parameter_names", "")).split():
        if name not in dataset.coords:
            report(
                f"missing coordinate {name!r} for physical parameter {name!r} "
                "(listed in physml_parameter_names)"
            )
        elif dataset[name].dims != ("sample",):
            report(f"parameter coordinate {name!r} must have dims ('sample',), got {dataset[name].dims}")
    if "split" in dataset.coords:
        unknown = sorted(set(map(str, np.asarray(dataset["split"].values).ravel())) - set(SPLIT_IDS))
        if unknown:
            report(f"coordinate 'split' holds unknown split name(s) {unknown}; expected {list(SPLIT_IDS)}")

    # QC flag: CF flag attributes, legal values, and every non-finite sample flagged.
    if "qc_flag" in dataset.coords:
        flag = dataset["qc_flag"]
        flag_values = flag.attrs.get("flag_values")
        meanings = str(flag.attrs.get("flag_meanings", "")).split()
        if flag_values is None or not meanings:
            report("coordinate 'qc_flag' needs CF attributes 'flag_values' and 'flag_meanings'")
            flag_values = QC_FLAG_VALUES
        elif len(np.atleast_1d(flag_values)) != len(meanings):
            report(
                f"coordinate 'qc_flag' has {len(np.atleast_1d(flag_values))} flag_values but "
                f"{len(meanings)} flag_meanings"
            )
        values = np.asarray(flag.values)
        illegal = sorted(set(values.ravel().tolist()) - set(np.atleast_1d(flag_values).tolist()))
        if illegal:
            report(
                f"coordinate 'qc_flag' holds value(s) {illegal} outside flag_values "
                f"{np.atleast_1d(flag_values).tolist()}"
            )
        if flag.dims == ("sample",):
            unflagged = []
            for name, variable in dataset.data_vars.items():
                if variable.dims[:1] != ("sample",) or variable.dtype.kind != "f":
                    continue
                array = np.asarray(variable.values).reshape(variable.shape[0], -1)
                bad = ~np.isfinite(array).all(axis=1) & (values == QC_GOOD)
                unflagged += [(name, int(index)) for index in np.flatnonzero(bad)]
            for name, index in unflagged[:20]:
                report(f"sample {index} of {name!r} holds non-finite values but qc_flag is 0 (good)")
            if len(unflagged) > 20:
                report(f"... and {len(unflagged) - 20} more non-finite samples not flagged")
    return problems
