"""PDE-Net 2.0 (Long, Lu, Dong, J. Comput. Phys. 2019) on its 2-D Burgers setup, with physml.models.pdenet.

u_t = −u u_x − v u_y + 0.05 Δu, v_t = −u v_x − v v_y + 0.05 Δv on the periodic square [0, 2π)², observed on
32 × 32 (the ``pdenet_burgers2d`` dataset's system: generated on 128², every 4th point kept) every δt = 0.01
with noise 0.001 std.  PDE-Net 2.0 learns 5 × 5 moment-constrained filters (second order) and one
five-layer SymNet per field, pseudo-upwind, block by block (δt-blocks of growing length, fresh data per
block, full-batch L-BFGS in float64).  Rows: the learned coefficients against the true ones —
``transport_rel_error_max`` (u u_x, v u_y, u v_x, v v_y against −1), ``diffusion_rel_error_max`` (the four
Laplacian coefficients against 0.05), ``n_spurious_terms`` (other terms above 1e-2 in magnitude) — and
``prediction_error_t4``, the paper's variance-normalised error after 400 steps (t = 4) from t = 0 (median
over the test trajectories).  Seeds draw the SymNet initialisation, the training and test trajectories
and the noise.

Run ``python studies/pdenet_burgers2d.py --budget cpu`` (about 45 min on two cores).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from physml.data import load_spec  # noqa: E402
from physml.models import PAPER_BLOCKS, PDENet2, prediction_error, train_pdenet  # noqa: E402
from physml.systems import get_system  # noqa: E402
from studies.harness import Study, format_value, log, markdown_table  # noqa: E402

study = Study("pdenet_burgers2d", description=__doc__)

DATASET = "pdenet_burgers2d"
NOISE = 0.001
TRANSPORT = {"u": ["u u_x", "v u_y"], "v": ["u v_x", "v v_y"]}
DIFFUSION = {"u": ["u_xx", "u_yy"], "v": ["v_xx", "v_yy"]}
SPURIOUS_THRESHOLD = 1e-2

BUDGETS = {
    # generation points, internal step, batch, blocks, L-BFGS iterations, test trajectories, test steps
    "smoke": {
        "points": 32,
        "internal_step": 5e-3,
        "batch": 4,
        "blocks": [1],
        "max_iterations": 3,
        "hidden_layers": 5,
        "test_samples": 2,
        "test_steps": 20,
        "data_start_time": 0.1,
    },
    "mini": {
        "points": 128,
        "internal_step": 5e-3,
        "batch": 28,
        "blocks": [1, 2, 3],
        "max_iterations": 60,
        "hidden_layers": 5,
        "test_samples": 8,
        "test_steps": 400,
        "data_start_time": 1.0,
    },
    "cpu": {
        "points": 128,
        "internal_step": 5e-3,
        "batch": 28,
        "blocks": [1, 2, 3, 4, 5, 6, 9, 12, 15],
        "max_iterations": 80,
        "hidden_layers": 5,
        "test_samples": 20,
        "test_steps": 400,
        "data_start_time": 1.0,
    },
    "paper": {
        "points": 128,
        "internal_step": 2.5e-3,
        "batch": 28,
        "blocks": list(PAPER_BLOCKS),
        "max_iterations": 2000,
        "hidden_layers": 5,
        "test_samples": 1000,
        "test_steps": 400,
        "data_start_time": 1.0,
    },
}


def make_system(settings: dict):
    """The dataset's system (parameters and options from the ``pdenet_burgers2d`` spec)."""
    spec = load_spec(DATASET)
    options = {**spec.system_options, "points": settings["points"], "time_step": settings["internal_step"]}
    system = get_system(spec.system)(**options, **spec.parameters, dtype=torch.float64)
    stride = spec.output.spatial_stride * settings["points"] // spec.system_options["points"]
    return spec, system, max(1, stride)


def trajectories(
    system, stride: int, count: int, steps: int, generator, start_time: float, save_interval: float
):
    """``(steps + 1, count, 2, 32, 32)`` observed states: half the batch starts at ``start_time`` (the
    paper's data_start_time), half at t = 0."""
    initial = system.sample_initial_conditions(count, generator)
    late = count // 2
    if late and start_time > 0:
        evolved = system.simulate(initial[:late], [0.0, start_time]).ys[-1]
        initial = torch.cat([evolved, initial[late:]])
    times = [save_interval * k for k in range(steps + 1)]
    return system.simulate(initial, times).ys[..., ::stride, ::stride].contiguous()


def with_noise(states: torch.Tensor, generator) -> torch.Tensor:
    """u + ε std_grid(u) N(0, 1) per sample and field, at every frame (the paper's noise model)."""
    scale = states.std(dim=(-2, -1), keepdim=True)
    return states + NOISE * scale * torch.randn(states.shape, generator=generator, dtype=states.dtype)


def coefficient_metrics(terms: dict, viscosity: float) -> dict:
    if not all(math.isfinite(value) for group in terms.values() for value in group.values()):
        # A diverged training run: every metric fails (NaN is counted as failed, never averaged).
        return {"transport_rel_error_max": math.nan, "diffusion_rel_error_max": math.nan,
                "n_spurious_terms": math.nan, "spurious": ["non-finite coefficients (training diverged)"]}
    transport = [abs(terms[name].get(term, 0.0) + 1.0) for name, group in TRANSPORT.items() for term in group]
    diffusion = [
        abs(terms[name].get(term, 0.0) - viscosity) / viscosity
        for name, group in DIFFUSION.items()
        for term in group
    ]
    expected = {name: set(TRANSPORT[name]) | set(DIFFUSION[name]) for name in terms}
    spurious = [
        f"{name}_t: {term} ({value:+.4f})"
        for name, group in terms.items()
        for term, value in group.items()
        if term not in expected[name] and abs(value) > SPURIOUS_THRESHOLD
    ]
    return {
        "transport_rel_error_max": max(transport),
        "diffusion_rel_error_max": max(diffusion),
        "n_spurious_terms": len(spurious),
        "spurious": spurious,
    }


def run(seed: int, settings: dict) -> dict:
    spec, system, stride = make_system(settings)
    viscosity = float(spec.parameters["viscosity"])
    save_interval = spec.time.save_interval
    observed_points = settings["points"] // stride
    sequence = np.random.SeedSequence([seed, 1812044261])
    model_seed, data_seed, test_seed, noise_seed = (int(s.generate_state(1)[0]) for s in sequence.spawn(4))
    data_generator = torch.Generator().manual_seed(data_seed)
    noise_generator = torch.Generator().manual_seed(noise_seed)
    model = PDENet2(
        ("u", "v"),
        ("y", "x"),
        spacing=(2 * math.pi / observed_points,) * 2,
        time_step=save_interval,
        kernel_size=5,
        max_order=2,
        accuracy=2,
        hidden_layers=settings["hidden_layers"],
        scheme="upwind",
        generator=torch.Generator().manual_seed(model_seed),
    )

    def sample_block(block: int, steps: int) -> torch.Tensor:
        clean = trajectories(
            system,
            stride,
            settings["batch"],
            steps,
            data_generator,
            settings["data_start_time"],
            save_interval,
        )
        return with_noise(clean, noise_generator)

    def report(record):
        log(
            f"seed {seed} block {record.block} ({record.steps} steps): loss {record.loss:.4g}, "
            f"{record.iterations} iterations, {record.seconds:.0f} s; {model.equations(threshold=1e-2)[0]}"
        )

    started = time.perf_counter()
    records = train_pdenet(
        model, sample_block, settings["blocks"], max_iterations=settings["max_iterations"], callback=report
    )
    training_seconds = time.perf_counter() - started
    terms = model.expression(max_degree=4)
    metrics = coefficient_metrics(terms, viscosity)

    # Test: fresh trajectories from t = 0, rolled out for test_steps δt-steps from the clean first frame.
    test_generator = torch.Generator().manual_seed(test_seed)
    test = trajectories(
        system, stride, settings["test_samples"], settings["test_steps"], test_generator, 0.0, save_interval
    )
    with torch.no_grad():
        predicted = torch.cat(
            [
                model(test[0, start : start + 10], settings["test_steps"])
                for start in range(0, test.shape[1], 10)
            ],
            dim=1,
        )
    errors = prediction_error(predicted, test).numpy()  # (time, sample)
    residual = model.expression_residual(test[0])
    every = max(1, settings["test_steps"] // 80)
    fields = {}
    if seed == study.arguments.seeds[0]:
        for step in sorted({0, settings["test_steps"] // 4, settings["test_steps"]}):
            fields[str(step)] = {
                "true": test[step, 0, 0].tolist(),
                "predicted": predicted[step, 0, 0].tolist(),
            }
    final = errors[-1]
    return {
        **{
            key: metrics[key]
            for key in ("transport_rel_error_max", "diffusion_rel_error_max", "n_spurious_terms")
        },
        "prediction_error_t4": float(np.median(final))
        if np.all(np.isfinite(final))
        else float(np.nanmedian(final)),
        "prediction_error_t4_quantiles": np.nanquantile(final, [0.1, 0.5, 0.9]).tolist(),
        "n_test_diverged": int(np.sum(~np.isfinite(final))),
        "spurious": metrics["spurious"],
        "equations": model.equations(threshold=1e-3),
        "coefficients": {
            name: {term: value for term, value in group.items() if abs(value) > 1e-4}
            for name, group in terms.items()
        },
        "expression_residual": residual,
        "curve_times": [save_interval * k for k in range(0, settings["test_steps"] + 1, every)],
        "curve_quantiles": np.nanquantile(errors[::every], [0.1, 0.5, 0.9], axis=1).T.tolist(),
        "blocks": [vars(record) for record in records],
        "training_seconds": training_seconds,
        "fields": fields,
    }


def figure(outcomes: dict, path: Path, horizon: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = outcomes[min(outcomes)]
    steps = sorted(first["fields"], key=int)
    fig = plt.figure(figsize=(4.0 + 2.6 * len(steps), 5.2))
    grid = fig.add_gridspec(2, 1 + len(steps), width_ratios=[1.6] + [1] * len(steps))
    axis = fig.add_subplot(grid[:, 0])
    for seed, outcome in sorted(outcomes.items()):
        quantiles = np.array(outcome["curve_quantiles"])
        times = np.array(outcome["curve_times"])
        line = axis.semilogy(times, quantiles[:, 1], label=f"seed {seed} (median)")[0]
        axis.fill_between(times, quantiles[:, 0], quantiles[:, 2], color=line.get_color(), alpha=0.2)
    axis.set_xlabel("t")
    axis.set_ylabel("variance-normalised error")
    axis.set_title(f"prediction error up to t = {horizon:g} (10–90 % band)")
    axis.legend(fontsize=7)
    for column, step in enumerate(steps, start=1):
        true = np.array(first["fields"][step]["true"])
        for row, kind in enumerate(("true", "predicted")):
            panel = fig.add_subplot(grid[row, column])
            image = panel.imshow(np.array(first["fields"][step][kind]), origin="lower", cmap="RdBu_r",
                                 vmin=true.min(), vmax=true.max())
            panel.set_title(f"u {kind}, t = {int(step) * 0.01:g}", fontsize=8)
            panel.set_xticks([])
            panel.set_yticks([])
            fig.colorbar(image, ax=panel, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def equations_section(data: dict) -> list[str]:
    lines = ["## Learned equations", ""]
    rows = [
        [
            str(entry["seed"]),
            "<br>".join(entry["equations"]),
            ", ".join(entry["spurious"]) or "–",
            format_value(entry["expression_residual"]),
        ]
        for entry in data["config"]["learned"]
    ]
    lines += markdown_table(
        ["seed", "learned (terms above 1e-3)", "spurious terms above 1e-2", "degree > 4 remainder"], rows
    )
    return lines + [
        "",
        "Paper (slides, unverified against the JCP table): u_t = −0.98 u u_x − 0.97 v u_y "
        "+ 0.054 u_xx + 0.054 u_yy; a MindSpore re-implementation: u_t = −0.984 u u_x − 0.985 v u_y "
        "+ 0.0502 u_yy + 0.0506 u_xx − 0.005 u.",
        "",
    ]


def main(argv=None) -> dict:
    arguments = study.parse(argv)
    settings = BUDGETS[arguments.budget]
    outcomes = {}
    for seed in arguments.seeds:
        outcome = study.run_unit(("pdenet", seed), lambda seed=seed: run(seed, settings), settings)
        outcomes[seed] = outcome
        study.record(
            "pdenet",
            {
                key: outcome[key]
                for key in (
                    "transport_rel_error_max",
                    "diffusion_rel_error_max",
                    "n_spurious_terms",
                    "prediction_error_t4",
                )
            },
            seed=seed,
        )
    horizon = settings["test_steps"] * 0.01
    figure(outcomes, study.path(".png"), horizon)
    transport = [outcome["transport_rel_error_max"] for outcome in outcomes.values()]
    diffusion = [outcome["diffusion_rel_error_max"] for outcome in outcomes.values()]
    spurious = [outcome["n_spurious_terms"] for outcome in outcomes.values()]

    def seeds_over(values, bound):
        """Seeds outside the bound; a failed (NaN) seed is outside every bound."""
        return [seed for seed, value in zip(outcomes, values, strict=True) if not value <= bound]

    def worst(values):
        return math.nan if any(not math.isfinite(value) for value in values) else max(values)

    targets = [
        {
            "target": "transport coefficients within 3 % of −1 (every seed)",
            "met": not seeds_over(transport, 0.03),
            "measured": f"worst {100 * worst(transport):.2f} % (seeds: "
            + ", ".join(f"{100 * value:.2f} %" for value in transport)
            + ")",
            "why": ""
            if not seeds_over(transport, 0.03)
            else f"seeds {seeds_over(transport, 0.03)} exceed 3 %; training ran "
            f"{len(settings['blocks'])} blocks of at most {max(settings['blocks'])} steps with "
            f"{settings['max_iterations']} L-BFGS iterations each (the paper: 16 blocks up to 40 steps, "
            "2000 BFGS iterations)",
        },
        {
            "target": "diffusion coefficients within 10 % of 0.05 (every seed)",
            "met": not seeds_over(diffusion, 0.10),
            "measured": f"worst {100 * worst(diffusion):.2f} % (seeds: "
            + ", ".join(f"{100 * value:.2f} %" for value in diffusion)
            + ")",
            "why": ""
            if not seeds_over(diffusion, 0.10)
            else f"seeds {seeds_over(diffusion, 0.10)} exceed 10 % with the reduced schedule "
            "(see deviations)",
        },
        {
            "target": "no spurious term above 1e-2 in magnitude",
            "met": not seeds_over(spurious, 0),
            "measured": f"{sum(spurious)} spurious terms over {len(spurious)} seeds",
            "why": ""
            if not seeds_over(spurious, 0)
            else "; ".join(
                f"seed {seed}: {', '.join(outcome['spurious'])}"
                for seed, outcome in outcomes.items()
                if outcome["spurious"]
            )
            + f". The symbolic sparsity weight is n · 0.005 for a block of n steps; this schedule stops at "
            f"n = {max(settings['blocks'])} with {settings['max_iterations']} L-BFGS iterations per block "
            "(the paper: n = 40, 2000 BFGS iterations), so small terms are penalised less and for fewer "
            "iterations.",
        },
    ]
    if arguments.budget == "smoke":
        for target in targets:
            target["measured"] += " (smoke budget: not a result)"
    # The slides' coefficients (−0.98, −0.97; 0.054, 0.054) as the paper's errors.
    paper = {
        ("pdenet", "transport_rel_error_max"): 0.03,
        ("pdenet", "diffusion_rel_error_max"): 0.08,
        ("pdenet", "n_spurious_terms"): 0.0,
    }
    config = {
        **settings,
        "dataset": DATASET,
        "noise": NOISE,
        "kernel_size": 5,
        "max_order": 2,
        "accuracy": 2,
        "scheme": "upwind",
        "warmup_block": True,
        "sparsity": 0.005,
        "moment_sparsity": 1e-3,
        "spurious_threshold": SPURIOUS_THRESHOLD,
        "expression": "exact polynomial expansion of each SymNet up to total degree 4",
        "prediction_error": "sum over u, v of mean((û − u)²) / sum of spatial variances, per test "
        "trajectory; median over trajectories",
        "learned": [
            {
                "seed": seed,
                "equations": outcome["equations"],
                "spurious": outcome["spurious"],
                "expression_residual": outcome["expression_residual"],
            }
            for seed, outcome in outcomes.items()
        ],
        "training_seconds": {str(seed): outcome["training_seconds"] for seed, outcome in outcomes.items()},
    }
    schedule = (
        f"Training schedule: warm-up plus blocks {settings['blocks']} with at most "
        f"{settings['max_iterations']} L-BFGS iterations each (the paper: blocks {list(PAPER_BLOCKS)}, scipy "
        "BFGS up to 2000 iterations): the CPU budget; L-BFGS replaces dense BFGS as the reference notes "
        "suggest."
    )
    deviations = [
        schedule,
        f"Batch {settings['batch']} fresh trajectories per block (the paper's default 28), half started at "
        f"t = {settings['data_start_time']:g}.",
        f"Test: {settings['test_samples']} trajectories from t = 0 (the paper: 20 × 50); the reported error "
        "is their median at t = 4.",
        f"Data: the pdenet_burgers2d system (pseudo-spectral ETDRK4 on {settings['points']}², 2/3 "
        f"dealiasing) with internal step {settings['internal_step']:g} (the dataset's 2.5e-3 doubles the "
        "cost; measured difference 1.3e-5 in max norm at t = 0.25, far below the 1e-3 noise), generated "
        "fresh by the study rather than read from files (the paper's generator is second-order upwind FD "
        "with RK2).",
        "Pseudo-upwind as in the official code: the learned first-derivative filter or its mirror image, "
        "by the sign of ∂F/∂u_x.",
        "The paper's reference values are from the slides quoted in the reference notes (−0.98, −0.97; "
        "0.054): errors 3 % and 8 %, unverified against the JCP table.",
    ]
    data = study.finish(
        config=config,
        paper=paper,
        deviations=deviations,
        targets=targets,
        figures=[study.path(".png").name],
        render_extra=equations_section,
    )
    return data


if __name__ == "__main__":
    main()
