"""CoDA on Lotka–Volterra (Kirchmeyer et al., ICML 2022): nine training environments, four new ones.

Every environment uses θ_e = θ_c + W ξ_e for an MLP 2→64→64→64→2 (Swish), ξ_e ∈ ℝ², RK4 with one step per
observation (Δt = 0.5, 20 frames). Loss MSE + ℓ_m R(W) + ℓ_c |Ξ|² with ℓ_m = 1e-6 (R: the ℓ1,2 row norm for
``coda_l1``, the squared Frobenius norm for ``coda_l2``) and ℓ_c = 1e-4; Adam lr 1e-3, gradient clipping 1;
restarts ε = 0.99 · 0.99^(i/30). Adaptation to the four new environments (one trajectory each) trains new
contexts ξ with θ_c and W frozen.

Methods: ``one_per_env``, ``leads`` (fine-tuned on the new environments: new g_e, f frozen), ``coda_l2``,
``coda_l1``. Metrics: ``indomain_mse`` (32 test trajectories per training environment) and ``adapt_mse``
(32 test trajectories per new environment).

Run ``python studies/coda_lv.py --budget smoke|mini|cpu|paper [--seeds ...] [--threads N]``. The ``paper``
budget (the reference's 120 000-iteration cap, twice) is a GPU-sized job; it is documented, not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from physml.nn import MLP  # noqa: E402
from studies.dynamics_common import CODA_LEADS_PENALTY, CODA_PENALTY, coda_adaptation_target, coda_main  # noqa: E402

DATASET = "coda_lv"
# epochs = iterations (all training trajectories of every environment in one minibatch, as the reference).
BUDGETS = {
    "smoke": {"scale": "mini", "epochs": 2, "validate_every": 1, "adaptation_epochs": 2, "hidden": 8,
              "frames": 6},
    "mini": {"scale": "paper", "epochs": 300, "validate_every": 25, "adaptation_epochs": 200, "hidden": 64,
             "restart_decay_every": 1, "adaptation_restart_decay_every": 1},
    "cpu": {"scale": "paper", "epochs": 2000, "validate_every": 25, "adaptation_epochs": 1000, "hidden": 64,
            "restart_decay_every": 3, "adaptation_restart_decay_every": 3},
    "paper": {"scale": "paper", "epochs": 120_000, "validate_every": 30, "adaptation_epochs": 120_000,
              "hidden": 64},
}


def network(budget, generator):
    width = budget["hidden"]
    return MLP(2, 2, (width, width, width), activation="swish", generator=generator, dtype=torch.float64)


def main(argv=None):
    return coda_main(
        name="coda_lv", description=__doc__, dataset=DATASET, budgets=BUDGETS, network=network,
        solver={"method": "rk4"}, learning_rate=1e-3,
        restart={"initial": 0.99, "decay": 0.99, "every": 30, "minimum": 1e-3},
        adaptation_restart={"initial": 0.95, "decay": 0.95, "every": 30, "minimum": 1e-3},
        leads_penalty=CODA_LEADS_PENALTY, coda_penalty=CODA_PENALTY, paper={},
        deviations=[
            "Data solved by physml's dopri8 at rtol = atol = 1e-10 (the paper: SciPy RK45 at its default "
            "tolerances) with the paper's seed rule; a 4-trajectory validation split per environment added.",
            "Restart decay every 3 iterations at the cpu budget (the paper: every 30) so that rollouts run "
            "freely within the reduced schedule.",
            "PyTorch-default initialisation of the root network drawn from the seed's generator.",
        ],
        notes=["The CoDA paper's Table 2 numbers could not be retrieved (reference notes §3.4, §7): no paper "
               "column is filled. A short official-code CPU run reached in-domain MSE 1.19e-4 for coda_l1 "
               "after ~2 750 iterations (test-selected, ε still 0.40)."],
        field=False, paper_schedule="up to 120 000 iterations in-domain and for adaptation",
        targets=coda_adaptation_target, argv=argv)


if __name__ == "__main__":
    main()
