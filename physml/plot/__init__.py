"""Figures of physml datasets: phase portraits and time series for ODEs, frame grids for fields.

Axis labels come from the CF attributes, ``long_name [units]``.  The functions draw on
``matplotlib.figure.Figure`` objects directly (no pyplot state, no backend switch), so they are safe in
scripts, notebooks and worker processes.  Needs the ``viz`` extra (matplotlib).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def label(variable, fallback: str = "") -> str:
    """``long_name [units]`` from a variable's CF attributes (``fallback`` without a long name).

    Examples
    --------
    >>> import xarray as xr
    >>> label(xr.DataArray([1.0], dims="t", attrs={"long_name": "pendulum angle", "units": "rad"}))
    'pendulum angle [rad]'
    """
    name = variable.attrs.get("long_name") or fallback or str(variable.name)
    units = variable.attrs.get("units")
    return f"{name} [{units}]" if units not in (None, "") else name


def _open(path_or_dataset):
    if hasattr(path_or_dataset, "data_vars"):
        return path_or_dataset, False
    from ..data import open_dataset

    return open_dataset(path_or_dataset), True


def _samples(dataset, samples, limit: int = 8):
    if samples is not None:
        return list(samples)
    return list(range(min(limit, dataset.sizes["sample"])))


def time_series(dataset, axes, variables=None, samples=None):
    """One panel per variable: its trajectories against time (one line per sample)."""
    variables = list(dataset.data_vars) if variables is None else list(variables)
    for axis, name in zip(np.atleast_1d(axes), variables, strict=False):
        for sample in _samples(dataset, samples):
            axis.plot(dataset["time"].values, dataset[name].isel(sample=sample).values, linewidth=1)
        axis.set_ylabel(label(dataset[name], name))
        axis.set_xlabel(label(dataset["time"], "time"))
    return axes


def phase_portrait(dataset, axis, x: str | None = None, y: str | None = None, samples=None, system=None):
    """Trajectories in the (x, y) plane, starting points marked; with ``system``, its vector field.

    ``system`` must be a 2-state ODE System; its ``forward`` is evaluated on a grid covering the data.
    """
    names = list(dataset.data_vars)
    x = names[0] if x is None else x
    y = names[1] if y is None else y
    for sample in _samples(dataset, samples):
        xs, ys = dataset[x].isel(sample=sample).values, dataset[y].isel(sample=sample).values
        (line,) = axis.plot(xs, ys, linewidth=1)
        axis.plot(xs[:1], ys[:1], "o", color=line.get_color(), markersize=3)
    if system is not None:
        import torch

        x_low, x_high = axis.get_xlim()
        y_low, y_high = axis.get_ylim()
        grid_x, grid_y = np.meshgrid(np.linspace(x_low, x_high, 25), np.linspace(y_low, y_high, 25))
        states = torch.as_tensor(np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1))
        with torch.no_grad():
            rates = system(torch.tensor(0.0, dtype=torch.float64), states).numpy()
        axis.streamplot(
            grid_x,
            grid_y,
            rates[:, 0].reshape(grid_x.shape),
            rates[:, 1].reshape(grid_x.shape),
            color="0.8",
            linewidth=0.6,
            density=0.8,
        )
    axis.set_xlabel(label(dataset[x], x))
    axis.set_ylabel(label(dataset[y], y))
    return axis


def frame_grid(dataset, figure, variable: str | None = None, sample: int = 0, frames: int = 6):
    """Snapshots of one field at evenly spaced times with one shared colour scale.

    2-D fields are drawn with ``origin="lower"`` and the coordinates as extent; 1-D fields as a
    space-time diagram.
    """
    variable = list(dataset.data_vars)[0] if variable is None else variable
    field = dataset[variable].isel(sample=sample)
    values = np.asarray(field.values)
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    time_label = label(dataset["time"], "time")
    if field.ndim == 2:  # (time, x): a space-time diagram
        (dim,) = field.dims[1:]
        axis = figure.add_subplot(1, 1, 1)
        coordinate = dataset[dim].values
        image = axis.imshow(
            values,
            origin="lower",
            aspect="auto",
            vmin=vmin,
            vmax=vmax,
            cmap="viridis",
            extent=(coordinate[0], coordinate[-1], dataset["time"].values[0], dataset["time"].values[-1]),
        )
        axis.set_xlabel(label(dataset[dim], dim))
        axis.set_ylabel(time_label)
        figure.colorbar(image, ax=axis, label=label(dataset[variable], variable))
        return figure
    y_dim, x_dim = field.dims[-2:]
    picks = np.unique(
        np.linspace(0, field.sizes["time"] - 1, min(frames, field.sizes["time"])).round().astype(int)
    )
    axes = figure.subplots(1, len(picks), squeeze=False)[0]
    xs, ys = dataset[x_dim].values, dataset[y_dim].values
    for axis, index in zip(axes, picks, strict=False):
        frame = values[index] if field.ndim == 3 else values[(index,) + (0,) * (field.ndim - 3)]
        image = axis.imshow(
            frame, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis", extent=(xs[0], xs[-1], ys[0], ys[-1])
        )
        axis.set_title(f"t = {dataset['time'].values[index]:.3g}")
        axis.set_xlabel(label(dataset[x_dim], x_dim))
    axes[0].set_ylabel(label(dataset[y_dim], y_dim))
    figure.colorbar(image, ax=list(axes), label=label(dataset[variable], variable))
    return figure


def _system_from_attributes(dataset):
    """The dataset's system with its (uniform) parameters, or None when unavailable or not uniform."""
    from ..systems import get_system

    try:
        cls = get_system(str(dataset.attrs.get("physml_system", "")))
    except (ValueError, TypeError, ImportError):
        return None
    values = {}
    for name in str(dataset.attrs.get("physml_parameter_names", "")).split():
        column = np.asarray(dataset[name].values, dtype=np.float64)
        if not np.all(column == column[0]):
            return None  # several environments: no single vector field to draw
        values[name] = float(column[0])
    system = cls(**values)
    return system if system.grid is None and len(system.state_variables) == 2 else None


def plot_dataset(path_or_dataset, output: str | os.PathLike, samples=None, system="auto") -> Path:
    """Draw an overview figure of a dataset and save it (PNG, PDF or SVG by suffix).

    ODE datasets (no grid dims): phase portrait of the first two variables beside their time series;
    with ``system="auto"`` the vector field of the dataset's system (found through the registry, when
    installed and when every sample shares its parameters) is drawn behind the trajectories.
    Field datasets: a frame grid (2-D) or a space-time diagram (1-D) of the first variable, sample 0.

    Examples
    --------
    >>> import tempfile
    >>> from physml.data import generate
    >>> report = generate("aphynity_pendulum", "mini", out=tempfile.mkdtemp())
    >>> plot_dataset(report.files["train"], report.directory / "train.png").name
    'train.png'
    """
    from matplotlib.figure import Figure

    dataset, opened = _open(path_or_dataset)
    try:
        names = list(dataset.data_vars)
        grid_dims = dataset[names[0]].dims[2:]
        title = dataset.attrs.get("title", "")
        if grid_dims:
            figure = Figure(figsize=(12, 3.4), layout="constrained")
            frame_grid(dataset, figure)
        else:
            rows = max(1, min(len(names), 4))
            figure = Figure(figsize=(11, 1.2 + 1.8 * rows), layout="constrained")
            grid = figure.add_gridspec(rows, 2)
            if len(names) >= 2:
                if isinstance(system, str) and system == "auto":
                    system = _system_from_attributes(dataset) if len(names) == 2 else None
                phase_portrait(dataset, figure.add_subplot(grid[:, 0]), samples=samples, system=system)
            series_axes = [figure.add_subplot(grid[row, 1]) for row in range(rows)]
            time_series(dataset, series_axes, variables=names[:rows], samples=samples)
        figure.suptitle(title)
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(output, dpi=110)
        return output
    finally:
        if opened:
            dataset.close()


__all__ = ["frame_grid", "label", "phase_portrait", "plot_dataset", "time_series"]
