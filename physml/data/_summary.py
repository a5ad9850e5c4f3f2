"""Plain-text summaries of datasets (used by ``physml info PATH`` and ``physml generate``)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from ._schema import QC_FLAG_MEANINGS, QC_FLAG_VALUES, list_splits, open_dataset


def _label(variable, name: str) -> str:
    units = variable.attrs.get("units")
    text = f"{name} [{units}]" if units else name
    long_name = variable.attrs.get("long_name")
    return f"{text} {long_name}" if long_name else text


def _summarize_dataset(dataset, name: str, per_split: bool = True) -> list[str]:
    """Summary lines; ``per_split=False`` leaves out what differs between splits (samples, splits, QC)."""
    attrs = dataset.attrs
    lines = [f"{name}: {attrs.get('title', '(no title)')}"]
    lines.append(
        "  dims: "
        + ", ".join(f"{dim}={size}" for dim, size in dataset.sizes.items() if per_split or dim != "sample")
    )
    lines.append(
        "  variables: " + "; ".join(_label(variable, str(key)) for key, variable in dataset.data_vars.items())
    )
    if "split" in dataset.coords and per_split:
        counts = Counter(str(split) for split in np.asarray(dataset["split"].values).ravel())
        lines.append("  splits: " + ", ".join(f"{split} {count}" for split, count in counts.items()))
    if "environment" in dataset.coords:
        environments = np.unique(dataset["environment"].values)
        lines.append(
            f"  environments: {len(environments)} (ids {', '.join(map(str, environments[:12]))}"
            f"{', ...' if len(environments) > 12 else ''})"
        )
    parameters = []
    for parameter in str(attrs.get("physml_parameter_names", "")).split():
        if parameter not in dataset.coords:
            continue
        values = np.asarray(dataset[parameter].values, dtype=np.float64)
        units = dataset[parameter].attrs.get("units", "")
        units = "" if units == "1" else units  # dimensionless: no unit to print
        if values.size and np.all(values == values[0]):
            parameters.append(f"{parameter} = {values[0]:.6g} {units}".rstrip())
        elif values.size:
            parameters.append(
                " ".join(
                    filter(
                        None,
                        [
                            f"{parameter} in [{values.min():.6g}, {values.max():.6g}]",
                            units,
                            f"({len(np.unique(values))} values)",
                        ],
                    )
                )
            )
    if parameters:
        lines.append("  parameters: " + "; ".join(parameters))
    if "qc_flag" in dataset.coords and per_split:
        flags = np.asarray(dataset["qc_flag"].values)
        counts = {
            meaning: int((flags == value).sum())
            for value, meaning in zip(QC_FLAG_VALUES.tolist(), QC_FLAG_MEANINGS.split(), strict=True)
        }
        lines.append("  QC: " + ", ".join(f"{meaning} {count}" for meaning, count in counts.items()))
    if "physml_solver" in attrs:
        time_units = dataset["time"].attrs.get("units", "") if "time" in dataset.coords else ""
        lines.append(
            f"  solver: {attrs['physml_solver']} (rtol {attrs.get('physml_rtol')}, atol "
            f"{attrs.get('physml_atol')}, internal step {attrs.get('physml_dt_internal')}), save "
            f"interval {attrs.get('physml_dt_save')} {'' if time_units == '1' else time_units}".rstrip()
        )
    statistics = [
        f"{key} mean {variable.attrs['physml_train_mean']:.4g} std {variable.attrs['physml_train_std']:.4g}"
        for key, variable in dataset.data_vars.items()
        if "physml_train_mean" in variable.attrs
    ]
    if statistics:
        lines.append("  train statistics: " + "; ".join(statistics))
    return lines


def _config_lines(attrs) -> list[str]:
    try:
        config = json.loads(attrs.get("physml_config", "{}"))
    except ValueError:
        return ["  generation config: (not valid JSON)"]
    if not config:
        return []
    spec = config.get("spec", {})
    resolved = config.get("resolved", {})
    shown = {
        "system": spec.get("system"),
        **{key: spec[key] for key in ("time", "solver", "seeds", "dtype") if key in spec},
        **{key: value for key, value in resolved.items() if key not in ("system", "split_ids")},
    }
    environments = shown.get("environments", [])
    if len(environments) > 3:  # the parameters line above already gives their ranges
        shown["environments"] = (
            f"{len(environments)} parameter sets (ids {environments[0]['id']}..{environments[-1]['id']})"
        )
    text = json.dumps(shown)
    return [f"  generation config ({config.get('dataset')}, scale {config.get('scale')}): {text}"]


def summarize(path_or_dataset) -> str:
    """A short text summary: dims, variables, splits, sizes, parameters, QC counts, generation config.

    Parameters
    ----------
    path_or_dataset : xarray.Dataset or path-like
        A Dataset, a ``.nc``/``.zarr`` path or a directory written by :func:`physml.data.generate`.

    Examples
    --------
    >>> import tempfile
    >>> from physml.data import generate
    >>> report = generate("aphynity_pendulum", "mini", out=tempfile.mkdtemp())
    >>> print(summarize(report.directory).splitlines()[1])
    aphynity_pendulum (mini): Damped pendulum trajectories (APHYNITY benchmark)
    """
    if hasattr(path_or_dataset, "data_vars"):
        return "\n".join(
            _summarize_dataset(path_or_dataset, "dataset") + _config_lines(path_or_dataset.attrs)
        )
    path = Path(os.fspath(path_or_dataset))
    if path.is_dir() and path.suffix != ".zarr":
        splits = list_splits(path)
        if not splits:
            raise ValueError(f"{str(path)!r} holds no .nc or .zarr split files")
        per_split, shared, attrs = [], [], {}
        for split in splits:
            with open_dataset(path, split=split) as dataset:
                lines = _summarize_dataset(dataset, split)
                qc = next((line.split(": ", 1)[1] for line in lines if line.startswith("  QC: ")), "?")
                per_split.append(f"    {split}: {dataset.sizes['sample']} samples (QC {qc})")
                if not shared:  # dims, variables, parameters, solver, statistics: from the first split
                    shared = _summarize_dataset(dataset, split, per_split=False)[1:]
                    attrs = dict(dataset.attrs)
        name = attrs.get("physml_dataset", path.name)
        title = f"{name} ({attrs.get('physml_scale', '?')}): {attrs.get('title', '')}"
        return "\n".join([str(path), title, "  splits:", *per_split, *shared] + _config_lines(attrs))
    with open_dataset(path) as dataset:
        return "\n".join([str(path)] + _summarize_dataset(dataset, path.stem) + _config_lines(dataset.attrs))
