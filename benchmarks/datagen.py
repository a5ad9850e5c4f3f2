"""Data-generation benchmark: the LEADS/CoDA generators against physml's batched simulators, in one process.

Three workloads, each a function that returns a dict of raw numbers, run the same trajectories (same
initial conditions, same parameters) two ways:

lv. Lotka–Volterra (LEADS: 10 environments, t in [0, 10) saved every 0.5);
gs. Gray–Scott, 32×32, dx = 1, 9-point isotropic Laplacian (LEADS: 3 environments, [0, 400) saved every 40);
ns. 2-D Navier–Stokes vorticity, 32×32 (LEADS: 4 forcings, 10 time units after the warm-up, saved every 1).

*The papers' way* is a per-trajectory generator written here after the LEADS code (``datasets/lv.py``,
``gs.py`` and ``ns.py`` of yuan-yin/LEADS, shared with CoDA): SciPy ``solve_ivp(method="RK45")`` with
SciPy's default tolerances (rtol 1e-3, atol 1e-6, which LEADS leaves in place) and a NumPy right-hand side,
one trajectory at a time, for Lotka–Volterra and Gray–Scott; and, for Navier–Stokes, the pseudo-spectral
Crank–Nicolson loop of Li et al.'s FNO code (torch, float32, dt = 1e-3), operation for operation, one
trajectory at a time.  *physml's way* is one batched ``system.simulate(...)`` call over all trajectories:
adaptive ``physml.solve_ode`` methods at matched accuracy for Lotka–Volterra and Gray–Scott, the batched
``fno`` scheme for Navier–Stokes.

Each variant runs once as a warm-up, then ``repeats`` round-robin rounds time every variant once
(``benchmarks/solvers.py``'s protocol and helpers); medians are reported, per trajectory.  The papers' way
is timed on a subset of the trajectories (every trajectory for Lotka–Volterra) and divided by the subset
size.  Errors are measured against float64 references: SciPy DOP853 at rtol 1e-10 / atol 1e-12 for
Lotka–Volterra and Gray–Scott, physml's second-order ``cnab2`` scheme at dt = 2.5e-4 for Navier–Stokes.
All raw numbers go to a JSON file; the markdown report is rendered from that JSON only.

Run from the repository root on a quiet machine (about 3 minutes on the project's 2-core CPU, two thirds of
it in the Navier–Stokes workload)::

    OMP_NUM_THREADS=1 python benchmarks/datagen.py --threads 1 --repeats 3

``--quick`` shrinks every workload to a smoke test of well under a minute (write it elsewhere with
``--output``); ``--from-json`` re-renders the markdown from an existing JSON file without running anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this file belongs to (its git SHA is the one recorded), not another install.
sys.path.insert(0, str(REPOSITORY_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from benchmarks.solvers import (  # noqa: E402
    Variant,
    benchmark_parser,
    format_error,
    format_load,
    format_number,
    format_ratio,
    format_seconds,
    git_revision,
    log,
    machine_description,
    markdown_table,
    parse_benchmark_arguments,
    time_summary,
    time_variants,
    write_report,
)
from simulators.lotka_volterra import LotkaVolterra  # noqa: E402
from simulators.navier_stokes import (  # noqa: E402
    NavierStokes2D,
    WarmUp,
    paper_forcing,
)
from simulators.reaction_diffusion import GrayScott  # noqa: E402

DEFAULT_OUTPUT = REPOSITORY_ROOT / "benchmarks" / "results" / "datagen.md"
WORKLOADS = ("lv", "gs", "ns")
#: Minimum number of timed runs per variant in a full (non ``--quick``) run.
MINIMUM_REPEATS = 3
SCHEMA_VERSION = 1
#: SciPy's default tolerances of ``solve_ivp``; the LEADS and CoDA generators do not change them.
PAPER_RTOL, PAPER_ATOL = 1e-3, 1e-6
#: Per-trajectory speed-up physml must reach (papers' time per trajectory / physml's), with matched accuracy.
TARGETS = {"gs": 20.0, "ns": 20.0}


# ============================================================================ parameters


def workload_parameters(quick: bool) -> dict:
    """All workload parameters, as written into the JSON file.

    Parameters
    ----------
    quick : bool
        Shrink every workload to a smoke test (fewer trajectories, shorter horizons).

    Returns
    -------
    dict
        One dict of parameters per workload key ``"lv"``, ``"gs"``, ``"ns"``.

    Examples
    --------
    >>> workload_parameters(quick=False)["gs"]["save_interval"]
    40.0
    """
    # Matched accuracy (see the notes of each workload): the papers' tolerance test applied to every
    # trajectory (worst-trajectory RMS norm), with tolerances ten times tighter than the papers' as a margin
    # for the different step sequences; float32, the precision the papers store their data in.
    physml_adaptive = {"rtol": 1e-4, "atol": 1e-7, "norm": "worst_trajectory_rms", "dtype": "float32",
                       "context_dtype": "float64"}
    parameters = {
        "lv": {
            "description": "Lotka–Volterra, LEADS environments",
            "environments": "LotkaVolterra.LEADS_ENVIRONMENTS (10)",
            "trajectories_per_environment": 32,
            "paper_trajectories_per_environment": 32,
            "reference_trajectories_per_environment": 32,
            "reference_check_trajectories": 2,
            "horizon": 10.0,
            "save_interval": 0.5,
            "seed": 0,
            # Accuracy-bound: a fifth-order pair pays; dopri5 is the tableau of SciPy's RK45.
            "physml": {"method": "dopri5", **physml_adaptive},
            "paper": {"method": "RK45", "rtol": PAPER_RTOL, "atol": PAPER_ATOL,
                      "rhs": "NumPy, per trajectory", "stored_dtype": "float32"},
            "reference": {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12, "check_rtol": 1e-12,
                          "check_atol": 1e-14, "dtype": "float64"},
        },
        "gs": {
            "description": "Gray–Scott 32×32, LEADS environments",
            "environments": "GrayScott.LEADS_ENVIRONMENTS (3)",
            "grid_size": 32,
            "spacing": 1.0,
            "trajectories_per_environment": 32,
            "paper_trajectories_per_environment": 8,
            "reference_trajectories_per_environment": 2,
            "reference_check_trajectories": 1,
            "horizon": 400.0,
            "save_interval": 40.0,
            "seed": 0,
            "rhs_calls_per_round": 50,
            # Stability-bound (explicit steps are capped by the diffusion eigenvalues, not by accuracy):
            # bosh3 covers more time per evaluation there than dopri5 (measured: ~500 against ~760).
            "physml": {"method": "bosh3", **physml_adaptive},
            "paper": {"method": "RK45", "rtol": PAPER_RTOL, "atol": PAPER_ATOL,
                      "rhs": "NumPy, np.roll 9-point Laplacian, per trajectory", "stored_dtype": "float32"},
            "reference": {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12, "check_rtol": 1e-12,
                          "check_atol": 1e-14, "dtype": "float64"},
        },
        "ns": {
            "description": "Navier–Stokes 32×32, LEADS forcings f0–f3, nu = 1e-3",
            "environments": "NavierStokes2D.LEADS_ENVIRONMENTS (4)",
            "grid_size": 32,
            "trajectories_per_environment": 8,
            "paper_trajectories_per_environment": 1,
            "horizon": 10.0,
            "save_interval": 1.0,
            "time_step": 1e-3,
            "seed": 0,
            "warm_up": {"duration": 28.5, "forcing": "f0", "viscosity": 1e-3, "papers_run_length": 30.0},
            # float64 for physml here: float32 rounding over 10 000 steps doubled its error in an earlier
            # run, and the batched float64 step costs the same time (float32 stays as a context row).
            "physml": {"method": "fno", "dtype": "float64", "context_dtype": "float32"},
            "paper": {"scheme": "FNO-code Crank–Nicolson loop (torch, one trajectory)", "dtype": "float32"},
            "reference": {"method": "cnab2", "step_size": 2.5e-4, "check_step_size": 5e-4,
                          "dtype": "float64"},
        },
    }
    if quick:
        parameters["lv"].update(trajectories_per_environment=2, paper_trajectories_per_environment=2,
                                reference_trajectories_per_environment=2)
        parameters["gs"].update(trajectories_per_environment=2, paper_trajectories_per_environment=1,
                                reference_trajectories_per_environment=1, horizon=120.0,
                                rhs_calls_per_round=10)
        parameters["ns"].update(trajectories_per_environment=2, paper_trajectories_per_environment=1,
                                horizon=1.0, save_interval=0.25)
        parameters["ns"]["warm_up"] = {"duration": 0.5, "forcing": "f0", "viscosity": 1e-3,
                                       "papers_run_length": 0.5}
    return parameters


# ============================================================================ shared helpers


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def worst_trajectory_rms_norm(scaled_error: torch.Tensor) -> torch.Tensor:
    """Largest per-trajectory RMS of a scaled error estimate (first dimension = trajectories).

    SciPy accepts a step of one trajectory when the RMS of its scaled error is at most 1.  Used as the
    ``norm`` of a joint batched step, this accepts a step only when *every* trajectory passes that same test,
    whereas the default RMS over the whole batch lets one trajectory's error hide among the others'.

    Examples
    --------
    >>> float(worst_trajectory_rms_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]])) ** 2)
    12.5
    """
    return scaled_error.square().flatten(1).mean(dim=1).max().sqrt()


NORMS = {"worst_trajectory_rms": worst_trajectory_rms_norm}


def float32_representable(tensor: torch.Tensor) -> torch.Tensor:
    """Round through float32 so that float32 and float64 runs start from exactly the same numbers."""
    return tensor.to(torch.float32).to(torch.float64)


def environment_major(trajectories_per_environment: int, environment_count: int, chosen: int) -> list[int]:
    """Batch indices of the first ``chosen`` trajectories of every environment (member ``e * n + i``).

    Examples
    --------
    >>> environment_major(4, 2, 2)
    [0, 1, 4, 5]
    """
    return [environment * trajectories_per_environment + index
            for environment in range(environment_count) for index in range(chosen)]


def error_summary(states: dict[int, np.ndarray], reference: dict[int, np.ndarray]) -> dict:
    """Errors of trajectories against their references, both ``{member: array (frames, ...)}``.

    Returns
    -------
    dict
        ``max_abs_worst`` (largest absolute error over every frame, component and trajectory),
        ``max_abs_median`` (median over trajectories of each one's largest absolute error),
        ``relative_rms`` (RMS of the error over RMS of the reference, all trajectories pooled) and
        ``trajectories`` (how many were compared).

    Examples
    --------
    >>> summary = error_summary({0: np.array([1.0, 2.0])}, {0: np.array([1.0, 2.5])})
    >>> summary["max_abs_worst"], summary["trajectories"]
    (0.5, 1)
    """
    per_trajectory, squared_error, squared_reference = [], 0.0, 0.0
    for member, expected in reference.items():
        difference = np.asarray(states[member], dtype=np.float64) - expected
        per_trajectory.append(float(np.abs(difference).max()))
        squared_error += float(np.square(difference).sum())
        squared_reference += float(np.square(expected).sum())
    return {
        "max_abs_worst": max(per_trajectory),
        "max_abs_median": statistics.median(per_trajectory),
        "relative_rms": math.sqrt(squared_error / squared_reference) if squared_reference > 0 else None,
        "trajectories": len(per_trajectory),
    }


def per_trajectory_row(variant: Variant, timing: dict, trajectories: int, **fields) -> dict:
    """A table row: identity, whole-run timing summary and the per-trajectory medians it implies."""
    summary = time_summary(timing["times_s"])
    return {
        "key": variant.key,
        "label": variant.label,
        "library": variant.library,
        "role": variant.role,
        "trajectories": trajectories,
        "warmup_s": timing["warmup_s"],
        **summary,
        "per_trajectory_median_s": summary["median_s"] / trajectories,
        "per_trajectory_min_s": summary["min_s"] / trajectories,
        **fields,
    }


def attach_speedups(rows: list[dict]) -> None:
    """Add ``speedup_of_physml`` = this row's per-trajectory median / physml's (above 1: physml is faster)."""
    physml = next(row for row in rows if row["role"] == "physml")
    for row in rows:
        row["speedup_of_physml"] = row["per_trajectory_median_s"] / physml["per_trajectory_median_s"]


def accuracy_match(rows: list[dict], allowance: float = 1.0) -> dict:
    """Whether physml's errors are no worse than the papers' (worst trajectory and median trajectory).

    ``allowance`` > 1 tolerates that factor; it is used only where both ways run the same fixed-step scheme.
    """
    paper = next(row for row in rows if row["role"] == "paper")["errors"]
    physml = next(row for row in rows if row["role"] == "physml")["errors"]
    checks = {quantity: physml[quantity] <= allowance * paper[quantity]
              for quantity in ("max_abs_worst", "max_abs_median")}
    return {"matched": all(checks.values()), "checks": checks, "allowance": allowance,
            "paper": {quantity: paper[quantity] for quantity in checks},
            "physml": {quantity: physml[quantity] for quantity in checks}}


def median_call_time(function, calls: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``calls`` back-to-back calls of ``function`` (seconds)."""
    function()
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        means.append((time.perf_counter() - start) / calls)
    return statistics.median(means)


# ============================================================================ the papers' generators


def lotka_volterra_rhs(t: float, state: np.ndarray, parameters: dict) -> np.ndarray:
    """Lotka–Volterra right-hand side as the LEADS generator writes it (dict look-ups, a fresh array).

    Examples
    --------
    >>> lotka_volterra_rhs(0.0, np.array([1.0, 2.0]), {"alpha": 1, "beta": 1, "gamma": 1, "delta": 1})
    array([-1.,  0.])
    """
    alpha, beta = parameters["alpha"], parameters["beta"]
    gamma, delta = parameters["gamma"], parameters["delta"]
    rate = np.zeros(2)
    rate[0] = alpha * state[0] - beta * state[0] * state[1]
    rate[1] = delta * state[0] * state[1] - gamma * state[1]
    return rate


def isotropic_laplacian_numpy(field: np.ndarray, spacing: float) -> np.ndarray:
    """Periodic 9-point isotropic Laplacian (weights −3, 1/2, 1/4) from eight ``np.roll`` calls, as in LEADS.

    Examples
    --------
    >>> float(isotropic_laplacian_numpy(np.ones((4, 4)), 1.0).max())
    0.0
    """
    edges = (np.roll(field, (1, 0), (0, 1)) + np.roll(field, (-1, 0), (0, 1))
             + np.roll(field, (0, 1), (0, 1)) + np.roll(field, (0, -1), (0, 1)))
    corners = (np.roll(field, (1, 1), (0, 1)) + np.roll(field, (1, -1), (0, 1))
               + np.roll(field, (-1, 1), (0, 1)) + np.roll(field, (-1, -1), (0, 1)))
    return (-3 * field + 0.5 * edges + 0.25 * corners) / spacing**2


def gray_scott_rhs(t: float, state: np.ndarray, parameters: dict, size: int, spacing: float) -> np.ndarray:
    """Gray–Scott right-hand side on the flat vector ``[u.ravel(), v.ravel()]``, as LEADS writes it.

    Examples
    --------
    >>> state = np.concatenate([np.ones(16), np.zeros(16)])
    >>> parameters = {"diffusion_u": 0.2, "diffusion_v": 0.1, "feed": 0.04, "kill": 0.06}
    >>> # (u, v) = (1, 0) everywhere is a fixed point.
    >>> float(np.abs(gray_scott_rhs(0.0, state, parameters, 4, 1.0)).max())
    0.0
    """
    u, v = (part.reshape(size, size) for part in np.split(state, 2))
    feed, kill = parameters["feed"], parameters["kill"]
    conversion = u * v**2
    du = parameters["diffusion_u"] * isotropic_laplacian_numpy(u, spacing) - conversion + feed * (1.0 - u)
    dv = parameters["diffusion_v"] * isotropic_laplacian_numpy(v, spacing) + conversion - (feed + kill) * v
    return np.concatenate((du.reshape(size * size), dv.reshape(size * size)))


def fno_code_trajectory(initial_vorticity: torch.Tensor, forcing: torch.Tensor, viscosity: float,
                        duration: float, time_step: float, record_count: int) -> torch.Tensor:
    """One Navier–Stokes trajectory by the loop of Li et al.'s FNO code, as LEADS and CoDA run it.

    Operation for operation the same work per step as ``navier_stokes_2d`` in LEADS' ``datasets/ns.py``:
    four complex inverse FFTs (two velocity components, two vorticity derivatives, each built by copying the
    spectrum and swapping real and imaginary parts), one forward FFT of the advection term, 2/3 dealiasing
    and the Crank–Nicolson update; float32 throughout, one trajectory per call.  It runs
    ``ceil(duration / time_step)`` steps and records ``record_count`` states, every
    ``floor(steps / record_count)`` steps from step 0 (so the final state is computed but not recorded,
    as in the original).  Arrays here are ``[y, x]`` (physml's orientation); the original's are ``[x, y]``
    with the wavenumber roles swapped to match, which is the same computation transposed.

    Parameters
    ----------
    initial_vorticity, forcing : torch.Tensor
        Fields ``(n, n)`` in float32.
    viscosity, duration, time_step : float
        ν, the time span and the step.
    record_count : int
        Number of recorded states.

    Returns
    -------
    torch.Tensor
        Recorded states, shape ``(n, n, record_count, 1)`` (the original's layout).

    Examples
    --------
    >>> states = fno_code_trajectory(torch.zeros(8, 8), torch.zeros(8, 8), 1e-3, 0.01, 1e-3, 2)
    >>> states.shape, float(states.abs().max())
    (torch.Size([8, 8, 2, 1]), 0.0)
    """
    size = initial_vorticity.shape[-1]
    k_max = math.floor(size / 2.0)
    steps = math.ceil(duration / time_step)
    vorticity_hat = torch.fft.fftn(initial_vorticity, (size, size))
    forcing_hat = torch.fft.fftn(forcing, (size, size))
    record_every = math.floor(steps / record_count)
    # Integer wavenumbers in FFT order; k_x varies along x (the last axis), k_y along y.
    k_x = torch.cat((torch.arange(start=0, end=k_max, step=1),
                     torch.arange(start=-k_max, end=0, step=1)), 0).repeat(size, 1)
    k_y = k_x.transpose(0, 1)
    negative_laplacian = 4 * (math.pi**2) * (k_x**2 + k_y**2)
    negative_laplacian[0, 0] = 1.0
    dealias = torch.unsqueeze(torch.logical_and(torch.abs(k_x) <= (2.0 / 3.0) * k_max,
                                                torch.abs(k_y) <= (2.0 / 3.0) * k_max).float(), 0)
    recorded = torch.zeros(*initial_vorticity.size(), record_count, 1, dtype=torch.float)
    recorded_times = torch.zeros(record_count)
    count, current_time = 0, 0.0
    for step in range(steps):
        if step % record_every == 0:
            recorded[..., count, 0] = torch.fft.ifftn(vorticity_hat, (size, size)).real
            recorded_times[count] = current_time
            count += 1
        stream_hat = vorticity_hat.clone()
        stream_hat = stream_hat / negative_laplacian
        # u = ∂ψ/∂y: multiply by 2πi k_y by swapping real and imaginary parts (as the original does).
        velocity_x = stream_hat.clone()
        real_part = velocity_x.real.clone()
        velocity_x.real = -2 * math.pi * k_y * velocity_x.imag
        velocity_x.imag = 2 * math.pi * k_y * real_part
        velocity_x = torch.fft.ifftn(velocity_x, (size, size))
        # v = −∂ψ/∂x.
        velocity_y = stream_hat.clone()
        real_part = velocity_y.real.clone()
        velocity_y.real = 2 * math.pi * k_x * velocity_y.imag
        velocity_y.imag = -2 * math.pi * k_x * real_part
        velocity_y = torch.fft.ifftn(velocity_y, (size, size))
        vorticity_x = vorticity_hat.clone()
        real_part = vorticity_x.real.clone()
        vorticity_x.real = -2 * math.pi * k_x * vorticity_x.imag
        vorticity_x.imag = 2 * math.pi * k_x * real_part
        vorticity_x = torch.fft.ifftn(vorticity_x, (size, size))
        vorticity_y = vorticity_hat.clone()
        real_part = vorticity_y.real.clone()
        vorticity_y.real = -2 * math.pi * k_y * vorticity_y.imag
        vorticity_y.imag = 2 * math.pi * k_y * real_part
        vorticity_y = torch.fft.ifftn(vorticity_y, (size, size))
        advection_hat = torch.fft.fftn(velocity_x * vorticity_x + velocity_y * vorticity_y, (size, size))
        advection_hat = dealias * advection_hat
        vorticity_hat = ((-time_step * advection_hat + time_step * forcing_hat
                          + (1.0 - 0.5 * time_step * viscosity * negative_laplacian) * vorticity_hat)
                         / (1.0 + 0.5 * time_step * viscosity * negative_laplacian))
        current_time += time_step
    return recorded


def lean_single_trajectory(initial_vorticity: torch.Tensor, forcing: torch.Tensor, viscosity: float,
                           duration: float, time_step: float, record_count: int) -> torch.Tensor:
    """The same scheme as :func:`fno_code_trajectory`, one trajectory, without its per-step copies.

    Multipliers and Crank–Nicolson factors are computed once; each step is four inverse and one forward
    complex FFT plus a few fused-size element-wise products.  A context row: it separates what the
    papers' loop loses to its copies from what physml gains by batching.  Same recording rule and layout.

    Examples
    --------
    >>> lean_single_trajectory(torch.zeros(8, 8), torch.zeros(8, 8), 1e-3, 0.01, 1e-3, 2).shape
    torch.Size([8, 8, 2, 1])
    """
    size = initial_vorticity.shape[-1]
    k_max = size // 2
    steps = math.ceil(duration / time_step)
    record_every = math.floor(steps / record_count)
    wavenumbers = torch.cat((torch.arange(0, k_max), torch.arange(-k_max, 0))).to(torch.float32)
    k_x = wavenumbers.view(1, -1).expand(size, size)
    k_y = wavenumbers.view(-1, 1).expand(size, size)
    negative_laplacian = 4 * math.pi**2 * (k_x**2 + k_y**2)
    negative_laplacian[0, 0] = 1.0
    dealias = ((k_x.abs() <= 2 / 3 * k_max) & (k_y.abs() <= 2 / 3 * k_max)).to(torch.float32)
    derivative_x, derivative_y = 2j * math.pi * k_x, 2j * math.pi * k_y
    half = 0.5 * time_step * viscosity * negative_laplacian
    amplification, gain = (1.0 - half) / (1.0 + half), time_step / (1.0 + half)
    inverse_laplacian = 1.0 / negative_laplacian
    vorticity_hat = torch.fft.fft2(initial_vorticity)
    forcing_increment = gain * torch.fft.fft2(forcing)
    masked_gain = gain * dealias
    recorded = torch.zeros(size, size, record_count, 1, dtype=torch.float32)
    count = 0
    for step in range(steps):
        if step % record_every == 0:
            recorded[..., count, 0] = torch.fft.ifft2(vorticity_hat).real
            count += 1
        stream_hat = vorticity_hat * inverse_laplacian
        # u ∂ω/∂x + v ∂ω/∂y with u = ∂ψ/∂y and v = −∂ψ/∂x.
        advection = (torch.fft.ifft2(derivative_y * stream_hat)
                     * torch.fft.ifft2(derivative_x * vorticity_hat)
                     - torch.fft.ifft2(derivative_x * stream_hat)
                     * torch.fft.ifft2(derivative_y * vorticity_hat))
        vorticity_hat = (amplification * vorticity_hat - masked_gain * torch.fft.fft2(advection)
                         + forcing_increment)
    return recorded


# ============================================================================ workloads


def adaptive_physml_variants(system_batched, single_systems, initial, times, frames, members, settings,
                             trajectories_label: str) -> list[Variant]:
    """physml's batched run (float32, the compared row), its float64 twin and one-trajectory-per-call runs."""
    norm = NORMS[settings["norm"]]
    solver = {"method": settings["method"], "rtol": settings["rtol"], "atol": settings["atol"],
              "options": {"norm": norm}}

    def batched(dtype):
        def run():
            with torch.no_grad():
                solution = system_batched.simulate(initial.to(dtype), times, **solver)
            return {"states": solution.ys[:frames], "stats": dict(solution.stats), "status": solution.status}
        return run

    def one_at_a_time():
        states, evaluations, statuses = {}, [], set()
        dtype = DTYPES[settings["dtype"]]
        with torch.no_grad():
            for member in members:
                solution = single_systems[member].simulate(initial[member:member + 1].to(dtype), times,
                                                           **solver)
                states[member] = solution.ys[:frames, 0]
                evaluations.append(solution.stats["nfe"])
                statuses.add(solution.status)
        return {"states": states, "nfe": evaluations, "status": ",".join(sorted(statuses))}

    method = (f"{settings['method']} rtol {settings['rtol']:g} atol {settings['atol']:g}, "
              "worst-trajectory norm")
    return [
        Variant("physml_batched", f"physml: one batched simulate ({method}), {settings['dtype']}, "
                f"{trajectories_label}", "physml", batched(DTYPES[settings["dtype"]]), role="physml"),
        Variant("physml_batched_context_dtype", f"physml: the same in {settings['context_dtype']}", "physml",
                batched(DTYPES[settings["context_dtype"]]), role="context"),
        Variant("physml_one_at_a_time", f"physml: one simulate per trajectory ({settings['dtype']}, same "
                "settings), papers' subset", "physml", one_at_a_time, role="context"),
    ]


def batched_states(outcome: dict, members: list[int]) -> dict[int, np.ndarray]:
    """``{member: (frames, ...) float64 array}`` from a batched outcome ``(frames, batch, ...)``."""
    states = outcome["states"]
    return {member: states[:, member].to(torch.float64).cpu().numpy() for member in members}


def dictionary_states(outcome: dict) -> dict[int, np.ndarray]:
    return {member: torch.as_tensor(state).to(torch.float64).cpu().numpy()
            for member, state in outcome["states"].items()}


def workload_lotka_volterra(parameters: dict, repeats: int) -> dict:
    """Lotka–Volterra: SciPy RK45 per trajectory against one batched physml solve.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters(...)["lv"]``.
    repeats : int
        Timed rounds after the warm-up.

    Returns
    -------
    dict
        ``title``, ``parameters``, ``rows``, ``accuracy``, ``reference`` and ``notes``.
    """
    environments = LotkaVolterra.LEADS_ENVIRONMENTS
    per_environment = parameters["trajectories_per_environment"]
    names = ("alpha", "beta", "gamma", "delta")
    member_parameters = [environment for environment in environments for _ in range(per_environment)]
    system = LotkaVolterra(**{name: [values[name] for values in member_parameters] for name in names})
    generator = torch.Generator().manual_seed(parameters["seed"])
    # LEADS reuses initial condition i in every environment.
    initial = float32_representable(system.sample_initial_conditions(per_environment, generator))
    initial = initial.repeat(len(environments), 1)
    initial_numpy = initial.numpy()
    horizon, save_interval = parameters["horizon"], parameters["save_interval"]
    save_times = np.arange(0.0, horizon, save_interval)  # the papers' t_eval; the solve still ends at horizon
    frames = len(save_times)
    times = torch.tensor([*save_times.tolist(), horizon], dtype=torch.float64)
    paper_members = environment_major(per_environment, len(environments),
                                      parameters["paper_trajectories_per_environment"])
    reference_members = environment_major(per_environment, len(environments),
                                          parameters["reference_trajectories_per_environment"])
    paper_settings = parameters["paper"]

    def paper_run():
        states, evaluations = {}, []
        for member in paper_members:
            rhs = partial(lotka_volterra_rhs, parameters=member_parameters[member])
            solution = solve_ivp(rhs, (0.0, horizon), initial_numpy[member], method="RK45", t_eval=save_times,
                                 rtol=paper_settings["rtol"], atol=paper_settings["atol"])
            states[member] = solution.y.T.astype(np.float32)  # the papers store float32
            evaluations.append(solution.nfev)
        return {"states": states, "nfe": evaluations}

    single_systems = {member: LotkaVolterra(**{name: member_parameters[member][name] for name in names})
                      for member in paper_members}
    variants = [Variant("paper", "papers' way: SciPy RK45 (rtol 1e-3, atol 1e-6), NumPy RHS, one "
                        "trajectory at a time", "scipy", paper_run, role="paper")]
    variants += adaptive_physml_variants(system, single_systems, initial, times, frames, paper_members,
                                         parameters["physml"], f"all {initial.shape[0]} trajectories")

    log(f"[lv] reference: DOP853 on {len(reference_members)} trajectories")
    reference, reference_seconds = scipy_reference(
        lambda member: partial(lotka_volterra_rhs, parameters=member_parameters[member]),
        lambda member: initial_numpy[member], reference_members, horizon, save_times, parameters["reference"],
        parameters["reference_check_trajectories"], reshape=lambda y: y.T)
    timings = time_variants("lv", variants, repeats)
    rows = rows_from_timings(variants, timings, initial.shape[0], paper_members, reference)
    notes = [
        f"{len(environments)} LEADS environments × {per_environment} trajectories = {initial.shape[0]} "
        f"trajectories; initial conditions from physml's sampler (seed {parameters['seed']}, shared across "
        "environments as in LEADS), rounded to float32 so every run starts from the same numbers.",
        f"The papers' way is timed on {len(paper_members)} trajectories and physml's batched run on all "
        f"{initial.shape[0]}; times per trajectory are run times divided by those counts.",
        f"Saved times: {frames} (t = 0, {save_interval:g}, …, {save_times[-1]:g}, the papers' t_eval); every "
        f"solve runs to t = {horizon:g} like SciPy's t_span.",
        *reference["notes"],
    ]
    return {"title": "lv. Lotka–Volterra (LEADS environments)", "parameters": parameters, "rows": rows,
            "accuracy": accuracy_match(rows),
            "reference": reference["summary"] | {"wall_time_s": reference_seconds}, "notes": notes}


def scipy_reference(rhs_for, initial_for, members, horizon, save_times, settings, check_count, reshape):
    """Tight float64 DOP853 solutions of ``members``, plus a tighter check of the first ``check_count``."""
    start = time.perf_counter()
    solutions = {}
    evaluations = []
    for member in members:
        start_state = np.asarray(initial_for(member), dtype=np.float64)
        solution = solve_ivp(rhs_for(member), (0.0, horizon), start_state, method=settings["method"],
                             t_eval=save_times, rtol=settings["rtol"], atol=settings["atol"])
        solutions[member] = reshape(solution.y)
        evaluations.append(solution.nfev)
    differences = []
    for member in members[:check_count]:
        check = solve_ivp(rhs_for(member), (0.0, horizon), np.asarray(initial_for(member), dtype=np.float64),
                          method=settings["method"], t_eval=save_times, rtol=settings["check_rtol"],
                          atol=settings["check_atol"])
        differences.append(float(np.abs(reshape(check.y) - solutions[member]).max()))
    seconds = time.perf_counter() - start
    summary = {"trajectories": len(members), "mean_nfe": statistics.fmean(evaluations),
               "check_trajectories": len(differences), "check_max_abs_difference": max(differences)}
    notes = [f"Reference: SciPy {settings['method']} at rtol {settings['rtol']:g}, atol {settings['atol']:g} "
             f"(float64) on {len(members)} trajectories, {summary['mean_nfe']:.0f} evaluations each on "
             f"average; against rtol {settings['check_rtol']:g}, atol {settings['check_atol']:g} on "
             f"{len(differences)} of them it differs by at most {max(differences):.1e}, far below the errors "
             "compared."]
    return {"states": solutions, "summary": summary, "notes": notes}, seconds


def rows_from_timings(variants, timings, batch, paper_members, reference) -> list[dict]:
    """Table rows with per-trajectory times, evaluation counts and errors against the reference."""
    rows = []
    for variant in variants:
        timing = timings[variant.key]
        outcome = timing["outcome"]
        if "stats" in outcome:  # one batched solve
            states = batched_states(outcome, list(reference["states"]))
            stats = outcome["stats"]
            fields = {"batched": True, "nfe_per_call": int(stats["nfe"]),
                      "steps": f"{stats['n_accepted']} acc. + {stats['n_rejected']} rej. (joint)",
                      "status": outcome["status"]}
            trajectories = batch
        else:  # one call per trajectory
            states = dictionary_states(outcome)
            evaluations = outcome["nfe"]
            fields = {"batched": False, "nfe_per_call": statistics.fmean(evaluations),
                      "steps": f"{min(evaluations)}–{max(evaluations)} evaluations per trajectory",
                      "status": outcome.get("status", "success")}
            trajectories = len(paper_members)
        fields["errors"] = error_summary(states, reference["states"])
        rows.append(per_trajectory_row(variant, timing, trajectories, **fields))
    attach_speedups(rows)
    return rows


def workload_gray_scott(parameters: dict, repeats: int) -> dict:
    """Gray–Scott: SciPy RK45 with a NumPy right-hand side per trajectory against one batched physml solve.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters(...)["gs"]``.
    repeats : int
        Timed rounds after the warm-up.

    Returns
    -------
    dict
        As :func:`workload_lotka_volterra`, plus ``right_hand_side``: the cost of one right-hand-side call.
    """
    environments = GrayScott.LEADS_ENVIRONMENTS
    per_environment = parameters["trajectories_per_environment"]
    size, spacing = parameters["grid_size"], parameters["spacing"]
    defaults = {"diffusion_u": 0.2097, "diffusion_v": 0.105}
    member_parameters = [defaults | environment
                         for environment in environments for _ in range(per_environment)]
    system = GrayScott(grid_size=size, spacing=spacing,
                       **{name: [values[name] for values in member_parameters]
                          for name in ("diffusion_u", "diffusion_v", "feed", "kill")})
    generator = torch.Generator().manual_seed(parameters["seed"])
    initial = float32_representable(system.sample_initial_conditions(per_environment, generator))
    initial = initial.repeat(len(environments), 1, 1, 1)
    # The papers' flat layout [u.ravel(), v.ravel()] is the row-major flattening of (2, n, n).
    initial_flat = initial.reshape(initial.shape[0], -1).numpy()
    horizon, save_interval = parameters["horizon"], parameters["save_interval"]
    save_times = np.arange(0.0, horizon, save_interval)
    frames = len(save_times)
    times = torch.tensor([*save_times.tolist(), horizon], dtype=torch.float64)
    paper_members = environment_major(per_environment, len(environments),
                                      parameters["paper_trajectories_per_environment"])
    reference_members = environment_major(per_environment, len(environments),
                                          parameters["reference_trajectories_per_environment"])
    paper_settings = parameters["paper"]

    def rhs_for(member):
        return partial(gray_scott_rhs, parameters=member_parameters[member], size=size, spacing=spacing)

    def to_frames(flat_solution):  # (2 n², frames) -> (frames, 2, n, n)
        return flat_solution.T.reshape(-1, 2, size, size)

    def paper_run():
        states, evaluations = {}, []
        for member in paper_members:
            solution = solve_ivp(rhs_for(member), (0.0, horizon), initial_flat[member], method="RK45",
                                 t_eval=save_times, rtol=paper_settings["rtol"], atol=paper_settings["atol"])
            states[member] = to_frames(solution.y).astype(np.float32)  # the papers store float32
            evaluations.append(solution.nfev)
        return {"states": states, "nfe": evaluations}

    single_systems = {member: GrayScott(grid_size=size, spacing=spacing, **member_parameters[member])
                      for member in paper_members}
    variants = [Variant("paper", "papers' way: SciPy RK45 (rtol 1e-3, atol 1e-6), NumPy RHS, one "
                        "trajectory at a time", "scipy", paper_run, role="paper")]
    variants += adaptive_physml_variants(system, single_systems, initial, times, frames, paper_members,
                                         parameters["physml"], f"all {initial.shape[0]} trajectories")

    log(f"[gs] reference: DOP853 on {len(reference_members)} trajectories")
    reference, reference_seconds = scipy_reference(
        rhs_for, lambda member: initial_flat[member], reference_members, horizon, save_times,
        parameters["reference"], parameters["reference_check_trajectories"], reshape=to_frames)
    log("[gs] cost of one right-hand-side call")
    right_hand_side = gray_scott_rhs_costs(system, initial, initial_flat[0], rhs_for(0), parameters)
    timings = time_variants("gs", variants, repeats)
    rows = rows_from_timings(variants, timings, initial.shape[0], paper_members, reference)
    notes = [
        f"{len(environments)} LEADS environments × {per_environment} trajectories = {initial.shape[0]} "
        f"trajectories on a {size}×{size} grid (dx = {spacing:g}); initial conditions from physml's sampler "
        f"(3 squares of side {system.square_size}, seed {parameters['seed']}, shared across environments as "
        "in LEADS).",
        f"The papers' way is timed on {len(paper_members)} trajectories (the first "
        f"{parameters['paper_trajectories_per_environment']} of each environment) and physml's batched run "
        f"on all {initial.shape[0]}; times per trajectory are run times divided by those counts.",
        f"Saved times: {frames} (t = 0, {save_interval:g}, …, {save_times[-1]:g}); every solve runs to "
        f"t = {horizon:g}.",
        "One right-hand-side call: NumPy (one trajectory) "
        f"{format_time(right_hand_side['numpy_per_call_s'])}; physml on the batch of {initial.shape[0]} "
        f"{format_time(right_hand_side['physml_per_call_s']['float32'])} in float32 "
        f"({format_time(right_hand_side['physml_per_trajectory_s']['float32'])} per trajectory) and "
        f"{format_time(right_hand_side['physml_per_call_s']['float64'])} in float64.",
        *reference["notes"],
    ]
    return {"title": "gs. Gray–Scott 32×32 (LEADS environments)", "parameters": parameters, "rows": rows,
            "accuracy": accuracy_match(rows),
            "reference": reference["summary"] | {"wall_time_s": reference_seconds},
            "right_hand_side": right_hand_side, "notes": notes}


def gray_scott_rhs_costs(system, initial, flat_state, numpy_rhs, parameters) -> dict:
    """Time one right-hand-side call: the NumPy one on one trajectory, physml's on the whole batch."""
    calls = parameters["rhs_calls_per_round"]
    numpy_seconds = median_call_time(lambda: numpy_rhs(0.0, flat_state), calls)
    per_call, per_trajectory, laplacian = {}, {}, {}
    with torch.no_grad():
        for name in ("float32", "float64"):
            state = initial.to(DTYPES[name])
            t = torch.zeros((), dtype=state.dtype)
            per_call[name] = median_call_time(partial(system, t, state), max(1, calls // 5))
            per_trajectory[name] = per_call[name] / initial.shape[0]
            laplacian[name] = median_call_time(partial(system.laplacian, state), max(1, calls // 5))
    return {"numpy_per_call_s": numpy_seconds, "physml_per_call_s": per_call,
            "physml_per_trajectory_s": per_trajectory, "physml_laplacian_per_call_s": laplacian,
            "batch": initial.shape[0]}


#: Short names of the Navier–Stokes rows for the per-step note.
STEP_NAMES = {"paper": "papers' loop", "physml_batched": "physml batched (float32)",
              "physml_batched_context_dtype": "physml batched (float64)",
              "physml_one_at_a_time": "physml one trajectory per call",
              "lean_loop": "lean single-trajectory loop"}


def workload_navier_stokes(parameters: dict, repeats: int) -> dict:
    """Navier–Stokes: the FNO-code loop per trajectory against one batched physml ``fno`` run.

    Both start from the same warmed-up states (physml's batched warm-up, timed separately and not part of
    the comparison), take the same number of dt = 1e-3 steps and keep the same saved frames.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters(...)["ns"]``.
    repeats : int
        Timed rounds after the warm-up.

    Returns
    -------
    dict
        As :func:`workload_lotka_volterra`, plus ``warm_up``.
    """
    environments = NavierStokes2D.LEADS_ENVIRONMENTS
    per_environment = parameters["trajectories_per_environment"]
    size, time_step = parameters["grid_size"], parameters["time_step"]
    horizon, save_interval = parameters["horizon"], parameters["save_interval"]
    frames = round(horizon / save_interval)
    steps = math.ceil(horizon / time_step)  # the FNO code's step count; physml takes the same
    warm_up_settings = parameters["warm_up"]
    warm_up = WarmUp(warm_up_settings["duration"], warm_up_settings["forcing"], warm_up_settings["viscosity"])
    # Built in float64 and run on float32 states: the simulate dtype follows the state.
    system = NavierStokes2D.from_environments(environments, per_environment, grid_size=size,
                                              time_step=time_step, warm_up=warm_up)
    generator = torch.Generator().manual_seed(parameters["seed"])
    log(f"[ns] warm-up: {per_environment} random fields × {warm_up.duration:g} time units, batched")
    start = time.perf_counter()
    with torch.no_grad():
        warmed = system.sample_initial_conditions(per_environment, generator)
    warm_up_seconds = time.perf_counter() - start
    # LEADS reuses initial condition i in every environment; rounded to float32 (the papers' precision).
    initial = float32_representable(warmed).repeat(len(environments), 1, 1, 1)
    times = torch.arange(frames + 1, dtype=torch.float64) * save_interval
    # A different initial condition in each environment, so the subset covers both forcings and fields.
    paper_members = [environment * per_environment + (environment + index) % per_environment
                     for environment in range(len(environments))
                     for index in range(parameters["paper_trajectories_per_environment"])]
    member_environment = [environment for environment in environments for _ in range(per_environment)]
    forcings32 = {member: paper_forcing(member_environment[member]["forcing"], system.grid).to(torch.float32)
                  for member in paper_members}
    initial32 = initial.to(torch.float32)

    def single_loop(loop):
        def run():
            states = {}
            with torch.no_grad():
                for member in paper_members:
                    recorded = loop(initial32[member, 0], forcings32[member],
                                    member_environment[member]["viscosity"], horizon, time_step, frames)
                    states[member] = recorded[..., 0].permute(2, 0, 1)  # (frames, n, n)
            return {"states": states, "nfe": [steps] * len(paper_members)}
        return run

    def batched(dtype):
        def run():
            with torch.no_grad():
                solution = system.simulate(initial.to(dtype), times, method="fno")
            return {"states": solution.ys[:frames, :, 0], "stats": dict(solution.stats),
                    "status": solution.status}
        return run

    single_systems = {member: NavierStokes2D(grid_size=size, time_step=time_step, warm_up=None,
                                             forcing=member_environment[member]["forcing"],
                                             viscosity=member_environment[member]["viscosity"])
                      for member in paper_members}

    def physml_one_at_a_time():
        states = {}
        with torch.no_grad():
            for member in paper_members:
                solution = single_systems[member].simulate(initial32[member:member + 1], times, method="fno")
                states[member] = solution.ys[:frames, 0, 0]
        return {"states": states, "nfe": [steps] * len(paper_members)}

    dtype, context_dtype = parameters["physml"]["dtype"], parameters["physml"]["context_dtype"]
    variants = [
        Variant("paper", "papers' way: FNO-code Crank–Nicolson loop (torch float32), one trajectory at a "
                "time", "torch", single_loop(fno_code_trajectory), role="paper"),
        Variant("physml_batched", f"physml: one batched simulate (fno, dt {time_step:g}), {dtype}, all "
                f"{initial.shape[0]} trajectories", "physml", batched(DTYPES[dtype]), role="physml"),
        Variant("physml_batched_context_dtype", f"physml: the same in {context_dtype}", "physml",
                batched(DTYPES[context_dtype]), role="context"),
        Variant("physml_one_at_a_time", f"physml: one simulate per trajectory ({dtype}), papers' subset",
                "physml", physml_one_at_a_time, role="context"),
        Variant("lean_loop", "same scheme, one trajectory at a time, without the per-step copies (float32)",
                "torch", single_loop(lean_single_trajectory), role="context"),
    ]

    reference_settings = parameters["reference"]
    log(f"[ns] reference: {reference_settings['method']} at dt {reference_settings['step_size']:g} on "
        f"{len(paper_members)} trajectories")
    start = time.perf_counter()
    reference_system = NavierStokes2D(grid_size=size, warm_up=None,
                                      forcing=[member_environment[m]["forcing"] for m in paper_members],
                                      viscosity=[member_environment[m]["viscosity"] for m in paper_members])
    reference_initial = initial[paper_members]
    with torch.no_grad():
        fine, coarse = (
            reference_system.simulate(reference_initial, times, method=reference_settings["method"],
                                      options={"step_size": reference_settings[name]}).ys[:frames, :, 0]
            for name in ("step_size", "check_step_size"))
    reference_seconds = time.perf_counter() - start
    reference_states = {member: fine[:, index].numpy() for index, member in enumerate(paper_members)}
    # Second order in time: the fine run's own error is about |coarse − fine| / 3 (Richardson).
    richardson = float((coarse - fine).abs().max()) / 3.0
    reference = {"states": reference_states}

    timings = time_variants("ns", variants, repeats)
    rows = rows_from_timings(variants, timings, initial.shape[0], paper_members, reference)
    for row in rows:
        row["per_step_per_trajectory_median_s"] = row["per_trajectory_median_s"] / steps
    paper_per_step = next(row for row in rows if row["role"] == "paper")["per_step_per_trajectory_median_s"]
    papers_warm_up_steps = math.ceil(warm_up_settings["papers_run_length"] / time_step)
    warm_up_record = {
        "physml_batched_s": warm_up_seconds, "initial_conditions": per_environment,
        "physml_steps": math.ceil(warm_up.duration / time_step - 1e-9), "dtype": "float64",
        "physml_per_initial_condition_s": warm_up_seconds / per_environment,
        "papers_steps": papers_warm_up_steps,
        "papers_estimate_per_initial_condition_s": paper_per_step * papers_warm_up_steps,
    }
    notes = [
        f"{len(environments)} LEADS forcings × {per_environment} initial conditions = {initial.shape[0]} "
        f"trajectories, ν = 1e-3, {size}×{size}; Gaussian random fields (seed {parameters['seed']}) warmed "
        f"up {warm_up.duration:g} time units under f0 by physml in one float64 batch, then rounded to "
        "float32; every run starts from those states.",
        f"Warm-up, not part of the comparison: {format_seconds(warm_up_seconds)} for the {per_environment} "
        f"fields in one batch ({format_seconds(warm_up_record['physml_per_initial_condition_s'])} each, one "
        f"run). The papers' loop runs {papers_warm_up_steps} steps per field for it (it keeps the state at "
        f"t = {warm_up.duration:g} of a {warm_up_settings['papers_run_length']:g}-unit run): about "
        f"{format_seconds(warm_up_record['papers_estimate_per_initial_condition_s'])} each at its measured "
        "time per step (estimate, not run).",
        f"Every run takes {steps} steps of dt = {time_step:g} per trajectory and keeps {frames} frames "
        f"(t = 0, …, {(frames - 1) * save_interval:g}); like the FNO code, the state at t = {horizon:g} is "
        "computed but not kept.",
        f"The papers' way (and the lean loop) is timed on {len(paper_members)} trajectories, one per "
        f"forcing; physml's batched run on all {initial.shape[0]}.",
        "Per step and trajectory (median): " + "; ".join(
            f"{STEP_NAMES[row['key']]} {format_time(row['per_step_per_trajectory_median_s'])}"
            for row in rows) + ".",
        f"Reference: physml cnab2 (second order) at dt = {reference_settings['step_size']:g} in float64 on "
        f"the {len(paper_members)} trajectories of the papers' subset; its own error, estimated from a run "
        f"at dt = {reference_settings['check_step_size']:g} (|difference| / 3), is {richardson:.1e}.",
        "The papers' loop keeps the Nyquist mode in first derivatives and physml drops it; physml's "
        "Crank–Nicolson factor leaves the (zero) mean alone. Both run the same first-order scheme at the "
        "same step, so their errors agree up to those details and float32 rounding; the accuracy check "
        "allows physml 5 % more error for that reason.",
        "physml runs Navier–Stokes in float64: over 10 000 steps float32 rounding roughly doubles its error "
        "(see the float32 row), while a batched float64 step costs about the same time as a float32 one. The "
        "system is built in float64 and simulated on states of the row's dtype.",
    ]
    return {"title": "ns. Navier–Stokes 32×32 (LEADS forcings)", "parameters": parameters, "rows": rows,
            "accuracy": accuracy_match(rows, allowance=1.05),
            "reference": {"trajectories": len(paper_members), "richardson_error_estimate": richardson,
                          "wall_time_s": reference_seconds},
            "warm_up": warm_up_record, "steps_per_trajectory": steps, "notes": notes}


# ============================================================================ targets


def evaluate_targets(workloads: dict) -> list[dict]:
    """Check every target whose workload ran: physml ≥ limit× faster per trajectory, at matched accuracy."""
    checked = []
    for key, limit in TARGETS.items():
        if key not in workloads:
            continue
        rows = {row["key"]: row for row in workloads[key]["rows"]}
        paper, physml = rows["paper"], rows["physml_batched"]
        speedup = paper["per_trajectory_median_s"] / physml["per_trajectory_median_s"]
        matched = workloads[key]["accuracy"]["matched"]
        target = {
            "workload": key,
            "target": f"physml ≥ {limit:g}× faster per trajectory than the papers' generator, at matched "
                      "accuracy",
            "paper_per_trajectory_s": paper["per_trajectory_median_s"],
            "physml_per_trajectory_s": physml["per_trajectory_median_s"],
            "measured": speedup, "limit": limit, "accuracy_matched": matched,
            "met": speedup >= limit and matched,
        }
        if not target["met"]:
            target["why_missed"] = explain_miss(target, workloads[key])
        checked.append(target)
    return checked


def explain_miss(target: dict, workload: dict) -> str:
    """Why a target was missed, in words built from the measured numbers."""
    rows = {row["key"]: row for row in workload["rows"]}
    paper, physml = rows["paper"], rows["physml_batched"]
    context = rows["physml_batched_context_dtype"]
    parts = []
    if not target["accuracy_matched"]:
        accuracy = workload["accuracy"]
        parts.append(
            f"Accuracy not matched: physml's largest error {accuracy['physml']['max_abs_worst']:.2e} (median "
            f"trajectory {accuracy['physml']['max_abs_median']:.2e}) against the papers' "
            f"{accuracy['paper']['max_abs_worst']:.2e} ({accuracy['paper']['max_abs_median']:.2e}).")
    if target["measured"] >= target["limit"]:
        return " ".join(parts)
    if target["workload"] == "gs":
        cost = workload["right_hand_side"]
        dtype = workload["parameters"]["physml"]["dtype"]
        per_trajectory_rhs = cost["physml_per_trajectory_s"][dtype]
        rhs_ratio = cost["numpy_per_call_s"] / per_trajectory_rhs
        evaluation_share = physml["nfe_per_call"] * cost["physml_per_call_s"][dtype] / physml["median_s"]
        parts.append(
            f"The step count is set by stability, not accuracy: explicit steps are capped by the diffusion "
            f"eigenvalues (|λ| ≤ 4 D_u / dx² ≈ 0.84), so physml's {physml['nfe_per_call']} evaluations for "
            f"the batch are about the papers' {paper['nfe_per_call']:.0f} per trajectory whatever the "
            f"tolerance. The speed-up is then bounded by the cost of one right-hand side: physml evaluates "
            f"it for the batch of {cost['batch']} in {format_time(cost['physml_per_call_s'][dtype])}, "
            f"{format_time(per_trajectory_rhs)} per trajectory, against "
            f"{format_time(cost['numpy_per_call_s'])} for NumPy on one trajectory ({rhs_ratio:.1f}×: "
            f"batching removes the per-call Python overhead, and what is left is element-wise work; the "
            f"nine-point Laplacian, nine shifted slices of the padded field, takes "
            f"{format_time(cost['physml_laplacian_per_call_s'][dtype])} of the call). "
            f"The field evaluations, timed on their own, account for {evaluation_share * 100:.0f} % of "
            f"physml's run (separate timings run slightly slower than inside the solve), so the solver's "
            f"own stage arithmetic is at most {max(0.0, 1.0 - evaluation_share) * 100:.0f} % of it. In "
            f"{workload['parameters']['physml']['context_dtype']} the speed-up is "
            f"{paper['per_trajectory_median_s'] / context['per_trajectory_median_s']:.1f}×.")
    elif target["workload"] == "ns":
        lean = rows["lean_loop"]
        paper_step = paper["per_step_per_trajectory_median_s"]
        lean_step = lean["per_step_per_trajectory_median_s"]
        physml_step = physml["per_step_per_trajectory_median_s"]
        parts.append(
            f"Per step and trajectory the papers' loop takes {format_time(paper_step)}; the same scheme "
            f"without its per-step copies, still one trajectory at a time, {format_time(lean_step)} (a "
            f"factor {paper_step / lean_step:.1f} of the speed-up); physml's batched step "
            f"{format_time(physml_step)} (a factor {lean_step / physml_step:.1f} from batching "
            f"{physml['trajectories']} trajectories). "
            f"Once the per-call overhead is amortised, a batched step costs the FFTs and element-wise passes "
            f"over the {physml['trajectories']} spectra of 32×32, which grow with the batch; in "
            f"{workload['parameters']['physml']['context_dtype']} the speed-up is "
            f"{paper['per_trajectory_median_s'] / context['per_trajectory_median_s']:.1f}×.")
    return " ".join(parts)


# ============================================================================ report


def format_time(seconds: float | None) -> str:
    """Like ``format_seconds`` of ``benchmarks/solvers.py``, in µs below a millisecond."""
    if seconds is not None and seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    return format_seconds(seconds)


def workload_table(workload: dict) -> list[str]:
    """The markdown table of one workload, from its JSON data."""
    headers = ["variant", "trajectories timed", "median run", "per trajectory (median)",
               "per trajectory (min)", "evaluations or steps", "max abs error (worst trajectory)",
               "max abs error (median trajectory)", "relative RMS error", "physml speed-up over row"]
    cells = []
    for row in workload["rows"]:
        errors = row["errors"]
        speedup = "1 (physml)" if row["role"] == "physml" else format_ratio(row["speedup_of_physml"])
        if row["batched"]:
            evaluations = f"{format_number(row['nfe_per_call'])} for the batch; {row['steps']}"
        else:
            evaluations = f"{format_number(row['nfe_per_call'], 4)} per trajectory (mean); {row['steps']}"
        if workload["title"].startswith("ns"):
            evaluations = f"{workload['steps_per_trajectory']} steps per trajectory"
        cells.append([row["label"], format_number(row["trajectories"]), format_seconds(row["median_s"]),
                      format_time(row["per_trajectory_median_s"]), format_time(row["per_trajectory_min_s"]),
                      evaluations, format_error(errors["max_abs_worst"]),
                      format_error(errors["max_abs_median"]), format_error(errors["relative_rms"]), speedup])
    return markdown_table(headers, cells)


def describe_parameters(parameters: dict) -> str:
    """One line listing a workload's parameters (nested settings as ``name.key = value``)."""
    items = []
    for name, value in parameters.items():
        if name == "description":
            continue
        if isinstance(value, dict):
            items += [f"{name}.{key} = {item}" for key, item in value.items()]
        else:
            items.append(f"{name} = {value}")
    return "; ".join(items)


def render_markdown(data: dict) -> str:
    """The markdown report, generated from the JSON data only."""
    machine = data["machine"]
    lines = ["# Data-generation benchmark: the LEADS/CoDA generators against physml", ""]
    if data["quick"]:
        lines += ["> **Quick smoke run (`--quick`)**: a few trajectories, short horizons, tiny batches. "
                  "These numbers are not the benchmark; run without `--quick` on a quiet machine for the "
                  "committed results.", ""]
    lines += [
        f"Generated by `benchmarks/datagen.py` from `{data['json_name']}` on {data['date_utc']} "
        f"(git {data['git_sha']}); total wall time {data['wall_time_s']:.0f} s.",
        "",
        f"Command: `{data['command']}`",
        "",
        "## Machine",
        "",
    ]
    machine_rows = [
        ["CPU", machine["cpu_model"]],
        ["cores (logical / usable)", f"{machine['logical_cores']} / {machine['usable_cores']}"],
        ["platform", machine["platform"]],
        ["Python", machine["python"]],
        ["torch", machine["torch"]],
        ["numpy / scipy", f"{machine['numpy']} / {machine['scipy']}"],
        ["physml", f"{machine['physml']} (git {data['git_sha']})"],
        ["torch threads", f"{machine['torch_threads']} (OMP_NUM_THREADS={machine['omp_num_threads_env']})"],
        ["load average (1, 5, 15 min)", f"start {format_load(machine.get('load_average_start'))}; "
                                        f"end {format_load(machine.get('load_average_end'))}"],
        ["date (UTC)", data["date_utc"]],
    ]
    lines += markdown_table(["", ""], machine_rows)
    protocol = data["protocol"]
    lines += [
        "",
        "## Protocol",
        "",
        "Both ways generate the same trajectories (same initial conditions, same parameters) in one process. "
        "*The papers' way* is a per-trajectory generator written after the LEADS/CoDA code: SciPy "
        "`solve_ivp(method=\"RK45\")` with SciPy's default tolerances (rtol 1e-3, atol 1e-6, which LEADS "
        "keeps) and a NumPy right-hand side for Lotka–Volterra and Gray–Scott; the FNO code's "
        "pseudo-spectral Crank–Nicolson loop (torch, float32, dt = 1e-3) for Navier–Stokes. *physml's way* "
        "is one batched `system.simulate(...)` call over every trajectory. The papers' way is timed on a "
        "subset of the trajectories; every time is reported per trajectory (run time / trajectories in the "
        "run).",
        "",
        f"Each variant runs once as a warm-up, then {protocol['repeats']} {protocol['order']} rounds time "
        f"every variant once per round. Times are wall-clock (`{protocol['timer']}`), {protocol['gc']}; the "
        "tables give medians (and the minimum per trajectory). 'physml speed-up over row' is the row's "
        "median time per trajectory divided by physml's batched one (above 1: physml is faster).",
        "",
        "**Matched accuracy.** Errors are measured against float64 references (the largest absolute error "
        "over every saved frame and component; worst and median trajectory; relative RMS over all compared "
        "trajectories). physml's adaptive runs accept a joint step only if every trajectory passes the "
        "per-trajectory test SciPy applies to one (a worst-trajectory RMS error norm instead of the RMS over "
        "the whole batch), with tolerances ten times tighter than the papers' as a margin, in float32 — the "
        "precision the papers store their data in (a float64 row is given for context); Navier–Stokes runs "
        "in float64 (see its notes), with a float32 context row. A target counts as "
        "met only if physml's errors are no larger than the papers' (worst and median trajectory).",
        "",
    ]
    for workload in data["workloads"].values():
        accuracy = workload["accuracy"]
        lines += [f"## {workload['title']}", "", describe_parameters(workload["parameters"]), ""]
        lines += workload_table(workload)
        verdict = "matched" if accuracy["matched"] else "**not matched**"
        allowance = f" (allowance {accuracy['allowance']:g}×)" if accuracy["allowance"] != 1 else ""
        lines += ["", f"Accuracy {verdict}{allowance}: physml's largest error "
                  f"{accuracy['physml']['max_abs_worst']:.2e} (median trajectory "
                  f"{accuracy['physml']['max_abs_median']:.2e}) against the papers' "
                  f"{accuracy['paper']['max_abs_worst']:.2e} "
                  f"({accuracy['paper']['max_abs_median']:.2e}).", ""]
        lines += [f"- {note}" for note in workload["notes"]] + [""]
    lines += ["## Targets", ""]
    if data["targets"]:
        cells = []
        for target in data["targets"]:
            verdict = "met" if target["met"] else "**missed**"
            shortfall = "–" if target["met"] or target["measured"] >= target["limit"] else \
                f"needs {target['limit'] / target['measured']:.2f}× more speed"
            cells.append([f"{target['workload']}: {target['target']}",
                          f"{format_time(target['paper_per_trajectory_s'])} / "
                          f"{format_time(target['physml_per_trajectory_s'])}",
                          f"{target['measured']:.1f}×", f"{target['limit']:g}×",
                          "yes" if target["accuracy_matched"] else "**no**", verdict, shortfall])
        lines += markdown_table(["target", "papers / physml per trajectory", "speed-up", "limit",
                                 "accuracy matched", "result", "missed by"], cells)
        met = sum(target["met"] for target in data["targets"])
        lines += ["", f"{met} of {len(data['targets'])} targets met. Lotka–Volterra is reported without a "
                  "target.", ""]
    else:
        lines += ["No targeted workload ran (targets: Gray–Scott and Navier–Stokes).", ""]
    explained = [target for target in data["targets"] if not target["met"] and target.get("why_missed")]
    if explained:
        lines += ["### Why the missed targets are missed", ""]
        lines += [f"- **{target['workload']}** — {target['why_missed']}" for target in explained]
        lines += [""]
    return "\n".join(lines)


# ============================================================================ command line


WORKLOAD_FUNCTIONS = {
    "lv": workload_lotka_volterra,
    "gs": workload_gray_scott,
    "ns": workload_navier_stokes,
}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = benchmark_parser(__doc__, WORKLOADS, DEFAULT_OUTPUT, 3, MINIMUM_REPEATS)
    return parse_benchmark_arguments(parser, argv, WORKLOADS, MINIMUM_REPEATS)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    output = arguments.output
    json_path = output.with_suffix(".json")
    if arguments.from_json is not None:
        data = json.loads(arguments.from_json.read_text(encoding="utf-8"))
        # The explanations are derived from the stored numbers: rebuild them with the current wording.
        for target in data["targets"]:
            if not target["met"]:
                target["why_missed"] = explain_miss(target, data["workloads"][target["workload"]])
        write_report(data, json_path, output, render_markdown)
        return 0

    torch.set_num_threads(arguments.threads)
    parameters = workload_parameters(arguments.quick)
    machine = machine_description(arguments.threads)
    log(f"machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, torch {machine['torch']}, "
        f"{machine['torch_threads']} thread(s); workloads {','.join(arguments.only)}"
        f"{' (quick)' if arguments.quick else ''}")
    started = time.perf_counter()
    workloads = {}
    for key in arguments.only:
        log(f"workload {key}: {parameters[key]['description']}")
        workloads[key] = WORKLOAD_FUNCTIONS[key](parameters[key], arguments.repeats)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    data = {
        "benchmark": "datagen",
        "schema_version": SCHEMA_VERSION,
        "quick": arguments.quick,
        "command": " ".join(["python benchmarks/datagen.py", *(sys.argv[1:] if argv is None else argv)]),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "git_sha": git_revision(REPOSITORY_ROOT),
        "wall_time_s": time.perf_counter() - started,
        "json_name": json_path.name,
        "machine": machine,
        "protocol": {
            "warmup_runs": 1,
            "repeats": arguments.repeats,
            "order": "round-robin",
            "timer": "time.perf_counter",
            "gc": "garbage collector collected before and disabled during each timed run",
            "statistic": "median",
            "per_trajectory": "run time divided by the number of trajectories in the run",
        },
        "config": parameters,
        "workloads": workloads,
    }
    data["targets"] = evaluate_targets(workloads)
    write_report(data, json_path, output, render_markdown)
    for target in data["targets"]:
        log(f"target {target['workload']}: speed-up {target['measured']:.1f}× (limit {target['limit']:g}×), "
            f"accuracy {'matched' if target['accuracy_matched'] else 'NOT matched'} "
            f"-> {'met' if target['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
