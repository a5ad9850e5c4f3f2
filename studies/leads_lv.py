"""LEADS on Lotka–Volterra (Yin et al., NeurIPS 2021): ten environments, one training trajectory each.

dX/dt = f(X) + g_e(X) with f shared and g_e per environment, MLPs 2→64→64→64→2 (Swish, normal init
std 0.05), RK4 with one step per observation (Δt = 0.5, 20 frames); penalty λ⁻¹ · (Σ_e mean |g_e(X)|²/|X|² +
10⁻² Σ σ_max(W)²) with λ⁻¹ = 1/5e3; Adam lr 1e-3; restarts from the ground truth with ε = 0.99 · 0.99^(i/10).

Methods: ``one_for_all`` (one network for all environments), ``one_per_env`` (an independent network per
environment), ``leads_no_min`` (λ⁻¹ = 0), ``leads``. Metric: ``test_mse`` over 32 test trajectories per
environment (free rollouts from t₀), and ``log10_test_mse``.

Run ``python studies/leads_lv.py --budget smoke|mini|cpu|paper [--seeds ...] [--threads N]``. The ``paper``
budget (the reference's 120 000-iteration cap) is a GPU-sized job; it is documented, not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from physml.nn import MLP  # noqa: E402
from studies.dynamics_common import leads_main, target  # noqa: E402

DATASET = "leads_lv"
# epochs = iterations (one training trajectory per environment: one minibatch per epoch).
BUDGETS = {
    "smoke": {"scale": "mini", "epochs": 2, "validate_every": 1, "hidden": 8, "frames": 6},
    "mini": {"scale": "paper", "epochs": 400, "validate_every": 25, "hidden": 64, "restart_decay_every": 1},
    "cpu": {"scale": "paper", "epochs": 5000, "validate_every": 25, "hidden": 64, "restart_decay_every": 3},
    "paper": {"scale": "paper", "epochs": 120_000, "validate_every": 50, "hidden": 64},
}
PAPER = {("leads", "test_mse"): 1.16e-3}  # README of yuan-yin/LEADS (std 0.99e-3 over test batches)


def network(budget, generator):
    width = budget["hidden"]
    return MLP(2, 2, (width, width, width), activation="swish", initialization="normal", gain=0.05,
               generator=generator, dtype=torch.float64)


def targets(data, budget):
    from studies.harness import mean_of

    mse = {method: mean_of(data, method, "test_mse") for method in ("leads", "one_for_all", "one_per_env")}
    below = mse["leads"] < mse["one_for_all"] and mse["leads"] < mse["one_per_env"]
    reached = mse["leads"] <= 1.2e-3
    why = []
    if not reached:
        epochs = BUDGETS[budget]["epochs"]
        best = mean_of(data, "leads", "best_epoch")
        why.append(f"training stops at {epochs} iterations (the paper: up to 120 000) while LEADS is still "
                   f"improving: its validation-selected epoch is {best:.0f} on average, at the end of the "
                   "schedule")
        try:
            longer = mean_of(data, "leads_12000", "test_mse")
        except KeyError:  # budgets without the longer ablation
            longer = None
        if longer is not None:
            longer_best = mean_of(data, "leads_12000", "best_epoch")
            why.append(f"trained for 12 000 iterations (row leads_12000) LEADS reaches {longer:.3e} "
                       f"({'within' if longer <= 1.2e-3 else 'still above'} 1.2e-3), its validation-selected "
                       f"epoch {longer_best:.0f} on average")
    if not below:
        why.append("leads does not beat every baseline at this schedule")
    return [target("leads test_mse <= 1.2e-3 (paper 1.16 ± 0.99e-3)", reached, f"{mse['leads']:.3e}",
                   "; ".join(why) or "met at the reduced schedule"),
            target("leads test_mse below one_for_all and one_per_env", below,
                   ", ".join(f"{method} {value:.3e}" for method, value in mse.items()),
                   "shared f with small penalised g_e" if below else "; ".join(why))]


def main(argv=None):
    return leads_main(
        name="leads_lv", description=__doc__, dataset=DATASET, budgets=BUDGETS, network=network,
        solver={"method": "rk4"}, penalty_weight=1 / 5e3, lipschitz_weight=1e-2, learning_rate=1e-3,
        restart={"initial": 0.99, "decay": 0.99, "every": 10}, paper=PAPER,
        deviations=[
            "Data solved by physml's dopri8 at rtol = atol = 1e-10 (the paper: SciPy RK45 at its default "
            "tolerances), with the paper's seed rule; a 4-trajectory validation split per environment added.",
            "Restart probability decays every 3 iterations at the cpu budget (every 1 at mini; the paper: "
            "every 10) so that rollouts run freely (ε < 1e-2 after ~1 400 iterations) within the reduced "
            "schedule.",
            "The paper's baseline rows (Table 1) could not be retrieved; only the LEADS row (README) is "
            "filled in the paper column.",
        ],
        notes=["one_for_all is one network for every environment (the reference's f + g, which is one "
               "function); one_per_env an independent network per environment."],
        field=False, paper_schedule="up to 120 000 iterations, restarts decaying every 10", targets=targets,
        variants={"cpu": {"leads_12000": {
            "base": "leads", "epochs": 12_000,
            "note": "LEADS trained for 12 000 iterations instead of the budget's 5 000 (an ablation used by "
                    "no target): does the still-improving LEADS reach the paper's 1.2e-3 with a longer "
                    "schedule? The baselines are not re-run at this length."}}},
        argv=argv)


if __name__ == "__main__":
    main()
