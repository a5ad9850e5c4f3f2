"""Noiseless synthetic datasets with known equations, in the physml xarray schema."""

import math

import numpy as np
import pytest
import xarray as xr


def field_dataset(fields: dict, times, coordinates: dict, periodic: bool = True) -> xr.Dataset:
    """A one-sample dataset with dims (sample, time, *space) from arrays shaped (time, *space)."""
    dims = ("sample", "time", *coordinates)
    attributes = {f"physml_bc_{dim}": "periodic" if periodic else "dirichlet" for dim in coordinates}
    attributes["physml_state_variables"] = " ".join(fields)
    return xr.Dataset(
        {name: (dims, np.asarray(values)[None]) for name, values in fields.items()},
        coords={"time": np.asarray(times), **coordinates},
        attrs=attributes,
    )


def cole_hopf(x, t, viscosity, modes):
    """Exact periodic Burgers solution u = -2ν φ_x / φ from the heat solution
    φ = 3 + Σ a cos(k x + phase) exp(-ν k² t) (several modes: a one-mode solution also satisfies other,
    sparser equations, so it cannot identify Burgers')."""
    x, t = np.asarray(x)[None, :], np.asarray(t)[:, None]
    phi = 3.0 + sum(a * np.cos(k * x + p) * np.exp(-viscosity * k**2 * t) for k, a, p in modes)
    phi_x = sum(-a * k * np.sin(k * x + p) * np.exp(-viscosity * k**2 * t) for k, a, p in modes)
    return -2 * viscosity * phi_x / phi


@pytest.fixture(scope="session")
def burgers_exact():
    """Exact periodic Burgers data with ν = 0.1: u_t = -u u_x + 0.1 u_xx on 64 points, 81 times."""
    x = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    t = np.linspace(0, 2, 81)
    u = cole_hopf(x, t, 0.1, [(1, 1.0, 0.0), (2, 0.8, 1.0), (3, 0.5, 2.0)])
    return field_dataset({"u": u}, t, {"x": x})


@pytest.fixture(scope="session")
def reaction_diffusion_exact():
    """Two decaying, rotating fields: u_t = 0.05 Δu - 0.5 u + v, v_t = 0.05 Δv - u - 0.5 v (linear, exact)."""
    n = 24
    coordinate = np.linspace(0, 2 * math.pi, n, endpoint=False)
    y, x = np.meshgrid(coordinate, coordinate, indexing="ij")
    t = np.linspace(0, 1, 41)[:, None, None]
    u_fields, v_fields = [], []
    # Enough distinct wave vectors that no other combination of derivatives reproduces every mode.
    for (ky, kx), phase in [
        ((1, 0), 0.3),
        ((0, 2), 1.1),
        ((1, 1), 2.0),
        ((2, -1), 0.7),
        ((1, 3), 1.9),
        ((3, 1), 0.2),
    ]:
        decay = np.exp(-(0.5 + 0.05 * (kx**2 + ky**2)) * t)
        shape = np.sin(kx * x + ky * y + phase)
        u_fields.append(decay * np.cos(t) * shape)  # rotation by the skew-symmetric coupling
        v_fields.append(-decay * np.sin(t) * shape)
    return field_dataset(
        {"u": sum(u_fields), "v": sum(v_fields)}, t[:, 0, 0], {"y": coordinate, "x": coordinate}
    )


BURGERS_TRUTH = {"u": {"u u_x": -1.0, "u_xx": 0.1}}
REACTION_DIFFUSION_TRUTH = {
    "u": {"u_xx": 0.05, "u_yy": 0.05, "u": -0.5, "v": 1.0},
    "v": {"v_xx": 0.05, "v_yy": 0.05, "u": -1.0, "v": -0.5},
}
