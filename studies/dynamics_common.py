"""What the APHYNITY, LEADS and CoDA study scripts share.

- :func:`load_splits`: a dataset's splits (generated on demand through the study) as ``TrajectorySet``;
- :func:`train_unit`: one (method, seed) unit — build the model from a seed, fit it with
  :func:`physml.training.fit_trajectories` (model selection on the validation split only, a checkpoint under
  the study's cache directory so an interrupted unit resumes mid-training), evaluate it on named splits and
  keep one predicted-versus-true example for the figure; the outcome is cached by ``Study.run_unit``;
- :func:`parameter_errors`: APHYNITY's ``param_rel_error`` (largest over the identified parameters) and
  ``param_rel_error_mean``;
- :func:`plot_trajectories`, :func:`plot_fields`: the figure of predicted versus true trajectories / fields;
- :func:`target`: a target row for ``Study.finish``.

The scripts stay declarative: budgets, model builders, the paper's values and the deviations.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from physml.models import Aphynity, Coda, Leads, NeuralODE
from physml.nn import StackedModules
from physml.training import (
    TrainingConfig,
    TrajectorySet,
    evaluate,
    fit_trajectories,
    load_trajectories,
    predict,
    relative_parameter_error,
)
from studies.harness import Study, log, summarize

__all__ = ["load_splits", "parameter_errors", "plot_fields", "plot_trajectories", "seeded_generator",
           "target", "train_unit"]

# Version of what a unit measures after training: raising it re-evaluates cached units while their finished
# training checkpoints (keyed by the training settings only) are reused.
OUTCOME_VERSION = 2
# Frames of a field kept for the figure (first, middle, last).
FIGURE_FRAMES = 3


def seeded_generator(seed: int, purpose: int = 0) -> torch.Generator:
    """An explicit generator per (seed, purpose): network initialisation, power iterations, ..."""
    return torch.Generator().manual_seed(1_000_003 * int(seed) + 7919 * int(purpose))


def load_splits(study: Study, dataset: str, scale: str, splits=("train", "validation", "test"), *,
                dtype: torch.dtype = torch.float64, environments=None,
                variables=None) -> dict[str, TrajectorySet]:
    """The named splits of ``dataset`` at ``scale`` (generated into ``--data-dir`` when needed)."""
    directory = study.dataset(dataset, scale)
    loaded = {}
    for split in splits:
        loaded[split] = load_trajectories(directory, split, dtype=dtype, environments=environments,
                                          variables=variables)
        log(f"{dataset} ({scale}) {split}: {tuple(loaded[split].states.shape)}")
    return loaded


def first_frames(splits: Mapping[str, TrajectorySet], frames: int | None) -> dict[str, TrajectorySet]:
    """Every split cut to its first ``frames`` observation times (smoke runs); ``None`` keeps them all."""
    if frames is None:
        return dict(splits)
    return {name: dataclasses.replace(data, states=data.states[:, :, :frames], times=data.times[:frames])
            for name, data in splits.items()}


def parameter_errors(estimated: Mapping[str, torch.Tensor], true: Mapping[str, float]) -> dict:
    """``param_rel_error`` (largest relative error), ``param_rel_error_mean`` and one entry per parameter."""
    errors = relative_parameter_error(estimated, true)
    values = list(errors.values())
    return {"param_rel_error": max(values), "param_rel_error_mean": sum(values) / len(values),
            **{f"param_rel_error_{name}": value for name, value in errors.items()},
            **{f"estimated_{name}": float(torch.as_tensor(value).double().mean()) for name, value in
               estimated.items()}}


def _figure_example(prediction: torch.Tensor, data: TrajectorySet) -> dict:
    """The first trajectory of the first environment, predicted and true (fields: a few frames)."""
    truth = data.states[0, 0].double()
    predicted = prediction[0, 0].double()
    times = data.times.tolist()
    if truth.ndim == 2:  # ODE: (time, state)
        return {"kind": "trajectory", "times": times, "variables": list(data.variables),
                "truth": truth.tolist(), "prediction": predicted.tolist()}
    frames = sorted({0, (len(times) - 1) // 2, len(times) - 1})[:FIGURE_FRAMES]
    return {"kind": "field", "times": [times[index] for index in frames], "variables": list(data.variables),
            "truth": truth[frames, 0].tolist(), "prediction": predicted[frames, 0].tolist()}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def evaluate_splits(model, evaluations: Mapping[str, TrajectorySet], figure_split: str | None = None) -> dict:
    """``<split>_mse``, ``<split>_log10_mse``, ``<split>_mse_per_environment`` for each named split."""
    outcome = {}
    for name, data in evaluations.items():
        metrics = evaluate(model, data)
        outcome[f"{name}_mse"] = _finite(metrics["mse"])
        outcome[f"{name}_log10_mse"] = _finite(metrics["log10_mse"])
        outcome[f"{name}_mape"] = _finite(metrics["mape"])
        outcome[f"{name}_mse_per_environment"] = [_finite(value) for value in metrics["mse_per_environment"]]
        if name == figure_split:
            outcome["figure"] = _figure_example(predict(model, data), data)
    return outcome


def checkpoint_path(study: Study, key: tuple, settings: dict, phase: str = "fit") -> Path:
    """A checkpoint file per unit, phase and settings (changed settings never resume an old checkpoint)."""
    label = "_".join(str(part) for part in key) + f"_{phase}"
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    safe = "".join(character if character.isalnum() or character in "-_." else "_" for character in label)
    return study.cache_directory / "checkpoints" / f"{safe[:80]}_{digest}.pt"


def fit(study: Study, key: tuple, model, train: TrajectorySet, validation: TrajectorySet,
        config: TrainingConfig, settings: dict, phase: str = "fit") -> dict:
    """Fit with a resumable checkpoint; returns the training summary (the model holds the best state)."""
    path = checkpoint_path(study, key, {**settings, "training": config.to_dict()}, phase)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = fit_trajectories(model, train, validation, config, checkpoint_path=path,
                              resume=not study.arguments.fresh)
    last = result.history[-1] if result.history else {}
    selection = (f"best validation MSE {result.best_validation_mse:.3e} at epoch {result.best_epoch}"
                 if validation is not None else "no validation split, last state kept")
    log(f"{'/'.join(map(str, key))} {phase}: {result.iterations} iterations, {selection}, "
        f"{result.elapsed_s:.0f} s")
    return {f"{phase}_iterations": result.iterations, f"{phase}_best_epoch": result.best_epoch,
            f"{phase}_best_validation_mse": _finite(result.best_validation_mse),
            f"{phase}_time_s": result.elapsed_s, f"{phase}_stopped": result.stopped,
            f"{phase}_final_trajectory_weight": result.trajectory_weight,
            f"{phase}_final_restart_probability": last.get("restart_probability")}


def train_unit(study: Study, key: tuple, build: Callable[[], torch.nn.Module], train: TrajectorySet,
               validation: TrajectorySet | None, config: TrainingConfig | None,
               evaluations: Mapping[str, TrajectorySet], *, settings: dict,
               after: Callable[[torch.nn.Module], dict] | None = None, figure_split: str = "test") -> dict:
    """Run (or reuse the cached outcome of) one (method, seed) unit.

    ``build()`` makes the model (its randomness from explicit generators); ``config=None`` skips training
    (a model with fixed, e.g. true, parameters). The model is evaluated on every split of ``evaluations``;
    ``after(model)`` adds further values (identified parameters, an adaptation phase, ...).
    """

    def compute() -> dict:
        torch.manual_seed(int(key[-1]) if isinstance(key[-1], int) else 0)
        model = build().to(study.device)  # data follow the model in training and evaluation
        outcome = {}
        if config is not None:
            outcome.update(fit(study, key, model, train, validation, config, settings))
        outcome.update(evaluate_splits(model, evaluations, figure_split))
        if after is not None:
            outcome.update(after(model))
        return outcome

    return study.run_unit(key, compute, config={**settings, "outcome_version": OUTCOME_VERSION,
                                                "training": None if config is None else config.to_dict()})


def target(text: str, met: bool, measured: str, why: str) -> dict:
    return {"target": text, "met": bool(met), "measured": measured, "why": why}


# ============================================================================ figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectories(path: Path, examples: Mapping[str, dict], title: str) -> str:
    """Predicted (dashed) versus true (solid) state variables of one test trajectory, a panel per method."""
    plt = _pyplot()
    examples = {name: example for name, example in examples.items() if example}
    if not examples:
        return ""
    columns = min(4, len(examples))
    rows = math.ceil(len(examples) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False,
                                sharey=True)
    for axis in axes.flat[len(examples):]:
        axis.set_visible(False)
    for axis, (name, example) in zip(axes.flat, examples.items(), strict=False):
        truth, prediction = torch.tensor(example["truth"]), torch.tensor(example["prediction"])
        for index, variable in enumerate(example["variables"][:7]):
            line, = axis.plot(example["times"], truth[:, index], lw=1.5, label=f"{variable} true")
            axis.plot(example["times"], prediction[:, index], "--", lw=1.2, color=line.get_color(),
                      label=f"{variable} predicted")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("t")
    axes.flat[0].legend(fontsize=6, loc="best")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def plot_fields(path: Path, examples: Mapping[str, dict], title: str) -> str:
    """First channel of one test field at a few times: the truth, then each method's prediction."""
    plt = _pyplot()
    examples = {name: example for name, example in examples.items() if example}
    if not examples:
        return ""
    first = next(iter(examples.values()))
    rows = [("truth", first["truth"])] + [(name, example["prediction"]) for name, example in examples.items()]
    columns = len(first["times"])
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.2 * columns, 2.0 * len(rows)), squeeze=False)
    truth = torch.tensor(first["truth"])
    low, high = float(truth.min()), float(truth.max())
    for row, (name, frames) in enumerate(rows):
        for column in range(columns):
            axis = axes[row][column]
            axis.imshow(torch.tensor(frames[column]).numpy(), vmin=low, vmax=high, cmap="viridis")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"t = {first['times'][column]:g}", fontsize=8)
            if column == 0:
                axis.set_ylabel(name, fontsize=8)
    figure.suptitle(f"{title} ({first['variables'][0]})", fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


# ============================================================================ APHYNITY

APHYNITY_METHODS = ("neural_ode", "physics_only", "true_physics", "aphynity")
APHYNITY_PAPER_NOTE = (
    "The APHYNITY paper's Table 2 numbers could not be retrieved (reference notes §1.4, §7), so no paper "
    "column is filled; the paper claims APHYNITY with incomplete physics beats both the neural ODE and the "
    "fitted physical model and brings the parameter error to a few percent.")


# Keys of an ablation row's description that are not TrainingConfig overrides.
_VARIANT_KEYS = ("base", "physics", "note")


def variant_config(config: Callable[..., TrainingConfig], method: str, seed: int,
                   variants: Mapping[str, dict]) -> TrainingConfig:
    """``config(method, seed)``; for an ablation row, its base method's settings with the row's overrides."""
    variant = variants.get(method, {})
    overrides = {key: value for key, value in variant.items() if key not in _VARIANT_KEYS}
    return config(variant.get("base", method), seed, **overrides)


def variant_notes(variants: Mapping[str, dict]) -> list[str]:
    """One table note per ablation row, from its ``note``."""
    return [f"{name}: {variant['note']}" for name, variant in variants.items()]


def run_aphynity(study: Study, *, splits: Mapping[str, TrajectorySet],
                 physics_groups=("incomplete", "complete"),
                 prior: Callable[[str, bool], torch.nn.Module],
                 augmentation: Callable[[torch.Generator], torch.nn.Module],
                 true_parameters: Mapping[str, float], augmentation_norm: str, solver: dict,
                 config: Callable[..., TrainingConfig], settings: dict,
                 variants: Mapping[str, dict] | None = None) -> dict:
    """Every APHYNITY method for every seed and physics group; records rows, returns figure examples.

    ``prior(physics, true)`` builds the physical model of a group (``true=True``: the true parameter values,
    nothing learnable); ``config(method, seed, **overrides)`` the training settings of a method.
    ``neural_ode`` has no physics: it is trained once per seed and recorded in every group. ``variants``
    maps extra rows (ablations) to ``{"base": method, "physics": groups, "note": text, **TrainingConfig
    overrides}`` (see :func:`variant_config`).
    """
    variants = dict(variants or {})
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    evaluations = {"test": test}
    examples: dict[str, dict] = {}

    def record(method, outcome, seed, physics):
        metrics = {"test_mse": outcome["test_mse"], "log10_test_mse": outcome["test_log10_mse"]}
        for name in ("param_rel_error", "param_rel_error_mean"):
            if name in outcome:
                metrics[name] = outcome[name]
        for name, value in outcome.items():
            if name.startswith(("param_rel_error_", "estimated_")) and name != "param_rel_error_mean":
                metrics[name] = value
        if "augmentation_norm" in outcome:
            metrics["augmentation_norm"] = outcome["augmentation_norm"]
        if "fit_final_trajectory_weight" in outcome and method.startswith("aphynity"):
            # λ after the adaptive rule: how much the fit outweighs ‖F_a‖² at the end
            metrics["final_trajectory_weight"] = outcome["fit_final_trajectory_weight"]
        study.record(method, metrics, seed=seed, physics=physics)
        if seed == study.arguments.seeds[0] and method != "min_norm_optimum":  # the figure shows fits only
            label = method if method == "neural_ode" else f"{method} ({physics})"
            examples[label] = outcome.get("figure")

    def identified(model) -> dict:
        values = {}
        if model.physical_model is not None and model.identified_parameters:
            values.update(parameter_errors(model.physical_parameters(), true_parameters))
        if model.augmentation is not None:
            with torch.no_grad():
                states = test.states.reshape(-1, *test.states.shape[2:])  # (trajectories, time, *state)
                values["augmentation_norm"] = float(model.augmentation_magnitude(
                    states.to(next(model.parameters()))))
        return values

    # The data's own vector field: the complete prior at the true parameters.
    truth = prior("complete", True)
    train_states = train.states.reshape(-1, *train.states.shape[2:])  # (trajectories, time, *state)

    def min_norm_optimum(physics):
        model = Aphynity(prior(physics, False), None, augmentation_norm=augmentation_norm, **solver)
        model.minimum_norm_fit(truth, train_states.to(next(model.parameters()).dtype))
        return model

    def missing_physics(model) -> dict:
        states = test.states.reshape(-1, *test.states.shape[2:]).to(next(model.parameters()).dtype)
        on_cpu = copy.deepcopy(model).cpu()  # beside the (cpu) true field, wherever the model trains
        return {**identified(model),
                "augmentation_norm": float(on_cpu.missing_physics_magnitude(truth, states))}

    for seed in study.arguments.seeds:
        def neural_ode(seed=seed):
            return Aphynity(None, augmentation(seeded_generator(seed)), augmentation_norm=None, **solver)

        outcome = train_unit(study, ("neural_ode", seed), neural_ode, train, validation,
                             config("neural_ode", seed), evaluations, settings=settings, after=identified)
        for physics in physics_groups:
            record("neural_ode", outcome, seed, physics)
        for physics in physics_groups:
            builders = {
                "physics_only": lambda physics=physics: Aphynity(prior(physics, False), None, **solver),
                "true_physics": lambda physics=physics: Aphynity(prior(physics, True), None,
                                                                 identified_parameters=(), **solver),
                "min_norm_optimum": lambda physics=physics: min_norm_optimum(physics),
                "aphynity": lambda physics=physics, seed=seed: Aphynity(
                    prior(physics, False), augmentation(seeded_generator(seed)),
                    augmentation_norm=augmentation_norm, **solver),
            }
            for name, variant in variants.items():
                if physics in variant["physics"]:
                    builders[name] = builders[variant["base"]]
            for method, build in builders.items():
                if method in ("true_physics", "min_norm_optimum"):
                    # Nothing is trained or drawn: every seed gives the first seed's number.
                    first = study.arguments.seeds[0]
                    after = missing_physics if method == "min_norm_optimum" else None
                    outcome_fixed = train_unit(study, (method, physics, first), build, train, validation,
                                               None, evaluations, settings=settings, after=after)
                    record(method, outcome_fixed, seed, physics)
                    continue
                training = variant_config(config, method, seed, variants)
                outcome = train_unit(study, (method, physics, seed), build, train, validation, training,
                                     evaluations, settings=settings, after=identified)
                record(method, outcome, seed, physics)
    return examples


# ============================================================================ LEADS

LEADS_METHODS = ("one_for_all", "one_per_env", "leads_no_min", "leads")


def leads_builders(network: Callable[[torch.Generator], torch.nn.Module], n_environments: int, seed: int, *,
                   penalty_weight: float, lipschitz_weight: float, solver: dict) -> dict:
    """Model builders of the four LEADS rows, all from one seed's generator.

    ``one_for_all``: one network for every environment; ``one_per_env``: an independent network per
    environment; ``leads_no_min``: shared f + per-environment g_e without the penalty (λ⁻¹ = 0); ``leads``:
    with the output and spectral-norm penalties.
    """

    def stacked_factory(generator):
        return lambda: network(generator)

    def one_for_all():
        return NeuralODE(network(seeded_generator(seed)), **solver)

    def one_per_env():
        generator = seeded_generator(seed)
        return NeuralODE(StackedModules.from_factory(stacked_factory(generator), n_environments), **solver)

    def leads(weight):
        def build():
            generator = seeded_generator(seed)
            return Leads(network(generator), stacked_factory(generator), n_environments,
                         penalty_weight=weight, lipschitz_weight=lipschitz_weight,
                         generator=seeded_generator(seed, 1), **solver)
        return build

    return {"one_for_all": one_for_all, "one_per_env": one_per_env, "leads_no_min": leads(0.0),
            "leads": leads(penalty_weight)}


def run_leads(study: Study, *, splits: Mapping[str, TrajectorySet],
              network: Callable[[torch.Generator], torch.nn.Module], penalty_weight: float,
              lipschitz_weight: float, solver: dict, config: Callable[..., TrainingConfig],
              settings: dict, variants: Mapping[str, dict] | None = None) -> dict:
    """Every LEADS method for every seed: records ``test_mse`` (and log10), returns figure examples.

    ``variants`` maps extra rows (ablations) to ``{"base": method, "note": text, **TrainingConfig
    overrides}`` (see :func:`variant_config`), e.g. a longer schedule of ``leads``.
    """
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    variants = dict(variants or {})
    examples = {}
    for seed in study.arguments.seeds:
        builders = leads_builders(network, train.n_environments, seed, penalty_weight=penalty_weight,
                                  lipschitz_weight=lipschitz_weight, solver=solver)
        for name, variant in variants.items():
            builders[name] = builders[variant["base"]]
        for method, build in builders.items():
            outcome = train_unit(study, (method, seed), build, train, validation,
                                 variant_config(config, method, seed, variants),
                                 {"test": test}, settings=settings)
            # The validation-selected epoch shows whether a schedule ended while the model still improved.
            study.record(method, {"test_mse": outcome["test_mse"],
                                  "log10_test_mse": outcome["test_log10_mse"],
                                  "best_epoch": math.nan if outcome["fit_best_epoch"] is None
                                  else outcome["fit_best_epoch"]}, seed=seed)
            if seed == study.arguments.seeds[0]:
                examples[method] = outcome.get("figure")
    return examples


# ============================================================================ CoDA

CODA_METHODS = ("one_per_env", "leads", "coda_l2", "coda_l1")


def run_coda(study: Study, *, splits: Mapping[str, TrajectorySet],
             network: Callable[[torch.Generator], torch.nn.Module], solver: dict,
             config: Callable[[str, int], TrainingConfig],
             adaptation_config: Callable[[str, int], TrainingConfig],
             leads_penalty: Mapping[str, float], coda_penalty: Mapping[str, float], settings: dict) -> dict:
    """Every CoDA method for every seed, in-domain then adapted to the new environments.

    Adaptation (1 trajectory per new environment): ``coda_l1``/``coda_l2`` train new contexts ξ with θ_c and
    W frozen; ``leads`` trains new g_e with f frozen ("LEADS fine-tuned on the new environments");
    ``one_per_env`` trains new networks from scratch. Adaptation has no validation split (the dataset has
    none): the last state is evaluated, never a test-selected one. Records ``indomain_mse`` and
    ``adapt_mse``; returns figure examples (in-domain and adaptation).
    """
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    adaptation_train, adaptation_test = splits["adaptation_train"], splits["adaptation_test"]
    n_new = adaptation_train.n_environments
    examples = {}
    for seed in study.arguments.seeds:
        leads = leads_builders(network, train.n_environments, seed, solver=solver, **leads_penalty)

        def coda(regularization, seed=seed):
            def build_coda():
                generator = seeded_generator(seed)
                return Coda(network(generator), train.n_environments, coda_penalty.get("code_dim", 2),
                            regularization=regularization, weight_penalty=coda_penalty["weight_penalty"],
                            code_penalty=coda_penalty["code_penalty"], generator=generator, **solver)
            return build_coda

        builders = {"one_per_env": leads["one_per_env"], "leads": leads["leads"], "coda_l2": coda("l2"),
                    "coda_l1": coda("l1")}
        for method, build in builders.items():
            key = (method, seed)

            def adapt(model, method=method, seed=seed, key=key):
                torch.manual_seed(seed)
                if method == "one_per_env":
                    adapted = leads_builders(network, n_new, seed + 10_000, solver=solver,
                                             **leads_penalty)["one_per_env"]().to(study.device)
                elif method == "leads":
                    adapted = model.adapt(n_new, generator=seeded_generator(seed, 2))
                else:
                    adapted = model.adapt(n_new)
                summary = fit(study, key, adapted, adaptation_train, None, adaptation_config(method, seed),
                              settings, phase="adapt")
                outcome = evaluate_splits(adapted, {"adaptation_test": adaptation_test}, "adaptation_test")
                outcome["adapt_figure"] = outcome.pop("figure")
                outcome["adapt_mse"] = outcome["adaptation_test_mse"]
                if hasattr(adapted, "codes"):
                    outcome["adapted_codes"] = adapted.codes.detach().tolist()
                    outcome["trained_codes"] = model.codes.detach().tolist()
                return {**summary, **outcome}

            outcome = train_unit(study, key, build, train, validation, config(method, seed), {"test": test},
                                 settings=settings, after=adapt)
            study.record(method, {"indomain_mse": outcome["test_mse"], "adapt_mse": outcome["adapt_mse"],
                                  "log10_indomain_mse": outcome["test_log10_mse"],
                                  "log10_adapt_mse": outcome["adaptation_test_log10_mse"]}, seed=seed)
            if seed == study.arguments.seeds[0]:
                examples[f"{method} (in-domain)"] = outcome.get("figure")
                examples[f"{method} (adaptation)"] = outcome.get("adapt_figure")
    return examples


# ============================================================================ study mains


def current_means(study: Study) -> dict:
    """``{"results": rows}`` with the per-seed means recorded so far (for target checks before finish)."""
    rows = []
    for (method, metric, group), per_seed in study._per_seed.items():
        rows.append({"method": method, "metric": metric, **summarize(list(per_seed.values())), **dict(group)})
    return {"results": rows}


def training_config(budget: dict, seed: int, **overrides) -> TrainingConfig:
    """A TrainingConfig from a budget's ``epochs``/``validate_every`` and the method's settings."""
    validate_every = budget["validate_every"]
    values = {"epochs": budget["epochs"], "validate_every": validate_every,
              "checkpoint_every": max(validate_every, budget.get("checkpoint_every", 50)), "seed": seed,
              "progress": False, **overrides}
    return TrainingConfig(**values)


def _budget_deviations(study: Study, budget: dict, paper_schedule: str) -> list[str]:
    # Without a batch size every iteration sees the whole training set; with one, epochs are passes over it.
    length = (f"{budget['epochs']} epochs in batches of {budget['batch_size']}" if budget.get("batch_size")
              else f"{budget['epochs']} iterations")
    lines = []
    if study.arguments.budget in ("smoke", "mini"):
        lines.append(f"{study.arguments.budget} budget: dataset scale {budget['scale']!r} and "
                     f"{length} — a smoke run, not a result.")
    elif study.arguments.budget == "cpu":
        lines.append(f"cpu budget: {length} (the paper: {paper_schedule}); a reduced schedule sized for two "
                     "shared CPU cores.")
    return lines


def finish_study(study: Study, *, figure_examples: dict, field: bool, title: str, config: dict, paper: dict,
                 deviations: list[str], notes: list[str], targets: list[dict]) -> dict:
    """Draw the predicted-vs-true figure and write the JSON + markdown."""
    plot = plot_fields if field else plot_trajectories
    figure = plot(study.path(".png"), figure_examples, title)
    return study.finish(config=config, paper=paper, deviations=deviations, notes=notes, targets=targets,
                        figures=[figure] if figure else [])


COMMON_DEVIATIONS = [
    "Model selection on a separate validation split (free rollouts); the reference code selects the "
    "checkpoint with the lowest *test* loss.",
    "Rows are mean ± std over seeds (initialisation, minibatch order, restart draws); LEADS's README reports "
    "the std over test batches of one run instead.",
]


def leads_main(*, name: str, description: str, dataset: str, budgets: dict, network, solver: dict,
               penalty_weight: float, lipschitz_weight: float, learning_rate: float, restart: dict,
               paper: dict, deviations: list[str], notes: list[str], field: bool, paper_schedule: str,
               targets=None, dtype=torch.float64, variables=None, variants=None, argv=None) -> dict:
    """The command-line study of a LEADS benchmark (``network(budget, generator)`` builds f, g_e, ...).

    ``variants`` maps a budget name to that budget's extra rows (see :func:`run_leads`).
    """
    study = Study(name, description=description)
    arguments = study.parse(argv, study.parser(device=True))
    budget = budgets[arguments.budget]
    splits = first_frames(load_splits(study, dataset, budget["scale"], dtype=dtype, variables=variables),
                          budget.get("frames"))

    def config(method, seed, **overrides):
        return training_config(budget, seed, learning_rate=learning_rate, batch_size=budget.get("batch_size"),
                               **restart_settings(restart, budget), **overrides)

    settings = {"budget": budget, "solver": solver, "penalty_weight": penalty_weight,
                "lipschitz_weight": lipschitz_weight, "restart": restart}
    budget_variants = (variants or {}).get(arguments.budget, {})
    examples = run_leads(study, splits=splits, network=lambda generator: network(budget, generator),
                         penalty_weight=penalty_weight, lipschitz_weight=lipschitz_weight, solver=solver,
                         config=config, settings=settings, variants=budget_variants)
    measured = targets(current_means(study), arguments.budget) if targets else []
    sizes = {split: list(data.states.shape[:2]) for split, data in splits.items()}
    return finish_study(study, figure_examples=examples, field=field,
                        title=f"{dataset}: true vs predicted, first test trajectory of environment 0",
                        config={**settings, "dataset": dataset, "split_sizes": sizes},
                        paper=paper, deviations=_budget_deviations(study, budget, paper_schedule) + deviations
                        + COMMON_DEVIATIONS,
                        notes=notes + variant_notes(budget_variants),
                        targets=measured)


def restart_settings(restart: dict, budget: dict) -> dict:
    """TrainingConfig restart fields; a budget may override ``restart_decay_every``."""
    return {"restart_probability": restart["initial"], "restart_decay": restart["decay"],
            "restart_decay_every": budget.get("restart_decay_every", restart["every"]),
            "restart_minimum": restart.get("minimum", 0.0)}


def coda_main(*, name: str, description: str, dataset: str, budgets: dict, network, solver: dict,
              learning_rate: float, restart: dict, adaptation_restart: dict, leads_penalty: dict,
              coda_penalty: dict, paper: dict, deviations: list[str], notes: list[str], field: bool,
              paper_schedule: str, targets=None, dtype=torch.float64, variables=None, argv=None) -> dict:
    """The command-line study of a CoDA benchmark: in-domain training, then adaptation to new environments."""
    study = Study(name, description=description)
    arguments = study.parse(argv, study.parser(device=True))
    budget = budgets[arguments.budget]
    splits = load_splits(study, dataset, budget["scale"], dtype=dtype,
                         splits=("train", "validation", "test", "adaptation_train", "adaptation_test"),
                         variables=variables)
    splits = first_frames(splits, budget.get("frames"))

    def config(method, seed):
        return training_config(budget, seed, learning_rate=learning_rate, batch_size=budget.get("batch_size"),
                               gradient_clip_norm=1.0, **restart_settings(restart, budget))

    def adaptation_config(method, seed):
        adapt_budget = {**budget, "epochs": budget["adaptation_epochs"],
                        "restart_decay_every": budget.get("adaptation_restart_decay_every",
                                                          adaptation_restart["every"])}
        return training_config(adapt_budget, seed, learning_rate=learning_rate, gradient_clip_norm=1.0,
                               validate_every=budget["adaptation_epochs"], restore_best=False,
                               **restart_settings(adaptation_restart, adapt_budget))

    settings = {"budget": budget, "solver": solver, "restart": restart,
                "adaptation_restart": adaptation_restart,
                "leads_penalty": leads_penalty, "coda_penalty": coda_penalty}
    examples = run_coda(study, splits=splits, network=lambda generator: network(budget, generator),
                        solver=solver, config=config, adaptation_config=adaptation_config,
                        leads_penalty=leads_penalty, coda_penalty=coda_penalty, settings=settings)
    measured = targets(current_means(study), arguments.budget) if targets else []
    sizes = {split: list(data.states.shape[:2]) for split, data in splits.items()}
    adaptation_deviations = [
        "Adaptation is evaluated on free rollouts (ε = 0) of the final state after "
        f"{budget['adaptation_epochs']} iterations; the reference adaptation script evaluates with the "
        "current ε and keeps the minimum over evaluations.",
        "leads on the adaptation environments: new g_e trained with f frozen (LEADS's new-environment "
        "protocol); one_per_env: new networks trained from scratch on the one trajectory per environment.",
    ]
    return finish_study(study, figure_examples=examples, field=field,
                        title=f"{dataset}: true vs predicted, in-domain and adaptation (environment 0)",
                        config={**settings, "dataset": dataset, "split_sizes": sizes},
                        paper=paper, deviations=_budget_deviations(study, budget, paper_schedule) + deviations
                        + adaptation_deviations + COMMON_DEVIATIONS, notes=notes, targets=measured)


#: CoDA's penalties (README command ``-m 1e-6 -c 1e-4``) and the LEADS baseline's (its LV values).
CODA_PENALTY = {"weight_penalty": 1e-6, "code_penalty": 1e-4, "code_dim": 2}
CODA_LEADS_PENALTY = {"penalty_weight": 1 / 5e3, "lipschitz_weight": 1e-2}


def coda_adaptation_target(data: dict, budget: str) -> list[dict]:
    """The issue's CoDA target: ``coda_l1`` adapt_mse below ``leads`` fine-tuned on the new environments."""
    from studies.harness import mean_of

    coda, leads = mean_of(data, "coda_l1", "adapt_mse"), mean_of(data, "leads", "adapt_mse")
    met = coda < leads
    if met:
        why = "a 2-D context adapts the whole network from one trajectory per environment"
    else:
        spread = {row["method"]: row for row in data["results"] if row["metric"] == "adapt_mse"}
        stds = ", ".join(f"{method} ± {spread[method]['std']:.1e}" for method in ("coda_l1", "leads"))
        within = abs(coda - leads) <= max(spread["coda_l1"]["std"], spread["leads"]["std"])
        means = [row["mean"] for row in spread.values()]
        why = (f"coda_l1 is {coda / leads - 1:.1%} above leads, "
               f"{'within' if within else 'beyond'} the seed spread ({stds}); every method's adapt_mse lies "
               f"in [{min(means):.2e}, {max(means):.2e}] at this reduced scale, so the cause is not isolated")
    return [target("coda_l1 adapt_mse below leads fine-tuned on the new environments", met,
                   f"coda_l1 {coda:.3e}, leads {leads:.3e}", why)]


MIN_NORM_NOTE = (
    "min_norm_optimum (not in the paper) is the prior with θ_p minimising ‖F − F_p(θ_p)‖² over the training "
    "states, F being the data's true vector field (`Aphynity.minimum_norm_fit`): the solution of APHYNITY's "
    "constrained problem (trajectories fitted exactly, ‖F_a‖ minimal) when F_a can represent anything, which "
    "the adaptive λ rule approaches as λ grows; at a finite λ a trained model can land elsewhere. Its "
    "parameter error says whether the constrained problem identifies the parameters on these states at all; "
    "its augmentation_norm is the ‖F_a‖² a perfect F_a needs on the test states; its test_mse is the prior "
    "alone at those values.")


def aphynity_main(*, name: str, description: str, dataset: str, budgets: dict, prior, augmentation,
                  true_parameters: dict, initial_parameters: dict, augmentation_norm: str, solver: dict,
                  learning_rate: float, inner_steps: int, trajectory_weight_increment: float, paper: dict,
                  deviations: list[str], notes: list[str], field: bool, paper_schedule: str, targets=None,
                  dtype=torch.float64, physics_groups=("incomplete", "complete"), variants=None,
                  extra_notes=None, argv=None) -> dict:
    """The command-line study of an APHYNITY benchmark.

    ``prior(budget, physics, true)`` and ``augmentation(budget, generator)`` build F_p and F_a; a budget
    holds ``scale``, ``epochs``, ``validate_every``, ``batch_size`` and ``physical_lr`` (θ_p's Adam rate).
    ``variants`` maps a budget name to that budget's extra rows (see :func:`run_aphynity`);
    ``extra_notes(study, budget)`` returns
    notes computed by the study (cached units of its own) for the table.
    """
    study = Study(name, description=description)
    arguments = study.parse(argv, study.parser(device=True))
    budget = budgets[arguments.budget]
    splits = first_frames(load_splits(study, dataset, budget["scale"], dtype=dtype), budget.get("frames"))
    if "window" in budget:  # one long trajectory cut into overlapping windows (the wave data set)
        frames = budget.get("split_frames", {})  # e.g. the paper's wave test uses the first 75 frames
        splits = {split: dataclasses.replace(data, states=data.states[:, :, :frames.get(split, data.n_times)],
                                             times=data.times[:frames.get(split, data.n_times)])
                  .windows(budget["window"], budget.get("window_stride", 1))
                  for split, data in splits.items()}

    def config(method: str, seed: int, **overrides) -> TrainingConfig:
        learning_rates = {} if method == "neural_ode" else {"physical_model": budget["physical_lr"]}
        increment = trajectory_weight_increment if method == "aphynity" else 0.0
        return training_config(budget, seed, batch_size=budget.get("batch_size"), learning_rate=learning_rate,
                               learning_rates=learning_rates, inner_steps=inner_steps,
                               trajectory_weight_increment=increment, **overrides)

    settings = {"budget": budget, "solver": solver, "learning_rate": learning_rate,
                "inner_steps": inner_steps, "trajectory_weight": 1.0,
                "trajectory_weight_increment": trajectory_weight_increment,
                "augmentation_norm": augmentation_norm}
    budget_variants = (variants or {}).get(arguments.budget, {})
    examples = run_aphynity(study, splits=splits, physics_groups=physics_groups,
                            prior=lambda physics, true: prior(budget, physics, true),
                            augmentation=lambda generator: augmentation(budget, generator),
                            true_parameters=true_parameters, augmentation_norm=augmentation_norm,
                            solver=solver, config=config, settings=settings, variants=budget_variants)
    measured = targets(current_means(study), arguments.budget) if targets else []
    sizes = {split: list(data.states.shape[:2]) for split, data in splits.items()}
    lr_deviation = (
        [f"Physical parameters θ_p train with Adam lr {budget['physical_lr']:g} (the paper: "
         f"{learning_rate:g} for every parameter), so that they can be identified within the reduced "
         "schedule."]
        if budget["physical_lr"] != learning_rate else [])
    return finish_study(
        study, figure_examples=examples, field=field,
        title=f"{dataset}: true vs predicted, first test trajectory",
        config={**settings, "dataset": dataset, "split_sizes": sizes,
                "true_parameters": true_parameters, "initial_parameters": initial_parameters},
        paper=paper, deviations=_budget_deviations(study, budget, paper_schedule) + lr_deviation + deviations
        + COMMON_DEVIATIONS[:1] + [
            "Rows are mean ± std over seeds (network initialisation and minibatch order).",
            "neural_ode is APHYNITY's F_a alone (same network and schedule, no ‖F_a‖ term); the reference "
            "code's `--phy none` does not build a physics-free model. It is trained once per seed and shown "
            "in every physics group.",
            "true_physics is each group's physical model at the true parameter values (incomplete: without "
            "the missing terms); nothing is trained, so every seed gives the same value (std 0).",
        ],
        notes=notes + [APHYNITY_PAPER_NOTE, MIN_NORM_NOTE]
        + variant_notes(budget_variants)
        + (extra_notes(study, budget) if extra_notes else []),
        targets=measured)
