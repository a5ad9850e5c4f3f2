"""PDE-FIND's Table 1 (Rudy, Brunton, Proctor, Kutz, Sci. Adv. 2017) on physml data, with pysindy 2.1.

Burgers (ν = 0.1), Korteweg–de Vries, Kuramoto–Sivashinsky and λ–ω reaction–diffusion at the paper's
discretisations (the ``pdefind_*`` datasets), identified

- ``strong_clean``: strong form on clean data, second-order finite differences;
- ``strong_noisy``: strong form with 1 % Gaussian noise (σ = 0.01 std(u)), derivatives from local
  polynomial fits (PDE-FIND's choice for noisy data);
- ``weak_noisy``: weak form (pysindy's WeakPDELibrary) on the same noisy data;

each with the threshold chosen on held-out rows (TrainSTRidge).  Rows compare the identified equation
with the simulator's terms and coefficients (read from the dataset's parameters): mean and max relative
coefficient error over the true terms (a missing term counts 100 %), the number of spurious terms and
whether the term set is exactly right.  Seeds draw the held-out rows, the subsamples, the weak-form
subdomains and the noise.

Run ``python studies/pdefind_table.py --budget cpu`` (about 10 min on two cores).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from physml.data import generate, open_dataset, up_to_date  # noqa: E402
from physml.discovery import PDEFind, add_noise, from_dataset  # noqa: E402
from studies.harness import Study, format_value, log, markdown_table  # noqa: E402

study = Study("pdefind_table", description=__doc__)

NOISE_LEVEL = 0.01
METHODS = ("strong_clean", "strong_noisy", "weak_noisy")
METRICS = ("coef_rel_error_mean", "coef_rel_error_max", "n_spurious_terms", "terms_correct")

# Table 1 of the paper (mean relative coefficient error, as a fraction): clean and noisy strong form.
# The λ–ω noisy entry is at 0.5 % noise in the paper.
PAPER_ERRORS = {
    "burgers": (0.0015, 0.008),
    "kdv": (0.01, 0.07),
    "ks": (0.013, 0.52),
    "rd": (0.0002, 0.038),
}


def truth_of(name: str, dataset) -> dict:
    """The simulator's equation, from the parameters recorded on the dataset's sample coordinate."""

    def parameter(key):
        return float(dataset[key].values[0])

    if name == "burgers":
        return {"u": {"u u_x": -1.0, "u_xx": parameter("viscosity")}}
    if name == "kdv":
        return {"u": {"u u_x": -parameter("advection_coefficient"),
                      "u_xxx": -parameter("dispersion_coefficient")}}
    if name == "ks":
        return {"u": {"u u_x": -1.0, "u_xx": -parameter("anti_diffusion"),
                      "u_xxxx": -parameter("hyperdiffusion")}}
    # λ–ω: u_t = d Δu + (1 − A²) u + β A² v,  v_t = d Δv − β A² u + (1 − A²) v,  A² = u² + v².
    d_u, d_v, beta = parameter("diffusion_u"), parameter("diffusion_v"), parameter("beta")
    return {
        "u": {"u_xx": d_u, "u_yy": d_u, "u": 1.0, "u^3": -1.0, "u v^2": -1.0, "u^2 v": beta, "v^3": beta},
        "v": {"v_xx": d_v, "v_yy": d_v, "v": 1.0, "u^2 v": -1.0, "v^3": -1.0, "u^3": -beta, "u v^2": -beta},
    }


def settings(budget: str) -> dict:
    """Per-equation data scale, library and method options of a budget."""
    smoke = budget == "smoke"
    scale = "mini" if smoke else "paper"
    common = {
        "burgers": {
            "library": {"library_degree": 3, "derivative_order": 3},
            "noisy": {"polynomial_window": 21, "polynomial_degree": 4},
            "weak": {"weak_subdomains": 200},
            "first_frame": 0,
            "forecast_frames": 101,
        },
        "kdv": {
            "library": {"library_degree": 3, "derivative_order": 3},
            "noisy": {"polynomial_window": 21, "polynomial_degree": 4},
            "weak": {"weak_subdomains": 200},
            "first_frame": 0,
            "forecast_frames": 21,
        },
        "ks": {
            "library": {"library_degree": 5, "derivative_order": 5},
            "noisy": {"polynomial_window": 41, "polynomial_degree": 6, "time_polynomial_window": 21,
                      "time_polynomial_degree": 4},
            "weak": {"weak_subdomains": 200},
            "first_frame": 0,
            "forecast_frames": 26,
        },
        "rd": {
            "library": {"library_degree": 3, "derivative_order": 2},
            # PDE-FIND regresses on 5000 random points x 30 times (1.14 % of the data).
            "strong": {"spatial_subsample": 5000, "time_subsample": 30},
            "noisy": {"polynomial_window": 21, "polynomial_degree": 4},
            "weak": {"weak_subdomains": 2048, "weak_tiles": 8},
            # The initial spiral is not periodic: the first frames carry a boundary transient (see notes).
            "first_frame": 10,
            "forecast_frames": 21,
        },
    }
    if smoke:  # the mini datasets: 64-256 points, 11-26 frames
        common["burgers"]["forecast_frames"] = 21
        common["kdv"]["forecast_frames"] = 11
        common["ks"]["forecast_frames"] = 11
        common["rd"].update(first_frame=5, forecast_frames=6, strong={"spatial_subsample": 500},
                            weak={"weak_subdomains": 256, "weak_tiles": 1})
        for name in common:
            common[name]["noisy"] = {"polynomial_window": 9, "polynomial_degree": 4}
        common["ks"]["library"] = {"library_degree": 3, "derivative_order": 4}
        # Subdomains that hold several points of the coarse mini grids (pysindy's L/20 default does not).
        for name, half_width in [("burgers", [0.8, 0.3]), ("kdv", [3.0, 0.25]), ("ks", [5.0, 1.0]),
                                 ("rd", [3.0, 3.0, 0.2])]:
            common[name]["weak"]["weak_half_width"] = half_width
    for name in common:
        common[name]["dataset"] = f"pdefind_{name}"
        common[name]["scale"] = scale
        common[name]["ensemble_models"] = 5 if smoke else 20
    return common


def load(name: str, options: dict, data_directory: Path):
    directory = up_to_date(options["dataset"], options["scale"], data_directory)
    if directory is None:
        log(f"generating {options['dataset']} ({options['scale']})")
        directory = generate(options["dataset"], options["scale"], out=data_directory, progress=False,
                             overwrite=True).directory
    return open_dataset(directory, split="train")


def estimator(method: str, options: dict, seed: int) -> PDEFind:
    # A bagging ensemble on the selected terms gives each coefficient a spread (reported beside the
    # equations); the coefficients themselves come from the fit on all rows.
    common = {"seed": seed, "ensemble_models": options["ensemble_models"], **options["library"]}
    strong = options.get("strong", {})
    if method == "strong_clean":
        return PDEFind(form="strong", differentiation="finite_difference", **common, **strong)
    if method == "strong_noisy":
        return PDEFind(form="strong", differentiation="polynomial", **common, **strong, **options["noisy"])
    return PDEFind(form="weak", **common, **options["weak"])


def run(name: str, method: str, seed: int, options: dict, data_directory: Path) -> dict:
    with load(name, options, data_directory) as dataset:
        truth = truth_of(name, dataset)
        data = from_dataset(dataset, times=slice(options["first_frame"], None))
    if method != "strong_clean":
        data = add_noise(data, NOISE_LEVEL, seed=np.random.SeedSequence([seed, 2017]))
    model = estimator(method, options, seed).fit(data)
    equation = model.equation_
    comparison = equation.compare(truth)
    metrics = comparison.metrics()
    # Forecast from the first used frame with the identified model (ETDRK4 on the periodic grid), against
    # the clean data: an identified equation that is unstable forecasts inf.
    with load(name, options, data_directory) as dataset:
        clean = from_dataset(dataset, times=slice(options["first_frame"], None))
    frames = min(options["forecast_frames"], clean.n_times)
    try:
        forecast = equation.forecast_error(clean, frames=frames)
    except (RuntimeError, ValueError) as error:  # a diverging solve
        log(f"{name}/{method}/{seed}: forecast failed: {error}")
        forecast = math.inf
    return {
        **metrics,
        "forecast_rel_error": forecast if math.isfinite(forecast) else math.nan,
        "equation": equation.equations(),
        "coefficients": equation.as_dict(),
        "truth": truth,
        "comparison": [vars(row) for row in comparison.rows],
        "spurious_terms": comparison.spurious_terms,
        "thresholds": [sweep.threshold for sweep in equation.sweeps],
        "pruned": [[equation.term_names[j] for j in sweep.pruned] for sweep in equation.sweeps],
        "n_rows": model.n_rows_,
        "forecast_frames": frames,
    }


def figure(outcomes: dict, path: Path) -> None:
    """Identified against true coefficients for seed 0 of each equation and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for name, _ in outcomes))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.0), squeeze=False)
    markers = {"strong_clean": "o", "strong_noisy": "s", "weak_noisy": "^"}
    for axis, name in zip(axes[0], names, strict=True):
        for method in METHODS:
            outcome = outcomes.get((name, method))
            if outcome is None:
                continue
            rows = outcome["comparison"]
            true = np.array([row["true"] for row in rows])
            identified = np.array([row["identified"] for row in rows])
            spurious = sum(row["status"] == "spurious" for row in rows)
            axis.scatter(true, identified, marker=markers[method], alpha=0.7,
                         label=f"{method} ({spurious} spurious)")
        limits = np.array(axis.get_xlim())
        axis.plot(limits, limits, color="grey", lw=0.8, zorder=0)
        axis.axhline(0, color="grey", lw=0.5, zorder=0)
        axis.set_title(name)
        axis.set_xlabel("true coefficient (0: spurious term)")
        axis.set_ylabel("identified coefficient")
        axis.legend(fontsize=7)
    fig.suptitle("PDE-FIND on physml data: identified vs true coefficients (first seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def equations_section(data: dict) -> list[str]:
    """The identified equations of the first seed, from the JSON's config (rendered, never typed)."""
    lines = ["## Identified equations (first seed)", "",
             "Coefficients ± the spread over a bagging ensemble (bootstrap of the regression rows, "
             "selected terms only; `ensemble_models` in the configuration).", ""]
    rows = []
    for entry in data["config"]["identified_first_seed"]:
        rows.append([entry["equation"], f"`{entry['method']}`", "<br>".join(entry["identified"]),
                     ", ".join(entry["spurious"]) or "–", format_value(entry["forecast_rel_error"])])
    lines += markdown_table(["equation", "method", "identified", "spurious terms", "forecast error"], rows)
    return lines + [""]


def main(argv=None) -> dict:
    arguments = study.parse(argv)
    budget_settings = settings(arguments.budget)
    data_directory = arguments.data_dir
    first_seed_outcomes, outcomes = {}, {}
    for name, options in budget_settings.items():
        for method in METHODS:
            for seed in arguments.seeds:
                config = {"options": options, "noise": NOISE_LEVEL, "method": method}
                outcome = study.run_unit((name, method, seed),
                                         lambda name=name, method=method, seed=seed, options=options:
                                         run(name, method, seed, options, data_directory), config)
                study.record(method, {metric: outcome[metric] for metric in (*METRICS, "forecast_rel_error")},
                             seed=seed, equation=name)
                outcomes[(name, method, seed)] = outcome
                if seed == arguments.seeds[0]:
                    first_seed_outcomes[(name, method)] = outcome
    paper = {}
    for name, (clean, noisy) in PAPER_ERRORS.items():
        paper[("strong_clean", "coef_rel_error_mean", name)] = clean
        paper[("strong_noisy", "coef_rel_error_mean", name)] = noisy
    figure_name = study.path(".png").name
    figure(first_seed_outcomes, study.path(".png"))

    def values(name, method, metric):
        return [outcomes[(name, method, seed)][metric] for seed in arguments.seeds]

    def why(name, method, bound):
        """The cause of a miss, from the outcomes: spurious or missing terms, or the largest error."""
        causes = []
        for seed in arguments.seeds:
            outcome = outcomes[(name, method, seed)]
            missing = [f"{row['variable']}_t: {row['term']}" for row in outcome["comparison"]
                       if row["status"] == "missing"]
            if outcome["spurious_terms"] or missing:
                causes.append(f"seed {seed}: spurious {outcome['spurious_terms'] or 'none'}, missing "
                              f"{missing or 'none'}")
            elif outcome["coef_rel_error_max"] > bound:
                largest = 100 * outcome["coef_rel_error_max"]
                causes.append(f"seed {seed}: largest coefficient error {largest:.2f} %")
        return "; ".join(causes)

    burgers_clean = values("burgers", "strong_clean", "coef_rel_error_mean")
    burgers_terms = values("burgers", "strong_clean", "terms_correct")
    burgers_weak = values("burgers", "weak_noisy", "coef_rel_error_mean")
    burgers_weak_terms = values("burgers", "weak_noisy", "terms_correct")
    ks_max = values("ks", "strong_clean", "coef_rel_error_max")
    ks_terms = values("ks", "strong_clean", "terms_correct")
    targets = [
        {"target": "Burgers strong_clean: coefficient error <= 0.2 % with the correct terms (every seed)",
         "met": max(burgers_clean) <= 0.002 and min(burgers_terms) == 1,
         "measured": f"mean error {100 * np.mean(burgers_clean):.3f} % (worst seed "
                     f"{100 * max(burgers_clean):.3f} %), terms correct in "
                     f"{int(sum(burgers_terms))}/{len(burgers_terms)} seeds",
         "why": why("burgers", "strong_clean", 0.002)},
        {"target": "Burgers weak_noisy at 1 % noise: coefficient error <= 1 % with the correct terms",
         "met": max(burgers_weak) <= 0.01 and min(burgers_weak_terms) == 1,
         "measured": f"mean error {100 * np.mean(burgers_weak):.3f} % (worst seed "
                     f"{100 * max(burgers_weak):.3f} %), terms correct in "
                     f"{int(sum(burgers_weak_terms))}/{len(burgers_weak_terms)} seeds",
         "why": why("burgers", "weak_noisy", 0.01)},
        {"target": "KS strong_clean: correct terms, every coefficient error <= 2 %",
         "met": max(ks_max) <= 0.02 and min(ks_terms) == 1,
         "measured": f"max error {100 * max(ks_max):.3f} %, terms correct in "
                     f"{int(sum(ks_terms))}/{len(ks_terms)} seeds",
         "why": why("ks", "strong_clean", 0.02)},
    ]
    if arguments.budget == "smoke":
        for target in targets:
            target["measured"] += " (smoke budget: mini datasets, not a result)"
    identified = [{"equation": name, "method": method, "identified": outcome["equation"],
                   "spurious": outcome["spurious_terms"], "forecast_rel_error": outcome["forecast_rel_error"]}
                  for (name, method), outcome in first_seed_outcomes.items()]
    config = {
        "noise_level": NOISE_LEVEL,
        "noise_model": "u + level * std(u) * N(0, 1), per field over all points and times",
        "settings": budget_settings,
        "threshold_selection": "default sweep (0 and 41 thresholds 1e-4..1e2, scale-free), 20 % held-out "
                               "rows, l0 penalty 1e-3 per term, greedy pruning; refit on all rows",
        "metrics_units": "relative errors as fractions (0.01 = 1 %); forecast_rel_error = relative L2 "
                         "error of an ETDRK4 simulation of the identified equation over forecast_frames "
                         "frames",
        "identified_first_seed": identified,
    }
    deviations = [
        "Data are physml's own simulations of the same equations and grids (pseudo-spectral ETDRK4, or "
        "adaptive RK for λ–ω), not PDE-FIND's .mat files: initial conditions follow the paper where "
        "documented; KdV's two soliton speeds are drawn (the paper's are undocumented) and the fastest "
        "(c ≈ 4.6) moves 0.46 per saved frame, which the paper's dt = 0.1 resolves poorly in time.",
        "λ–ω reaction–diffusion: the first 10 frames (t < 0.5) are dropped. The spiral "
        "tanh(r) exp(i(θ − r)) is not periodic on the periodic box, so the first frames carry a boundary "
        "transient in which finite-difference u_t disagrees with the equation by up to 45 % (the paper's "
        "data have the same construction; it does not say which frames it sampled).",
        "λ–ω noisy rows use 1 % noise (the issue's protocol) where the paper used 0.5 %, and no POD "
        "denoising (the paper projected onto 15 modes).",
        "Threshold selection: scale-free thresholds on normalised columns with held-out rows and an ℓ0 "
        "penalty per term, plus greedy pruning of the chosen support (physml.discovery), instead of "
        "TrainSTRidge's adaptive tolerance search with penalty 1e-3 cond(Θ).",
        "Noisy strong form: Savitzky–Golay (least-squares polynomial) derivatives in space and time with the "
        "paper's degrees and widths (Burgers/KdV/λ–ω: degree 4 on 21 points; KS: degree 6 on 41 points in "
        "space, degree 4 on 21 frames in time) instead of PDE-FIND's Chebyshev PolyDiff.",
        "The paper reports mean ± std of the coefficient errors of one identification; here mean ± std are "
        "over seeds of the per-seed mean error (clean rows vary only by the held-out split and subsample).",
        "weak_noisy has no paper column: Table 1 has no weak form (pysindy's WeakPDELibrary, Messenger & "
        "Bortz 2021, postdates it).",
    ]
    notes = [
        "The strong form on 1 % noise is the documented failure of PDE-FIND/pysindy on Burgers (reference "
        "§3.3): spurious terms compensate for the bias of smoothed derivatives; the weak form removes it.",
        "Navier–Stokes (cylinder wake) is not included: physml has no cylinder-wake dataset.",
    ]
    data = study.finish(config=config, paper=paper, deviations=deviations, notes=notes, targets=targets,
                        figures=[figure_name], render_extra=equations_section)
    return data


if __name__ == "__main__":
    main()
