"""Solver benchmark: physml against torchdiffeq, torchode and torchsde on the same work, in one process.

Four workloads, each a function that returns a dict of raw numbers:

a. small neural ODE (diffrax's ``benchmarks/small_neural_ode.py`` setup), forward and forward+backward;
b. a batch of Van der Pol oscillators at mu = 25, joint versus per-sample step-size control;
c. an Ornstein-Uhlenbeck SDE with 100 Euler-Maruyama steps, against torchsde and hand-written loops;
d. the cost of one function evaluation inside the solvers, against a bare forward pass of the network.

Every variant of a workload runs once as a warm-up, then ``repeats`` timed rounds follow; inside a round
the variants run one after the other (round-robin), so slow drifts of the machine hit all of them alike.
Each timed run uses ``time.perf_counter`` with the garbage collector disabled. Medians are reported.
All raw numbers go to a JSON file, and the markdown report is rendered from that JSON only.

Run from the repository root (the full run takes about 10 minutes on a quiet 2-core machine, nearly all
of it in workload b, where one torchdiffeq solve takes about 40 s)::

    OMP_NUM_THREADS=1 python benchmarks/solvers.py --threads 1 --repeats 5

``--quick`` shrinks every workload to a smoke test of well under a minute; ``--from-json`` re-renders the
markdown from an existing JSON file without running anything.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this file belongs to (its git SHA is the one recorded), not another install.
sys.path.insert(0, str(REPOSITORY_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchdiffeq  # noqa: E402  (physml dependencies)
import torchsde  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import physml  # noqa: E402
from physml import provenance  # noqa: E402
from physml.provenance import atomic_write_text as atomic_write  # noqa: E402
from physml.provenance import git_revision  # noqa: E402

# torchode is needed only by this script's own workloads: the other benchmarks import the shared helpers
# below without it.
try:
    import torchode
except ImportError:  # pragma: no cover - depends on the environment
    torchode = None


def require_torchode():
    if torchode is None:
        raise SystemExit('benchmarks/solvers.py needs torchode: install it with pip install -e ".[bench]"')
    return torchode

DEFAULT_OUTPUT = REPOSITORY_ROOT / "benchmarks" / "results" / "solvers.md"
WORKLOADS = ("a", "b", "c", "d")
#: Minimum number of timed runs per workload in a full (non ``--quick``) run.
MINIMUM_REPEATS = {"a": 5, "b": 3, "c": 5, "d": 5}
#: Timed runs of workload b when not overridden: each torchdiffeq run takes about 40 s.
DEFAULT_REPEATS_B = 3
SCHEMA_VERSION = 1


# ============================================================================ parameters


def workload_parameters(quick: bool) -> dict:
    """All workload parameters, as written into the JSON file.

    Parameters
    ----------
    quick : bool
        Shrink every workload to a smoke test (shorter horizons, smaller batches).

    Returns
    -------
    dict
        One dict of parameters per workload key ``"a"`` to ``"d"``.

    Examples
    --------
    >>> workload_parameters(quick=False)["b"]["mu"]
    25.0
    """
    parameters = {
        "a": {
            "description": "small neural ODE (diffrax benchmarks/small_neural_ode.py)",
            "batch": 64,
            "state": 4,
            "hidden": 32,
            "network": "Linear(4,32) -> Softplus -> Linear(32,4) -> Tanh (eager, not TorchScript)",
            "t_end": 100.0,
            "n_output_times": 2,
            "method": "dopri5",
            "rtol": 1e-6,
            "atol": 1e-6,
            "dtype": "float32",
            "seed": 0,
            "loss": "sum of the state at t_end; gradients w.r.t. y0 and the network parameters",
            "reference": {"method": "DOP853", "rtol": 1e-12, "atol": 1e-12, "dtype": "float64",
                          "gradient": "variational equations dJ/dt = (df/dy) J, J(0) = I"},
        },
        "b": {
            "description": "Van der Pol batch, per-sample versus joint step-size control",
            "batch": 256,
            "mu": 25.0,
            "initial_std": 2.0,
            "t_end": 80.7,
            "n_output_times": 200,
            "rtol": 1e-5,
            "atol": 1e-5,
            "dtype": "float64",
            "seed": 0,
            "include_physml_joint": True,
            "reference_members": 8,
            "reference": {"method": "Radau", "rtol": 1e-10, "atol": 1e-10, "check_method": "DOP853",
                          "check_rtol": 1e-12, "check_atol": 1e-12},
        },
        "c": {
            "description": "Ornstein-Uhlenbeck SDE dy = -theta y dt + sigma dW (diagonal noise), "
                           "Euler-Maruyama",
            "batch": 1024,
            "state": 2,
            "theta": 1.0,
            "sigma": 0.5,
            "y0": 1.0,
            "t_end": 1.0,
            "dt": 0.01,
            "dtype": "float32",
            "seed": 0,
        },
        "d": {
            "description": "cost per function evaluation of an MLP vector field",
            "batch": 2000,
            "state": 2,
            "hidden": 64,
            "hidden_layers": 3,
            "activation": "SELU",
            "t_end": 1.0,
            "rk4_step_size": 0.05,
            "dopri5_rtol": 1e-5,
            "dopri5_atol": 1e-5,
            "dtype": "float32",
            "seed": 0,
            "bare_forward_calls_per_round": 80,
            "reference": {"method": "DOP853", "rtol": 1e-10, "atol": 1e-10, "dtype": "float64"},
        },
    }
    if quick:
        parameters["a"]["t_end"] = 10.0
        parameters["b"].update(batch=16, t_end=8.0, reference_members=4)
        parameters["c"]["batch"] = 256
        parameters["d"].update(batch=500, bare_forward_calls_per_round=20)
    return parameters


# ============================================================================ timing


@dataclass
class Variant:
    """One way of doing a workload's work.

    Attributes
    ----------
    key : str
        Identifier used in the JSON file and by the targets.
    label : str
        Human-readable name for the tables.
    library : str
        ``physml``, ``torchdiffeq``, ``torchode``, ``torchsde`` or ``hand-written``.
    run : callable
        Does the work once and returns an outcome dict (tensors and counts).
    role : str
        ``physml``, ``peer`` (a target compares against it) or ``context``.
    counterpart : str, optional
        Key of the physml variant this row is compared with (the "physml / row" column).
    keep_outcomes : bool
        Keep the outcome of every timed run (not only the last one).
    """

    key: str
    label: str
    library: str
    run: Callable[[], dict]
    role: str = "peer"
    counterpart: str | None = None
    keep_outcomes: bool = False


_START = time.perf_counter()


def log(message: str) -> None:
    """Print a progress line to stderr with the elapsed time."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


def timed_call(function: Callable[[], dict]) -> tuple[float, dict]:
    """Run ``function`` once with the garbage collector disabled; return (seconds, outcome)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        outcome = function()
        elapsed = time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()
    return elapsed, outcome


def time_variants(workload: str, variants: list[Variant], repeats: int) -> dict[str, dict]:
    """Warm up every variant once, then time ``repeats`` round-robin rounds.

    Parameters
    ----------
    workload : str
        Workload key, for the progress messages.
    variants : list of Variant
        The variants to time; they should do the same work.
    repeats : int
        Number of timed rounds.

    Returns
    -------
    dict
        ``{key: {"times_s": [...], "warmup_s": float, "outcome": dict, "outcomes": [...]}}``; ``outcome``
        is the one of the last timed run, ``outcomes`` all timed ones when the variant keeps them.
    """
    results = {}
    for variant in variants:
        elapsed, outcome = timed_call(variant.run)
        results[variant.key] = {"times_s": [], "warmup_s": elapsed, "outcome": outcome, "outcomes": []}
        log(f"[{workload}] warm-up  {variant.label}: {format_seconds(elapsed)}")
    for round_index in range(repeats):
        for variant in variants:
            elapsed, outcome = timed_call(variant.run)
            results[variant.key]["times_s"].append(elapsed)
            results[variant.key]["outcome"] = outcome
            if variant.keep_outcomes:
                results[variant.key]["outcomes"].append(outcome)
            log(f"[{workload}] run {round_index + 1}/{repeats} {variant.label}: {format_seconds(elapsed)}")
    return results


def time_summary(times: list[float]) -> dict:
    """Median, minimum, maximum and spread of a list of run times (seconds)."""
    return {
        "times_s": list(times),
        "n_runs": len(times),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "mean_s": statistics.fmean(times),
        "stdev_s": statistics.stdev(times) if len(times) > 1 else 0.0,
    }


def base_row(variant: Variant, timing: dict) -> dict:
    """The fields every table row has: identity, role and timing summary."""
    return {
        "key": variant.key,
        "label": variant.label,
        "library": variant.library,
        "role": variant.role,
        "counterpart": variant.counterpart,
        "warmup_s": timing["warmup_s"],
        **time_summary(timing["times_s"]),
    }


def attach_ratios(rows: list[dict], quantity: str = "median_s") -> None:
    """Add ``physml_over_row`` = counterpart physml median / this row's median to each row."""
    by_key = {row["key"]: row for row in rows}
    for row in rows:
        counterpart = by_key.get(row.get("counterpart") or "")
        if counterpart is None or row.get(quantity) is None or counterpart.get(quantity) is None:
            row["physml_over_row"] = None
        else:
            row["physml_over_row"] = counterpart[quantity] / row[quantity]


# ============================================================================ shared models


def seeded_mlp(sizes: list[int], activation: type, final_activation: type | None,
               generator: torch.Generator, dtype: torch.dtype) -> torch.nn.Sequential:
    """An MLP initialised like ``torch.nn.Linear`` (uniform ±1/sqrt(fan_in)) from an explicit generator.

    Examples
    --------
    >>> net = seeded_mlp([2, 8, 2], torch.nn.Tanh, None, torch.Generator().manual_seed(0), torch.float32)
    >>> net(torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """
    layers: list[torch.nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(pairwise(sizes)):
        linear = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    if final_activation is not None:
        layers.append(final_activation())
    return torch.nn.Sequential(*layers)


class CountingField(torch.nn.Module):
    """Autonomous vector field ``f(t, y) = net(y)`` that counts its calls (torchdiffeq reports no NFE)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, t, y):
        self.calls += 1
        return self.net(y)


def counted(field, function: Callable[[], dict]) -> Callable[[], dict]:
    """Wrap a run so that its outcome carries the number of calls of ``field`` it made."""

    def run():
        field.calls = 0
        outcome = function()
        outcome["calls"] = field.calls
        return outcome

    return run


def max_abs(tensor: torch.Tensor) -> float:
    return float(tensor.abs().max())


def rms(tensor: torch.Tensor) -> float:
    return float(tensor.square().mean().sqrt())


def torchode_solver(field, rtol: float, atol: float, method: str = "dopri5"):
    """torchode's component API: AutoDiffAdjoint + Dopri5/Tsit5 + IntegralController, built once."""
    require_torchode()
    term = torchode.ODETerm(field, with_stats=False)
    step_method = torchode.Dopri5(term=term) if method == "dopri5" else torchode.Tsit5(term=term)
    controller = torchode.IntegralController(atol=atol, rtol=rtol, term=term)
    return torchode.AutoDiffAdjoint(step_method, controller)


def torchode_solve(solver, y0: torch.Tensor, t_eval: torch.Tensor):
    """Solve one problem with per-sample evaluation times ``t_eval`` of shape ``(batch, n_times)``."""
    problem = torchode.InitialValueProblem(y0=y0, t_start=t_eval[:, 0], t_end=t_eval[:, -1], t_eval=t_eval)
    return solver.solve(problem)


# ============================================================================ workload a


def neural_ode_reference(net: torch.nn.Module, y0: torch.Tensor, t_end: float, reference: dict) -> dict:
    """Float64 SciPy solution of the neural ODE at ``t_end`` and the gradient of ``sum(y(t_end))`` w.r.t. y0.

    The gradient comes from the variational equations ``dJ/dt = (df/dy) J`` with ``J(0) = I``, integrated
    together with the state, so one tight solve gives both.
    """
    net64 = copy.deepcopy(net).to(torch.float64)
    batch, size = y0.shape
    jacobian = torch.func.vmap(torch.func.jacrev(net64))

    def augmented(t, flat):
        with torch.no_grad():
            values = torch.from_numpy(flat)
            y = values[: batch * size].view(batch, size)
            sensitivity = values[batch * size:].view(batch, size, size)
            derivative = torch.cat([net64(y).reshape(-1), (jacobian(y) @ sensitivity).reshape(-1)])
        return derivative.numpy()

    identity = torch.eye(size, dtype=torch.float64).expand(batch, size, size)
    initial = torch.cat([y0.to(torch.float64).reshape(-1), identity.reshape(-1)]).numpy()
    solution = solve_ivp(augmented, (0.0, t_end), initial, method=reference["method"],
                         rtol=reference["rtol"], atol=reference["atol"])
    if not solution.success:
        raise RuntimeError(f"SciPy reference for workload a failed: {solution.message}")
    final = torch.from_numpy(solution.y[:, -1])
    state = final[: batch * size].view(batch, size)
    sensitivity = final[batch * size:].view(batch, size, size)
    return {"final": state, "grad_y0": sensitivity.sum(dim=1), "nfev": int(solution.nfev)}


def workload_small_neural_ode(parameters: dict, repeats: int) -> dict:
    """Workload a: diffrax's small neural ODE, forward and forward+backward, dopri5 at 1e-6.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters()["a"]``.
    repeats : int
        Timed rounds.

    Returns
    -------
    dict
        ``rows`` (one per library and mode), ``reference`` and ``notes``.
    """
    dtype = getattr(torch, parameters["dtype"])
    generator = torch.Generator().manual_seed(parameters["seed"])
    size, hidden, batch = parameters["state"], parameters["hidden"], parameters["batch"]
    net = seeded_mlp([size, hidden, size], torch.nn.Softplus, torch.nn.Tanh, generator, dtype)
    y0 = torch.randn(batch, size, generator=generator, dtype=dtype)
    field = CountingField(net)
    times = torch.linspace(0.0, parameters["t_end"], parameters["n_output_times"], dtype=dtype)
    t_eval = times.repeat(batch, 1)
    rtol, atol, method = parameters["rtol"], parameters["atol"], parameters["method"]
    torchode_dopri5 = torchode_solver(field, rtol, atol, method)

    def forward(solve):
        def run():
            with torch.no_grad():
                final, extra = solve(y0)
            return {"final": final, **extra}

        return run

    def forward_backward(solve):
        def run():
            net.zero_grad(set_to_none=True)
            leaf = y0.detach().requires_grad_(True)
            final, extra = solve(leaf)
            final.sum().backward()
            return {"final": final.detach(), "grad_y0": leaf.grad, **extra}

        return run

    def solve_physml(initial):
        return physml.odeint(field, initial, times, rtol=rtol, atol=atol, method=method)[-1], {}

    def solve_torchdiffeq(initial):
        return torchdiffeq.odeint(field, initial, times, rtol=rtol, atol=atol, method=method)[-1], {}

    def solve_torchode(initial):
        solution = torchode_solve(torchode_dopri5, initial, t_eval)
        return solution.ys[:, -1], {"steps_per_sample": solution.stats["n_steps"],
                                    "status": solution.status}

    with torch.no_grad():
        statistics_run = physml.solve_ode(field, y0, times, method=method, rtol=rtol, atol=atol)
    physml_stats = {key: int(value) for key, value in statistics_run.stats.items()}
    time_zero = torch.zeros((), dtype=dtype)

    def network_alone(initial):
        # The floor of any solver: the same number of evaluations of the same field, chained through a
        # single add each (y <- y + 1e-3 f), with no step-size control, stages or interpolation.
        state = initial
        for _ in range(physml_stats["nfe"]):
            state = torch.add(state, field(time_zero, state), alpha=1e-3)
        return state, {}

    variants = []
    for mode, wrap in (("forward", forward), ("forward_backward", forward_backward)):
        mode_label = "forward" if mode == "forward" else "forward+backward"
        physml_key = f"physml_{mode}"
        variants += [
            Variant(physml_key, f"physml odeint dopri5, {mode_label}", "physml",
                    counted(field, wrap(solve_physml)), role="physml", counterpart=physml_key),
            Variant(f"torchdiffeq_{mode}", f"torchdiffeq odeint dopri5, {mode_label}", "torchdiffeq",
                    counted(field, wrap(solve_torchdiffeq)), counterpart=physml_key),
            Variant(f"torchode_{mode}", f"torchode Dopri5 + IntegralController, {mode_label}", "torchode",
                    counted(field, wrap(solve_torchode)), role="context", counterpart=physml_key),
            Variant(f"network_alone_{mode}",
                    f"network alone, {physml_stats['nfe']} chained evaluations (no solver), {mode_label}",
                    "floor", counted(field, wrap(network_alone)), role="floor", counterpart=physml_key),
        ]
    timings = time_variants("a", variants, repeats)

    log("[a] float64 SciPy reference (state and dL/dy0)")
    reference = neural_ode_reference(net, y0, parameters["t_end"], parameters["reference"])

    rows = []
    for variant in variants:
        timing = timings[variant.key]
        outcome = timing["outcome"]
        row = base_row(variant, timing)
        row["mode"] = "forward" if variant.key.endswith("_forward") else "forward_backward"
        row["batched_calls"] = outcome["calls"]
        row["nfe"] = outcome["calls"]
        if variant.role == "floor":
            row["steps_note"] = "–"
            row["error_final_max_abs"] = row["error_final_rms"] = None
            rows.append(row)
            continue
        row["error_final_max_abs"] = max_abs(outcome["final"].to(torch.float64) - reference["final"])
        row["error_final_rms"] = rms(outcome["final"].to(torch.float64) - reference["final"])
        if "grad_y0" in outcome:
            difference = outcome["grad_y0"].to(torch.float64) - reference["grad_y0"]
            row["error_grad_y0_max_abs"] = max_abs(difference)
            row["error_grad_y0_relative"] = max_abs(difference) / max_abs(reference["grad_y0"])
        if variant.library == "physml":
            row["solver_stats"] = physml_stats
            row["nfe"] = physml_stats["nfe"]
        if variant.library == "torchode":
            steps = outcome["steps_per_sample"]
            row["steps_max"] = int(steps.max())
            row["steps_mean"] = float(steps.double().mean())
            row["status_all_success"] = bool((outcome["status"] == 0).all())
        rows.append(row)
    attach_ratios(rows)
    notes = [
        "NFE: physml from solve_ode statistics (same settings, untimed run), torchdiffeq and torchode by "
        "counting calls of the vector field (torchode: batched calls, one per stage for the whole batch).",
        f"Float64 reference: SciPy {parameters['reference']['method']} at rtol = atol = "
        f"{parameters['reference']['rtol']:g} ({reference['nfev']} evaluations).",
    ]
    return {"title": "a. Small neural ODE (diffrax's benchmark)", "parameters": parameters, "rows": rows,
            "reference": {"nfev": reference["nfev"],
                          "final_max_abs": max_abs(reference["final"]),
                          "grad_y0_max_abs": max_abs(reference["grad_y0"])},
            "notes": notes}


# ============================================================================ workload b


class VanDerPol(torch.nn.Module):
    """Van der Pol oscillator x'' = mu (1 - x²) x' - x as a first-order system; counts its calls."""

    def __init__(self, mu: float):
        super().__init__()
        self.mu = mu
        self.calls = 0

    def forward(self, t, y):
        self.calls += 1
        position, velocity = y[..., 0], y[..., 1]
        return torch.stack((velocity, self.mu * (1 - position**2) * velocity - position), dim=-1)


def van_der_pol_reference(mu: float, y0: np.ndarray, times: np.ndarray, method: str, rtol: float,
                          atol: float) -> np.ndarray:
    """SciPy solution of one Van der Pol member at ``times``, shape ``(len(times), 2)``."""

    def rhs(t, y):
        return [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]]

    def jacobian(t, y):
        return [[0.0, 1.0], [-2.0 * mu * y[0] * y[1] - 1.0, mu * (1 - y[0] ** 2)]]

    options = {"jac": jacobian} if method in ("Radau", "BDF", "LSODA") else {}
    solution = solve_ivp(rhs, (float(times[0]), float(times[-1])), y0, method=method, t_eval=times,
                         rtol=rtol, atol=atol, **options)
    if not solution.success:
        raise RuntimeError(f"SciPy {method} reference for Van der Pol failed: {solution.message}")
    return solution.y.T


def workload_van_der_pol(parameters: dict, repeats: int) -> dict:
    """Workload b: Van der Pol batch, torchdiffeq joint dopri5 versus per-sample torchode and physml.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters()["b"]``.
    repeats : int
        Timed rounds (3 is the documented minimum for this slow workload).

    Returns
    -------
    dict
        ``rows``, ``reference`` (self-consistency of the SciPy reference) and ``notes``.
    """
    dtype = getattr(torch, parameters["dtype"])
    generator = torch.Generator().manual_seed(parameters["seed"])
    batch = parameters["batch"]
    y0 = parameters["initial_std"] * torch.randn(batch, 2, generator=generator, dtype=dtype)
    times = torch.linspace(0.0, parameters["t_end"], parameters["n_output_times"], dtype=dtype)
    t_eval = times.repeat(batch, 1)
    rtol, atol = parameters["rtol"], parameters["atol"]
    field = VanDerPol(parameters["mu"])
    torchode_dopri5 = torchode_solver(field, rtol, atol, "dopri5")

    def torchdiffeq_joint():
        with torch.no_grad():
            ys = torchdiffeq.odeint(field, y0, times, rtol=rtol, atol=atol, method="dopri5")
        return {"ys": ys}

    def torchode_per_sample():
        with torch.no_grad():
            solution = torchode_solve(torchode_dopri5, y0, t_eval)
        return {"ys": solution.ys.transpose(0, 1), "steps_per_sample": solution.stats["n_steps"],
                "success": solution.status == 0}

    def physml_solve(method: str, per_sample: bool):
        def run():
            with torch.no_grad():
                solution = physml.solve_ode(field, y0, times, method=method, rtol=rtol, atol=atol,
                                            per_sample=per_sample)
            return {"ys": solution.ys, "stats": solution.stats, "status": solution.status}

        return run

    key = "physml_dopri5_per_sample"
    variants = [
        Variant(key, "physml solve_ode dopri5, per_sample=True", "physml",
                counted(field, physml_solve("dopri5", True)), role="physml", counterpart=key),
        Variant("physml_tsit5_per_sample", "physml solve_ode tsit5, per_sample=True", "physml",
                counted(field, physml_solve("tsit5", True)), role="context", counterpart=key),
        Variant("torchode_dopri5_per_sample", "torchode Dopri5 + IntegralController (per sample)", "torchode",
                counted(field, torchode_per_sample), counterpart=key),
        Variant("torchdiffeq_dopri5_joint", "torchdiffeq odeint dopri5 (joint batch step)", "torchdiffeq",
                counted(field, torchdiffeq_joint), counterpart=key),
    ]
    if parameters["include_physml_joint"]:
        variants.append(Variant("physml_dopri5_joint", "physml solve_ode dopri5 (joint batch step)", "physml",
                                counted(field, physml_solve("dopri5", False)), role="context",
                                counterpart=key))
    timings = time_variants("b", variants, repeats)

    members = torch.linspace(0, batch - 1, parameters["reference_members"]).round().long()
    reference_settings = parameters["reference"]
    log(f"[b] SciPy {reference_settings['method']} reference for {len(members)} members")
    time_grid = times.to(torch.float64).numpy()
    reference, check = [], []
    for member in members.tolist():
        initial = y0[member].to(torch.float64).numpy()
        reference.append(van_der_pol_reference(parameters["mu"], initial, time_grid,
                                               reference_settings["method"], reference_settings["rtol"],
                                               reference_settings["atol"]))
    log(f"[b] SciPy {reference_settings['check_method']} cross-check of the reference (first 2 members)")
    for member in members[:2].tolist():
        initial = y0[member].to(torch.float64).numpy()
        check.append(van_der_pol_reference(
            parameters["mu"], initial, time_grid, reference_settings["check_method"],
            reference_settings["check_rtol"], reference_settings["check_atol"]))
    reference = torch.from_numpy(np.stack(reference, axis=1))  # (n_times, members, 2)
    check = torch.from_numpy(np.stack(check, axis=1))
    reference_spread = max_abs(check - reference[:, : check.shape[1]])

    rows = []
    for variant in variants:
        timing = timings[variant.key]
        outcome = timing["outcome"]
        row = base_row(variant, timing)
        row["batched_calls"] = outcome["calls"]
        if variant.library == "torchdiffeq":
            # dopri5 in torchdiffeq: 2 calls choose the first step, then 6 per step attempt (FSAL).
            joint_steps = (outcome["calls"] - 2) / 6
            steps = torch.full((batch,), joint_steps, dtype=torch.float64)
            row["row_evaluations"] = outcome["calls"] * batch
            row["success"] = True
        elif variant.library == "torchode":
            steps = outcome["steps_per_sample"].to(torch.float64)
            row["row_evaluations"] = outcome["calls"] * batch  # finished members stay in the batch (masked)
            row["success"] = bool(outcome["success"].all())
        else:
            stats = outcome["stats"]
            steps = torch.as_tensor(stats["n_steps"], dtype=torch.float64).expand(batch)
            if torch.is_tensor(stats["nfe"]):
                row["row_evaluations"] = int(stats["nfe"].sum())
                row["loop_iterations"] = int(stats["n_iterations"])
                row["rejected_sum"] = int(stats["n_rejected"].sum())
                # The members that set the iteration count, and where they start.
                hardest = torch.as_tensor(stats["n_steps"]).argsort(descending=True)[:5]
                row["hardest_members"] = [
                    {"index": int(index), "steps": int(stats["n_steps"][index]),
                     "rejected": int(stats["n_rejected"][index]), "y0": y0[index].tolist()}
                    for index in hardest
                ]
            else:
                row["row_evaluations"] = int(stats["nfe"]) * batch
                row["rejected_sum"] = int(stats["n_rejected"]) * batch
            row["success"] = outcome["status"] == "success"
        row["steps_sum"] = float(steps.sum())
        row["steps_max"] = float(steps.max())
        row["steps_mean"] = float(steps.mean())
        difference = outcome["ys"].index_select(1, members).to(torch.float64) - reference
        row["error_max_abs"] = max_abs(difference)
        row["error_rms"] = rms(difference)
        row["nan_outputs"] = int(torch.isnan(outcome["ys"]).sum())
        rows.append(row)
    attach_ratios(rows)
    period = van_der_pol_period(parameters["mu"])
    notes = [
        f"dtype {parameters['dtype']} for the state and the times of every library; y0 ~ N(0, "
        f"{parameters['initial_std']:g}²) with seed {parameters['seed']}; T = {parameters['t_end']:g} "
        f"(about {parameters['t_end'] / period:.2f} periods of the limit cycle, period ≈ {period:.1f}).",
        "Steps are step attempts (accepted + rejected) per member; with a joint step every member takes "
        "every step, so its per-member count is the joint count. 'Row evaluations' counts the batch rows "
        "passed through the vector field: torchode keeps finished members in the batch (masked), physml's "
        "per-sample mode removes them.",
        f"Error: outputs at all {parameters['n_output_times']} times for {len(members)} members "
        f"(indices {members.tolist()}) against SciPy {reference_settings['method']} at rtol = atol = "
        f"{reference_settings['rtol']:g}; SciPy {reference_settings['check_method']} at "
        f"{reference_settings['check_rtol']:g} agrees with it to {reference_spread:.1e} "
        "(max abs, 2 members).",
    ]
    return {"title": "b. Van der Pol batch (mu = 25)", "parameters": parameters, "rows": rows,
            "reference": {"members": members.tolist(), "check_max_abs_difference": reference_spread,
                          "period": period},
            "notes": notes}


def van_der_pol_period(mu: float) -> float:
    """Approximate limit-cycle period, (3 - 2 ln 2) mu + 2 pi mu^(-1/3) (1 % accurate at mu = 25)."""
    return (3 - 2 * math.log(2)) * mu + 2 * math.pi * mu ** (-1 / 3)


# ============================================================================ workload c


class OrnsteinUhlenbeck(torch.nn.Module):
    """dy = -theta y dt + sigma dW with diagonal noise, torchsde's protocol; counts drift calls.

    When ``recorded_times`` is a list, the drift appends the times it is called at (used by the
    untimed path check to learn the step grid a library used).
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, theta: float, sigma: float):
        super().__init__()
        self.theta = theta
        self.sigma = sigma
        self.calls = 0
        self.recorded_times: list[float] | None = None

    def f(self, t, y):
        self.calls += 1
        if self.recorded_times is not None:
            self.recorded_times.append(float(t))
        return -self.theta * y

    def g(self, t, y):
        return torch.full_like(y, self.sigma)


def euler_maruyama_float64(y0: torch.Tensor, times: list[float], increments, theta: float,
                           sigma: float) -> torch.Tensor:
    """Euler-Maruyama for the OU SDE in float64 on a given grid and given Brownian increments."""
    y = y0.to(torch.float64)
    for (start, stop), increment in zip(pairwise(times), increments, strict=True):
        y = y + (-theta * y) * (stop - start) + sigma * increment.to(torch.float64)
    return y


def deduplicate(times: list[float]) -> list[float]:
    """Drop consecutive repeats (a library's shape check evaluates the drift at t0 once more)."""
    out: list[float] = []
    for value in times:
        if not out or value != out[-1]:
            out.append(value)
    return out


def workload_ornstein_uhlenbeck(parameters: dict, repeats: int) -> dict:
    """Workload c: 100 Euler-Maruyama steps of an OU SDE, torchsde and hand-written loops versus physml.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters()["c"]``.
    repeats : int
        Timed rounds.

    Returns
    -------
    dict
        ``rows`` with times, drift calls, a pathwise error against float64 Euler-Maruyama on the same
        increments (untimed re-run) and z-scores of the final sample moments; and ``notes``.
    """
    dtype = getattr(torch, parameters["dtype"])
    batch, size = parameters["batch"], parameters["state"]
    theta, sigma, dt, t_end = parameters["theta"], parameters["sigma"], parameters["dt"], parameters["t_end"]
    seed = parameters["seed"]
    n_steps = math.ceil(t_end / dt - 1e-9)
    sde = OrnsteinUhlenbeck(theta, sigma)
    y0 = torch.full((batch, size), parameters["y0"], dtype=dtype)
    # float64 output times: with float32 ts, torchsde accumulates t + dt in float32, falls 7e-7 short of
    # t_end and takes a 101st sliver step; float64 keeps the work at exactly n_steps steps for everyone.
    ts = torch.tensor([0.0, t_end], dtype=torch.float64)
    ts_state_dtype = ts.to(dtype)  # B4's setting, for one context row
    predrawn = torch.randn(n_steps, batch, size, generator=torch.Generator().manual_seed(seed + 1),
                           dtype=dtype).mul_(math.sqrt(dt))

    def hand_loop(increments=None, record: list | None = None) -> torch.Tensor:
        # The straightforward loop a user writes: own time grid, own noise (unless given), same f and g.
        generator = torch.Generator().manual_seed(seed) if increments is None else None
        step = t_end / n_steps
        root_step = math.sqrt(step)
        grid = torch.linspace(0.0, t_end, n_steps + 1, dtype=dtype)
        y = y0
        for index in range(n_steps):
            t = grid[index]
            if increments is None:
                increment = torch.randn(y.shape, generator=generator, dtype=dtype) * root_step
            else:
                increment = increments[index]
            if record is not None:
                record.append(increment)
            y = y + sde.f(t, y) * step + sde.g(t, y) * increment
        return y

    def run_hand_own_noise():
        with torch.no_grad():
            return {"final": hand_loop()}

    def run_hand_predrawn():
        with torch.no_grad():
            return {"final": hand_loop(predrawn)}

    def run_physml():
        with torch.no_grad():
            ys = physml.sdeint(sde, y0, ts, method="euler", dt=dt,
                               generator=torch.Generator().manual_seed(seed))
        return {"final": ys[-1]}

    def run_torchsde_default(output_times):
        def run():
            with torch.no_grad():
                ys = torchsde.sdeint(sde, y0, output_times, method="euler", dt=dt)
            return {"final": ys[-1]}

        return run

    def run_torchsde_interval():
        with torch.no_grad():
            bm = torchsde.BrownianInterval(t0=0.0, t1=t_end, size=(batch, size), dtype=dtype, dt=dt,
                                           entropy=seed)
            ys = torchsde.sdeint(sde, y0, ts, method="euler", dt=dt, bm=bm)
        return {"final": ys[-1]}

    key = "physml_euler"
    variants = [
        Variant(key, "physml sdeint euler", "physml", counted(sde, run_physml), role="physml",
                counterpart=key),
        Variant("hand_loop_own_noise", "hand-written loop, torch.randn inside the loop", "hand-written",
                counted(sde, run_hand_own_noise), counterpart=key),
        Variant("hand_loop_predrawn", "hand-written loop, pre-drawn increments", "hand-written",
                counted(sde, run_hand_predrawn), role="context", counterpart=key),
        Variant("torchsde_brownian_interval_dt", f"torchsde sdeint euler, BrownianInterval(dt={dt:g})",
                "torchsde", counted(sde, run_torchsde_interval), role="context", counterpart=key),
        Variant("torchsde_default_bm", "torchsde sdeint euler, default Brownian motion", "torchsde",
                counted(sde, run_torchsde_default(ts)), role="context", counterpart=key),
        Variant("torchsde_default_bm_state_dtype_ts", f"torchsde sdeint euler, default Brownian motion, "
                f"{parameters['dtype']} ts", "torchsde", counted(sde, run_torchsde_default(ts_state_dtype)),
                role="context", counterpart=key),
    ]
    timings = time_variants("c", variants, repeats)

    log("[c] path check against float64 Euler-Maruyama on the same increments (untimed re-runs)")
    path_errors = ornstein_uhlenbeck_path_errors(sde, y0, ts, parameters, hand_loop, predrawn)

    # Exact law of the Euler-Maruyama recursion y <- a y + sigma dW with a = 1 - theta h (no MC-free bias).
    step = t_end / n_steps
    contraction = 1.0 - theta * step
    scheme_mean = parameters["y0"] * contraction**n_steps
    scheme_variance = sigma**2 * step * (1 - contraction ** (2 * n_steps)) / (1 - contraction**2)
    samples = batch * size
    same_draws = max_abs(timings["physml_euler"]["outcome"]["final"].to(torch.float64)
                         - timings["hand_loop_own_noise"]["outcome"]["final"].to(torch.float64))
    rows = []
    for variant in variants:
        timing = timings[variant.key]
        final = timing["outcome"]["final"].to(torch.float64)
        row = base_row(variant, timing)
        row["drift_calls"] = timing["outcome"]["calls"]
        row["path_error_max_abs"] = path_errors[variant.key]
        sample_mean, sample_variance = float(final.mean()), float(final.var())
        row["sample_mean"] = sample_mean
        row["sample_variance"] = sample_variance
        row["mean_z_score"] = (sample_mean - scheme_mean) / math.sqrt(scheme_variance / samples)
        row["variance_z_score"] = (sample_variance - scheme_variance) / (
            scheme_variance * math.sqrt(2.0 / (samples - 1)))
        rows.append(row)
    attach_ratios(rows)
    notes = [
        f"{n_steps} steps of dt = {dt:g} on [0, {t_end:g}], batch {batch} x {size}, {parameters['dtype']} "
        f"states, float64 output times ts = [0, {t_end:g}], theta = {theta:g}, sigma = {sigma:g}, "
        f"y0 = {parameters['y0']:g}. The last row passes ts in {parameters['dtype']} as B4 did: torchsde "
        "then accumulates t + dt in that precision, stops short of t_end and adds a sliver step (one more "
        "drift call), and its default Brownian motion (a BrownianInterval without dt) is queried at those "
        "times.",
        "Drift calls include one shape-check call at t0 in physml and torchsde.",
        "Path error: each library is re-run untimed with a Brownian motion whose increments can be read back "
        "(physml BrownianPath, torchsde BrownianInterval with a fixed entropy, the loops' own increments), "
        "and its final state is compared with float64 Euler-Maruyama on the same grid and increments; it "
        "measures float32 round-off and any deviation from the scheme.",
        f"z-scores: sample mean and variance of all {samples} final values against the exact law of the "
        f"Euler-Maruyama recursion (mean {scheme_mean:.6f}, variance {scheme_variance:.6f}); |z| < 3 is "
        "expected.",
        f"physml (generator seeded with {seed}, all increments in one randn call) and the loop with its own "
        f"noise (same seed, one randn call per step) end at states that differ by at most {same_draws:.1e}"
        + (": the same Brownian draws." if same_draws < 1e-4 else ": different Brownian draws."),
    ]
    return {"title": "c. Ornstein-Uhlenbeck SDE, Euler-Maruyama", "parameters": parameters, "rows": rows,
            "reference": {"scheme_mean": scheme_mean, "scheme_variance": scheme_variance,
                          "physml_minus_own_noise_loop_max_abs": same_draws},
            "notes": notes}


def ornstein_uhlenbeck_path_errors(sde, y0, ts, parameters, hand_loop, predrawn) -> dict[str, float]:
    """Max |final state − float64 Euler-Maruyama on the same grid and increments| for every variant."""
    dtype = y0.dtype
    theta, sigma, dt, t_end = parameters["theta"], parameters["sigma"], parameters["dt"], parameters["t_end"]
    seed = parameters["seed"]
    n_steps = math.ceil(t_end / dt - 1e-9)
    # The loops step by the Python float t_end / n_steps (their float32 grid only feeds t to f and g).
    loop_grid = [index * (t_end / n_steps) for index in range(n_steps + 1)]
    errors = {}
    with torch.no_grad():
        bm = physml.BrownianPath(0.0, t_end, tuple(y0.shape), dt=dt, seed=seed, dtype=dtype)
        final = physml.sdeint(sde, y0, ts, method="euler", dt=dt, bm=bm)[-1]
        grid = bm.grid.tolist()
        reference = euler_maruyama_float64(y0, grid, bm.increments_along(grid), theta, sigma)
        errors["physml_euler"] = max_abs(final.to(torch.float64) - reference)

        record: list = []
        final = hand_loop(record=record)
        errors["hand_loop_own_noise"] = max_abs(
            final.to(torch.float64) - euler_maruyama_float64(y0, loop_grid, record, theta, sigma))
        final = hand_loop(predrawn)
        errors["hand_loop_predrawn"] = max_abs(
            final.to(torch.float64) - euler_maruyama_float64(y0, loop_grid, predrawn, theta, sigma))

        checks = (("torchsde_brownian_interval_dt", dt, ts), ("torchsde_default_bm", None, ts),
                  ("torchsde_default_bm_state_dtype_ts", None, ts.to(dtype)))
        for key, bm_dt, output_times in checks:
            # sdeint's default Brownian motion is BrownianInterval(t0, t1, size, dtype) without dt;
            # here it gets a fixed entropy so that its increments can be queried afterwards.
            bm = torchsde.BrownianInterval(t0=0.0, t1=t_end, size=tuple(y0.shape), dtype=dtype, dt=bm_dt,
                                           entropy=seed)
            sde.recorded_times = []
            try:
                final = torchsde.sdeint(sde, y0, output_times, method="euler", dt=dt, bm=bm)[-1]
                step_times = deduplicate(sde.recorded_times + [float(output_times[-1])])
            finally:
                sde.recorded_times = None
            increments = [bm(start, stop) for start, stop in pairwise(step_times)]
            reference = euler_maruyama_float64(y0, step_times, increments, theta, sigma)
            errors[key] = max_abs(final.to(torch.float64) - reference)
    return errors


# ============================================================================ workload d


def workload_cost_per_evaluation(parameters: dict, repeats: int) -> dict:
    """Workload d: solver time per function evaluation against a bare forward pass of the same MLP.

    Parameters
    ----------
    parameters : dict
        ``workload_parameters()["d"]``.
    repeats : int
        Timed rounds; each round also times ``bare_forward_calls_per_round`` single forward passes.

    Returns
    -------
    dict
        ``bare_forward`` (per-call times), ``rows`` with ``per_nfe_s`` and ``per_nfe_over_bare``, ``notes``.
    """
    dtype = getattr(torch, parameters["dtype"])
    generator = torch.Generator().manual_seed(parameters["seed"])
    size, hidden, batch = parameters["state"], parameters["hidden"], parameters["batch"]
    sizes = [size] + [hidden] * parameters["hidden_layers"] + [size]
    net = seeded_mlp(sizes, getattr(torch.nn, parameters["activation"]), None, generator, dtype)
    field = CountingField(net)
    y0 = torch.randn(batch, size, generator=generator, dtype=dtype)
    t_end = parameters["t_end"]
    times = torch.tensor([0.0, t_end], dtype=dtype)
    t_eval = times.repeat(batch, 1)
    step_size = parameters["rk4_step_size"]
    rtol, atol = parameters["dopri5_rtol"], parameters["dopri5_atol"]
    rk4_options = {"step_size": step_size}
    torchode_dopri5 = torchode_solver(field, rtol, atol, "dopri5")
    calls_per_round = parameters["bare_forward_calls_per_round"]

    time_zero = torch.zeros((), dtype=dtype)

    def bare_forward():
        # The same vector field the solvers call (wrapper included), so that the ratio measures the
        # solver's own overhead and nothing else.
        call_times = []
        with torch.no_grad():
            for _ in range(calls_per_round):
                start = time.perf_counter()
                field(time_zero, y0)
                call_times.append(time.perf_counter() - start)
        return {"call_times": call_times}

    def physml_run(method, **options):
        def run():
            with torch.no_grad():
                return {"final": physml.odeint(field, y0, times, method=method, **options)[-1]}

        return run

    def torchdiffeq_run(method, **options):
        def run():
            with torch.no_grad():
                return {"final": torchdiffeq.odeint(field, y0, times, method=method, **options)[-1]}

        return run

    def torchode_run():
        with torch.no_grad():
            return {"final": torchode_solve(torchode_dopri5, y0, t_eval).ys[:, -1]}

    def hand_rk4():
        # Classical RK4 written out: the floor for a fixed-step solver's per-evaluation overhead.
        n_steps = math.ceil(t_end / step_size - 1e-9)
        h = t_end / n_steps
        y = y0
        with torch.no_grad():
            for index in range(n_steps):
                t = index * h
                k1 = field(t, y)
                k2 = field(t + h / 2, y + (h / 2) * k1)
                k3 = field(t + h / 2, y + (h / 2) * k2)
                k4 = field(t + h, y + h * k3)
                y = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        return {"final": y}

    adaptive = {"rtol": rtol, "atol": atol}

    def recorded_inputs(method, **options):
        # The states (and times) at which physml's solve evaluates the field, recorded once untimed.
        inputs = []

        def recorder(t, y):
            inputs.append((t.clone(), y.clone()))
            return field(t, y)

        with torch.no_grad():
            physml.odeint(recorder, y0, times, method=method, **options)
        return inputs

    def replay(inputs):
        def run():
            with torch.no_grad():
                for t, y in inputs:
                    field(t, y)
            return {}

        return run

    rk4_inputs = recorded_inputs("rk4", options=rk4_options)
    dopri5_inputs = recorded_inputs("dopri5", **adaptive)
    variants = [
        Variant("bare_forward", f"bare forward pass ({calls_per_round} calls per round)", "torch",
                bare_forward, role="baseline", keep_outcomes=True),
        Variant("replay_rk4", f"the field alone on the {len(rk4_inputs)} states physml rk4 evaluates (replay)",
                "torch", counted(field, replay(rk4_inputs)), role="baseline", counterpart="physml_rk4"),
        Variant("replay_dopri5",
                f"the field alone on the {len(dopri5_inputs)} states physml dopri5 evaluates (replay)",
                "torch", counted(field, replay(dopri5_inputs)), role="baseline", counterpart="physml_dopri5"),
        Variant("physml_rk4", f"physml odeint rk4, step_size={step_size:g}", "physml",
                counted(field, physml_run("rk4", options=rk4_options)), role="physml",
                counterpart="physml_rk4"),
        Variant("physml_dopri5", f"physml odeint dopri5, rtol=atol={rtol:g}", "physml",
                counted(field, physml_run("dopri5", **adaptive)), role="physml", counterpart="physml_dopri5"),
        Variant("torchdiffeq_rk4", f"torchdiffeq odeint rk4, step_size={step_size:g}", "torchdiffeq",
                counted(field, torchdiffeq_run("rk4", options=rk4_options)), role="context",
                counterpart="physml_rk4"),
        Variant("torchdiffeq_dopri5", f"torchdiffeq odeint dopri5, rtol=atol={rtol:g}", "torchdiffeq",
                counted(field, torchdiffeq_run("dopri5", **adaptive)), role="context",
                counterpart="physml_dopri5"),
        Variant("torchode_dopri5", f"torchode Dopri5 + IntegralController, rtol=atol={rtol:g}", "torchode",
                counted(field, torchode_run), role="context", counterpart="physml_dopri5"),
        Variant("hand_rk4", "hand-written classical RK4 loop", "hand-written", counted(field, hand_rk4),
                role="context", counterpart="physml_rk4"),
    ]
    timings = time_variants("d", variants, repeats)

    # Bare forward: median over every single call of every timed round (warm-up round excluded).
    bare = timings.pop("bare_forward")
    call_times = [value for outcome in bare["outcomes"] for value in outcome["call_times"]]
    bare_summary = {
        "calls_per_round": calls_per_round,
        "rounds": len(bare["times_s"]),
        "round_times_s": bare["times_s"],
        "call_times_s": call_times,
        "per_call_median_s": statistics.median(call_times),
        "per_call_min_s": min(call_times),
        "per_call_round_mean_median_s": statistics.median(bare["times_s"]) / calls_per_round,
    }
    # Per call from whole rounds (round time / calls), measured the way the solves are (total time /
    # NFE); the median of single calls is kept in the JSON for reference.
    bare_per_call = bare_summary["per_call_round_mean_median_s"]
    bare_summary["per_call_s"] = bare_per_call

    log("[d] float64 SciPy reference")
    net64 = copy.deepcopy(net).to(torch.float64)

    def rhs(t, flat):
        with torch.no_grad():
            return net64(torch.from_numpy(flat).view(batch, size)).reshape(-1).numpy()

    settings = parameters["reference"]
    solution = solve_ivp(rhs, (0.0, t_end), y0.to(torch.float64).reshape(-1).numpy(),
                         method=settings["method"], rtol=settings["rtol"], atol=settings["atol"])
    reference = torch.from_numpy(solution.y[:, -1]).view(batch, size)
    with torch.no_grad():
        physml_stats = {
            "physml_rk4": physml.solve_ode(field, y0, times, method="rk4", options=rk4_options).stats,
            "physml_dopri5": physml.solve_ode(field, y0, times, method="dopri5", **adaptive).stats,
        }

    rows = []
    for variant in variants[1:]:
        timing = timings[variant.key]
        outcome = timing["outcome"]
        row = base_row(variant, timing)
        row["nfe"] = outcome["calls"]
        if variant.key in physml_stats:
            row["solver_stats"] = {key: int(value) for key, value in physml_stats[variant.key].items()}
            row["nfe"] = row["solver_stats"]["nfe"]
        row["per_nfe_median_s"] = row["median_s"] / row["nfe"]
        row["per_nfe_min_s"] = row["min_s"] / row["nfe"]
        row["per_nfe_over_bare"] = row["per_nfe_median_s"] / bare_per_call
        if variant.role == "baseline":
            row["error_final_max_abs"] = None
        else:
            row["error_final_max_abs"] = max_abs(outcome["final"].to(torch.float64) - reference)
        rows.append(row)
    by_key = {row["key"]: row for row in rows}
    for method in ("rk4", "dopri5"):
        # Solver overhead proper: physml's time per evaluation over the field's own time on the very
        # states physml evaluates (a fixed input re-used call after call runs faster than fresh ones).
        ours, replayed = by_key[f"physml_{method}"], by_key[f"replay_{method}"]
        ours["per_nfe_over_replay"] = ours["per_nfe_median_s"] / replayed["per_nfe_median_s"]
    attach_ratios(rows)
    notes = [
        f"MLP {' -> '.join(map(str, sizes))} with {parameters['activation']}, batch {batch} x {size}, "
        f"{parameters['dtype']}, t in [0, {t_end:g}]; forward-only (torch.no_grad) everywhere.",
        f"Bare forward: {bare_per_call * 1e3:.3f} ms per call of the same vector field the solvers call, "
        f"the median over {bare_summary['rounds']} rounds of {calls_per_round} calls of round time / calls "
        f"(interleaved with the solves; the median single call takes "
        f"{bare_summary['per_call_median_s'] * 1e3:.3f} ms).",
        "Per NFE = median solve time / NFE. The targets divide it by the field's own time per call on the "
        "very states the solver evaluates (recorded once, replayed without the solver), so they measure "
        "the solver's arithmetic and bookkeeping per evaluation; a fixed input re-used call after call "
        "(the 'bare forward' row) runs a few per cent faster than fresh inputs, so it is kept as context.",
        f"Float64 reference: SciPy {settings['method']} at rtol = atol = {settings['rtol']:g}.",
    ]
    return {"title": "d. Cost per function evaluation", "parameters": parameters, "rows": rows,
            "bare_forward": bare_summary, "notes": notes}


# ============================================================================ targets


#: (workload, description, physml key, reference key, quantity, limit)
TARGETS = [
    ("a", "forward: physml ≤ 0.5 × torchdiffeq time", "physml_forward", "torchdiffeq_forward", "time", 0.5),
    ("a", "forward+backward: physml ≤ 0.5 × torchdiffeq time", "physml_forward_backward",
     "torchdiffeq_forward_backward", "time", 0.5),
    ("b", "per-sample dopri5: physml ≤ 0.5 × torchode time", "physml_dopri5_per_sample",
     "torchode_dopri5_per_sample", "time", 0.5),
    ("b", "per-sample dopri5: physml ≤ 0.25 × torchdiffeq (joint) time", "physml_dopri5_per_sample",
     "torchdiffeq_dopri5_joint", "time", 0.25),
    ("c", "Euler-Maruyama: physml ≤ 1.5 × hand-written loop time", "physml_euler", "hand_loop_own_noise",
     "time", 1.5),
    ("d", "rk4: physml time per NFE ≤ 1.05 × bare forward (the field on the same states)", "physml_rk4",
     "replay_rk4", "per_nfe_replay", 1.05),
    ("d", "dopri5: physml time per NFE ≤ 1.2 × bare forward (the field on the same states)", "physml_dopri5",
     "replay_dopri5", "per_nfe_replay", 1.2),
]


def explain_miss(target: dict, workloads: dict) -> str | None:
    """Why a target was missed, in words built from the measured numbers (``None`` if not known)."""
    rows = {row["key"]: row for row in workloads[target["workload"]]["rows"]}
    if target["workload"] == "a" and target["physml"] == "physml_forward_backward":
        floor = rows.get("network_alone_forward_backward")
        peer, ours = rows["torchdiffeq_forward_backward"], rows["physml_forward_backward"]
        if floor is None:
            return None
        floor_ratio = floor["median_s"] / peer["median_s"]
        return (
            f"The network's own forward and backward passes for the same {floor['nfe']} evaluations, with no "
            f"solver at all, take {format_seconds(floor['median_s'])} = {floor_ratio:.2f}× torchdiffeq's whole "
            f"run, so 0.5× leaves {format_seconds(0.5 * peer['median_s'] - floor['median_s'])} for the "
            f"solver. physml's solver work (time beyond that floor) is "
            f"{format_seconds(ours['median_s'] - floor['median_s'])} against torchdiffeq's "
            f"{format_seconds(peer['median_s'] - floor['median_s'])} "
            f"({(ours['median_s'] - floor['median_s']) / (peer['median_s'] - floor['median_s']):.2f}×); the "
            "rest of the gap is autograd's cost for the stage combinations (one node per non-zero Butcher "
            "coefficient), which batched or fused alternatives measured slower in eager PyTorch."
        )
    if target["workload"] == "b" and target["reference"] == "torchdiffeq_dopri5_joint":
        ours, peer = rows["physml_dopri5_per_sample"], rows["torchdiffeq_dopri5_joint"]
        joint = rows.get("physml_dopri5_joint")
        hardest = ours.get("hardest_members", [])
        starts = ", ".join(f"x0 = {member['y0'][0]:.2f} ({member['steps']} steps, {member['rejected']} "
                           "rejected)" for member in hardest)
        text = (
            f"Per-sample control runs as many loop iterations as the hardest member needs steps: "
            f"{round(ours['steps_max'])} here against a mean of {ours['steps_mean']:.0f}. The hardest members "
            f"start far from the limit cycle ({starts}) and their step counts, with few rejections, are set by "
            "the stability of an explicit method on the stiff slow manifold rather than by accuracy. Each "
            f"iteration evaluates the field {ours['batched_calls'] / ours['loop_iterations']:.1f} times plus "
            f"bookkeeping: {ours['median_s'] / ours['loop_iterations'] * 1e6:.0f} µs per iteration, against "
            f"torchdiffeq's {peer['median_s'] / peer['steps_max'] * 1e6:.0f} µs per joint step."
        )
        if joint is not None:
            text += (
                f" Even physml's joint-step loop, with no per-sample bookkeeping at all, takes "
                f"{format_seconds(joint['median_s'])} = {joint['median_s'] / peer['median_s']:.2f}× torchdiffeq "
                f"for its {round(joint['steps_max'])} steps, so 0.25× is below what an eager explicit loop over "
                "the stiffest member's steps reaches on this machine (the reference measurement, §4 B2 of "
                "solvers_generative.md, had torchdiffeq at 42 s, where this run would be 0.2×)."
            )
        return text
    if target["workload"] == "d" and target["physml"] == "physml_rk4":
        hand = rows.get("hand_rk4")
        if hand is None:
            return None
        return (
            f"A hand-written classical RK4 loop calling the same field measures "
            f"{hand['per_nfe_over_bare']:.3f}× the bare forward per evaluation (physml: "
            f"{rows['physml_rk4']['per_nfe_over_bare']:.3f}×; against the replayed field physml measures "
            f"{rows['physml_rk4']['per_nfe_over_replay']:.3f}×): the remaining few per cent are the RK4 stage "
            "arithmetic itself (seven vector adds per step on a 2000 × 2 state), which any RK4 must do."
        )
    return None


def evaluate_targets(workloads: dict) -> list[dict]:
    """Check every target whose workload ran; ratios use medians.

    Returns
    -------
    list of dict
        ``workload``, ``target``, ``measured``, ``limit``, ``met`` and ``excess`` (measured / limit - 1,
        positive when missed), plus the numerator and denominator in seconds.
    """
    checked = []
    for workload, description, physml_key, reference_key, quantity, limit in TARGETS:
        if workload not in workloads:
            continue
        rows = {row["key"]: row for row in workloads[workload]["rows"]}
        if quantity == "time":
            numerator, denominator = rows[physml_key]["median_s"], rows[reference_key]["median_s"]
        elif quantity == "per_nfe_replay":
            numerator = rows[physml_key]["per_nfe_median_s"]
            denominator = rows[reference_key]["per_nfe_median_s"]
        else:
            numerator = rows[physml_key]["per_nfe_median_s"]
            denominator = workloads[workload]["bare_forward"]["per_call_s"]
        measured = numerator / denominator
        checked.append({
            "workload": workload, "target": description, "physml": physml_key, "reference": reference_key,
            "quantity": quantity, "numerator_s": numerator, "denominator_s": denominator,
            "measured": measured, "limit": limit, "met": measured <= limit, "excess": measured / limit - 1.0,
        })
        if not checked[-1]["met"]:
            checked[-1]["why_missed"] = explain_miss(checked[-1], workloads)
    return checked


# ============================================================================ machine






def machine_description(threads: int) -> dict:
    """Hardware, software versions (with the three peer solvers) and thread settings of this run."""
    return {**provenance.machine_description(threads, packages=("torchdiffeq", "torchsde", "torchode")),
            "physml_path": str(Path(physml.__file__).resolve().parent)}


# ============================================================================ report


def format_seconds(seconds: float | None) -> str:
    """``36.1 ms``, ``0.912 ms``, ``42.2 s``: three significant digits."""
    if seconds is None:
        return "–"
    if seconds >= 1.0:
        return f"{seconds:.3g} s" if seconds < 1000 else f"{seconds:.0f} s"
    return f"{seconds * 1e3:.3g} ms"


def format_number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}".replace(",", " ")
    return f"{value:.{digits}g}"


def format_error(value) -> str:
    return "–" if value is None else f"{value:.2e}"


def format_ratio(value) -> str:
    return "–" if value is None else f"{value:.3g}×"


def markdown_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def ratio_cell(row: dict) -> str:
    if row["key"] == row.get("counterpart"):
        return "1 (physml)"
    return format_ratio(row.get("physml_over_row"))


def workload_table(key: str, workload: dict) -> list[str]:
    """The markdown table of one workload, from its JSON data."""
    rows = workload["rows"]
    if key == "a":
        headers = ["variant", "median", "min", "NFE", "steps", "max abs error y(T)", "max abs error dL/dy0",
                   "physml / row"]
        cells = []
        for row in rows:
            if "steps_note" in row:
                steps = row["steps_note"]
            elif "solver_stats" in row:
                stats = row["solver_stats"]
                steps = f"{stats['n_accepted']} acc. + {stats['n_rejected']} rej."
            elif "steps_max" in row:
                steps = f"max {row['steps_max']}, mean {row['steps_mean']:.1f} per sample"
            else:
                steps = f"{(row['nfe'] - 2) / 6:.0f} (from NFE)"
            cells.append([row["label"], format_seconds(row["median_s"]), format_seconds(row["min_s"]),
                          format_number(row["nfe"]), steps, format_error(row["error_final_max_abs"]),
                          format_error(row.get("error_grad_y0_max_abs")), ratio_cell(row)])
        return markdown_table(headers, cells)
    if key == "b":
        headers = ["variant", "median", "min", "batched f calls", "row evaluations", "steps sum", "steps max",
                   "steps mean", "max abs error", "RMS error", "physml / row"]
        cells = [[row["label"], format_seconds(row["median_s"]), format_seconds(row["min_s"]),
                  format_number(row["batched_calls"]), format_number(row["row_evaluations"]),
                  format_number(round(row["steps_sum"])), format_number(round(row["steps_max"])),
                  f"{row['steps_mean']:.1f}", format_error(row["error_max_abs"]),
                  format_error(row["error_rms"]), ratio_cell(row)] for row in rows]
        return markdown_table(headers, cells)
    if key == "c":
        headers = ["variant", "median", "min", "drift calls", "path error vs float64 EM", "mean z",
                   "variance z", "physml / row"]
        cells = [[row["label"], format_seconds(row["median_s"]), format_seconds(row["min_s"]),
                  format_number(row["drift_calls"]), format_error(row["path_error_max_abs"]),
                  f"{row['mean_z_score']:+.2f}", f"{row['variance_z_score']:+.2f}", ratio_cell(row)]
                 for row in rows]
        return markdown_table(headers, cells)
    if key == "d":
        headers = ["variant", "median", "min", "NFE", "per NFE (median)", "per NFE (min)",
                   "per NFE / bare forward", "per NFE / replay", "max abs error y(T)", "physml / row"]
        bare = workload["bare_forward"]
        cells = [["bare forward pass, one fixed input (per call)", format_seconds(bare["per_call_s"]),
                  format_seconds(bare["per_call_min_s"]), "1", "–", "–", "1", "–", "–", "–"]]
        cells += [[row["label"], format_seconds(row["median_s"]), format_seconds(row["min_s"]),
                   format_number(row["nfe"]), format_seconds(row["per_nfe_median_s"]),
                   format_seconds(row["per_nfe_min_s"]), format_ratio(row["per_nfe_over_bare"]),
                   format_ratio(row.get("per_nfe_over_replay")) if row.get("per_nfe_over_replay") else "–",
                   format_error(row["error_final_max_abs"]), ratio_cell(row)] for row in rows]
        return markdown_table(headers, cells)
    raise ValueError(f"unknown workload {key!r}")


def describe_parameters(parameters: dict) -> str:
    """One line listing a workload's scalar parameters."""
    items = [f"{name} = {value}" for name, value in parameters.items()
             if name != "description" and not isinstance(value, dict)]
    return "; ".join(items)


def render_markdown(data: dict) -> str:
    """The markdown report, generated from the JSON data only."""
    machine = data["machine"]
    lines = ["# Solver benchmark: physml against torchdiffeq, torchode and torchsde", ""]
    if data["quick"]:
        lines += ["> **Quick smoke run (`--quick`)**: shrunken workloads and few repeats. These numbers are "
                  "not the benchmark; run without `--quick` on a quiet machine for the committed results.",
                  ""]
    lines += [
        f"Generated by `benchmarks/solvers.py` from `{data['json_name']}` on {data['date_utc']} "
        f"(git {data['git_sha']}); total wall time {data['wall_time_s']:.0f} s.",
        "",
        f"Command: `{data['command']}`",
        "",
        "## Machine",
        "",
    ]
    load_start = machine.get("load_average_start")
    load_end = machine.get("load_average_end")
    machine_rows = [
        ["CPU", machine["cpu_model"]],
        ["cores (logical / usable)", f"{machine['logical_cores']} / {machine['usable_cores']}"],
        ["platform", machine["platform"]],
        ["Python", machine["python"]],
        ["torch", machine["torch"]],
        ["torchdiffeq", machine["torchdiffeq"]],
        ["torchsde", machine["torchsde"]],
        ["torchode", machine["torchode"]],
        ["numpy / scipy", f"{machine['numpy']} / {machine['scipy']}"],
        ["physml", f"{machine['physml']} (git {data['git_sha']})"],
        ["torch threads", f"{machine['torch_threads']} (OMP_NUM_THREADS={machine['omp_num_threads_env']})"],
        ["load average (1, 5, 15 min)", f"start {format_load(load_start)}; end {format_load(load_end)}"],
        ["date (UTC)", data["date_utc"]],
    ]
    lines += markdown_table(["", ""], machine_rows)
    protocol = data["protocol"]
    repeats = ", ".join(f"{key}: {value}" for key, value in protocol["repeats"].items())
    lines += [
        "",
        "## Protocol",
        "",
        f"All libraries run in one process on the same inputs. Each variant runs once as a warm-up, then "
        f"{protocol['order']} rounds time every variant once per round (timed runs per workload: {repeats}). "
        f"Times are wall-clock (`{protocol['timer']}`), {protocol['gc']}; the tables give the median and the "
        "minimum. 'physml / row' is the physml counterpart's median time divided by the row's median time "
        "(below 1: physml is faster). Forward-only runs are inside `torch.no_grad()` for every library.",
        "",
    ]
    for key, workload in data["workloads"].items():
        lines += [f"## {workload['title']}", "", describe_parameters(workload["parameters"]), ""]
        lines += workload_table(key, workload)
        lines += [""] + [f"- {note}" for note in workload["notes"]] + [""]
    lines += ["## Targets", ""]
    cells = []
    for target in data["targets"]:
        if target["met"]:
            verdict, shortfall = "met", "–"
        else:
            verdict = "**missed**"
            shortfall = (f"{target['excess'] * 100:.0f} % over the limit (physml needs "
                         f"{target['measured'] / target['limit']:.2f}× less time)")
        cells.append([f"{target['workload']}: {target['target']}", f"{target['measured']:.3f}",
                      f"{target['limit']:g}", verdict, shortfall])
    lines += markdown_table(["target", "measured ratio", "limit", "result", "missed by"], cells)
    met = sum(target["met"] for target in data["targets"])
    lines += ["", f"{met} of {len(data['targets'])} targets met.", ""]
    explained = [target for target in data["targets"] if not target["met"] and target.get("why_missed")]
    if explained:
        lines += ["### Why the missed targets are missed", ""]
        lines += [f"- **{target['workload']}: {target['target']}** — {target['why_missed']}" for target in explained]
        lines += [""]
    return "\n".join(lines)


def format_load(load) -> str:
    return "–" if load is None else ", ".join(f"{value:.2f}" for value in load)


def write_report(data: dict, json_path: Path, output: Path, render) -> None:
    """Write the JSON, then the markdown rendered from exactly what that JSON holds (both atomically)."""
    text = json.dumps(data, indent=1, allow_nan=True)
    atomic_write(json_path, text + "\n")
    atomic_write(output, render(json.loads(text)))
    log(f"wrote {json_path} and {output}")




# ============================================================================ command line


WORKLOAD_FUNCTIONS = {
    "a": workload_small_neural_ode,
    "b": workload_van_der_pol,
    "c": workload_ornstein_uhlenbeck,
    "d": workload_cost_per_evaluation,
}


def check_common_arguments(parser: argparse.ArgumentParser, arguments: argparse.Namespace,
                           workloads) -> None:
    """Check ``--only`` (kept in ``workloads`` order), ``--threads`` and ``--repeats``; shared by the scripts."""
    only = [item.strip() for item in arguments.only.split(",") if item.strip()]
    unknown = sorted(set(only) - set(workloads))
    if unknown or not only:
        parser.error(f"--only must list workloads among {','.join(workloads)}, got {arguments.only!r}")
    arguments.only = [key for key in workloads if key in only]
    if arguments.threads < 1:
        parser.error(f"--threads must be a positive integer, got {arguments.threads}")
    if arguments.repeats < 1:
        parser.error(f"--repeats must be a positive integer, got {arguments.repeats}")


def benchmark_parser(doc: str, workloads, default_output: Path, default_repeats: int,
                     minimum_repeats: int) -> argparse.ArgumentParser:
    """The command line every benchmark script shares: threads, repeats, quick, only, output, from-json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--repeats", type=int, default=default_repeats,
                        help=f"timed runs per variant after one warm-up (default {default_repeats}, minimum "
                             f"{minimum_repeats} unless --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke version of every workload")
    parser.add_argument("--only", default=",".join(workloads),
                        help=f"comma-separated subset of {','.join(workloads)}")
    parser.add_argument("--output", type=Path, default=default_output,
                        help="markdown report; the JSON goes next to it with the suffix .json")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="only re-render the markdown (at --output) from this JSON file")
    return parser


def parse_benchmark_arguments(parser: argparse.ArgumentParser, argv, workloads,
                              minimum_repeats: int) -> argparse.Namespace:
    """Parse and check a :func:`benchmark_parser` command line (a full run needs ``minimum_repeats``)."""
    arguments = parser.parse_args(argv)
    check_common_arguments(parser, arguments, workloads)
    if not arguments.quick and arguments.repeats < minimum_repeats:
        parser.error(f"--repeats {arguments.repeats} is below the minimum {minimum_repeats} of a full run; "
                     "use --quick for smoke tests")
    return arguments


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per variant after one warm-up (default 5; workload b: 3)")
    parser.add_argument("--workload-repeats", default="",
                        help="per-workload override, e.g. 'b=5,d=10' (minimum 5, 3 for b, unless --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke version of every workload")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated subset of a,b,c,d")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="markdown report; the JSON goes next to it with the suffix .json")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="only re-render the markdown (at --output) from this JSON file")
    arguments = parser.parse_args(argv)

    check_common_arguments(parser, arguments, WORKLOADS)

    repeats = {key: arguments.repeats for key in WORKLOADS}
    repeats["b"] = min(arguments.repeats, DEFAULT_REPEATS_B)
    for item in filter(None, (part.strip() for part in arguments.workload_repeats.split(","))):
        name, _, value = item.partition("=")
        if name not in WORKLOADS or not value.isdigit() or int(value) < 1:
            parser.error(f"--workload-repeats expects entries like 'b=5', got {item!r}")
        repeats[name] = int(value)
    if not arguments.quick:
        too_few = {key: repeats[key] for key in arguments.only if repeats[key] < MINIMUM_REPEATS[key]}
        if too_few:
            parser.error(f"timed runs {too_few} are below the minimum {MINIMUM_REPEATS} of a full run; "
                         "use --quick for smoke tests")
    arguments.repeats_per_workload = repeats
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    output = arguments.output
    json_path = output.with_suffix(".json")
    if arguments.from_json is not None:
        data = json.loads(arguments.from_json.read_text(encoding="utf-8"))
        atomic_write(output, render_markdown(data))
        log(f"re-rendered {output} from {arguments.from_json}")
        return 0

    require_torchode()
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
        workloads[key] = WORKLOAD_FUNCTIONS[key](parameters[key], arguments.repeats_per_workload[key])
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    data = {
        "benchmark": "solvers",
        "schema_version": SCHEMA_VERSION,
        "quick": arguments.quick,
        "command": " ".join(["python benchmarks/solvers.py", *(sys.argv[1:] if argv is None else argv)]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "git_sha": git_revision(REPOSITORY_ROOT),
        "wall_time_s": time.perf_counter() - started,
        "json_name": json_path.name,
        "machine": machine,
        "protocol": {
            "warmup_runs": 1,
            "repeats": {key: arguments.repeats_per_workload[key] for key in arguments.only},
            "order": "round-robin",
            "timer": "time.perf_counter",
            "gc": "garbage collector collected before and disabled during each timed run",
            "statistic": "median",
        },
        "config": parameters,
        "workloads": workloads,
    }
    data["targets"] = evaluate_targets(workloads)
    write_report(data, json_path, output, render_markdown)
    for target in data["targets"]:
        log(f"target {target['workload']}: {target['target']}: measured {target['measured']:.3f} "
            f"-> {'met' if target['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
