"""APHYNITY on the damped pendulum (Yin et al., ICLR 2021): incomplete and complete physics.

dX/dt = F_p(X; θ_p) + F_a(X) with F_p the frictionless pendulum (learnable ω0², "incomplete") or the damped
pendulum (learnable ω0² and α, "complete"), F_a an MLP 2→200→200→2 (ReLU, orthogonal init, gain 0.2); RK4
with one step per observation (Δt = 0.5), 40 frames; ‖F_a‖² normalised by ‖X‖²; adaptive λ (λ₀ = 1,
τ₂ = 1, 5 Adam steps per batch, lr 1e-3); the whole training set (25 trajectories) per batch.

Methods: ``neural_ode`` (F_a alone), ``physics_only`` (F_p alone, parameters fitted), ``true_physics``
(F_p with the true parameters), ``aphynity``; rows grouped by ``physics`` (incomplete / complete).
Metrics: ``test_mse``, ``log10_test_mse``, ``param_rel_error`` (largest relative error over the identified
parameters), ``param_rel_error_mean`` (the paper's mean), and the error and estimate of each parameter.

Run ``python studies/aphynity_pendulum.py --budget smoke|mini|cpu|paper [--seeds ...] [--threads N]``.
The ``paper`` budget (50 000 outer iterations at lr 1e-3 for every parameter, ≈ 6 h per run on one CPU
core at the official loop's speed) is a GPU-sized job; it is documented, not run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from physml.nn import MLP  # noqa: E402
from simulators.pendulum import DampedPendulum  # noqa: E402
from studies.dynamics_common import aphynity_main, target  # noqa: E402
from studies.harness import mean_of  # noqa: E402

DATASET = "aphynity_pendulum"
TRUE = {"omega0_squared": (2 * math.pi / 6) ** 2, "alpha": 0.2}
INITIAL = {"omega0_squared": 0.2, "alpha": 0.1}  # the reference code's starting values

# epochs = outer iterations (one batch holds the whole training set); physical_lr: θ_p's Adam rate.
BUDGETS = {
    "smoke": {"scale": "mini", "epochs": 2, "validate_every": 1, "physical_lr": 0.1, "hidden": 8,
              "frames": 8},
    "mini": {"scale": "paper", "epochs": 250, "validate_every": 10, "physical_lr": 0.1, "hidden": 200},
    "cpu": {"scale": "paper", "epochs": 400, "validate_every": 10, "physical_lr": 0.1, "hidden": 200},
    "paper": {"scale": "paper", "epochs": 50_000, "validate_every": 100, "physical_lr": 1e-3, "hidden": 200},
}


def prior(budget, physics: str, true: bool) -> DampedPendulum:
    values = TRUE if true else INITIAL
    if physics == "incomplete":
        return DampedPendulum(alpha=0.0, omega0_squared=values["omega0_squared"],
                              learnable=() if true else ["omega0_squared"])
    return DampedPendulum(alpha=values["alpha"], omega0_squared=values["omega0_squared"],
                          learnable=() if true else ["omega0_squared", "alpha"])


def augmentation(budget, generator):
    width = budget["hidden"]
    return MLP(2, 2, (width, width), activation="relu", initialization="orthogonal", gain=0.2,
               generator=generator, dtype=torch.float64)


def targets(data, budget):
    group = {"physics": "incomplete"}
    error = mean_of(data, "aphynity", "param_rel_error_omega0_squared", **group)
    mse = {method: mean_of(data, method, "test_mse", **group) for method in ("aphynity", "neural_ode",
                                                                             "physics_only")}
    beats = mse["aphynity"] < mse["neural_ode"] and mse["aphynity"] < mse["physics_only"]
    return [
        target("aphynity (incomplete physics) param_rel_error on ω0² < 0.05", error < 0.05, f"{error:.4f}",
               "ω0² identified (θ_p with its own learning rate, a stated deviation)" if error < 0.05 else
               "ω0² not identified within this reduced schedule: F_a still absorbs part of the gravity term"),
        target("aphynity (incomplete) test_mse below neural_ode and physics_only", beats,
               ", ".join(f"{method} {value:.3e}" for method, value in mse.items()),
               "the prior carries the oscillation, F_a the friction" if beats else
               "see the per-seed values: the schedule is far shorter than the paper's"),
    ]


def main(argv=None):
    return aphynity_main(
        name="aphynity_pendulum", description=__doc__, dataset=DATASET, budgets=BUDGETS, prior=prior,
        augmentation=augmentation, true_parameters=TRUE, initial_parameters=INITIAL,
        augmentation_norm="l2_normalized", solver={"method": "rk4"}, learning_rate=1e-3, inner_steps=5,
        trajectory_weight_increment=1.0, paper={},
        deviations=[
            "Data solved by physml's dopri8 at rtol = atol = 1e-10 (the paper: SciPy DOP853, rtol 1e-10) "
            "with the paper's seed rule; a 25-trajectory validation split added.",
        ],
        notes=["The official loop at lr 1e-3 moved ω0² only from 0.20 to 0.32 in 9 CPU minutes (reference "
               "notes §1.4), hence θ_p's own learning rate at the reduced budgets. With θ_p at lr 1e-2, our "
               "250-iteration run still left ω0² 44 % off (F_a absorbed part of the gravity term); at 0.1 a "
               "probe run (seed 0) reached ω0² = 1.080 after 225 iterations, hence 0.1."],
        field=False, paper_schedule="50 000 outer iterations of 5 Adam steps", targets=targets, argv=argv)


if __name__ == "__main__":
    main()
