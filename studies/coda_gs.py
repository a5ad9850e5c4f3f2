"""CoDA on Gray–Scott (Kirchmeyer et al., ICML 2022): four (F, k) environments, four new ones.

θ_e = θ_c + W ξ_e for a 4-layer 3×3 ConvNet 2→64→64→64→2 (Swish, circular padding, output × 5e-4), ξ_e ∈ ℝ²;
RK4 with one step per observation interval (Δt = 40, 10 frames); ℓ_m = 1e-6, ℓ_c = 1e-4; Adam lr 1e-3,
gradient clipping 1; restarts ε = 0.99 · 0.99^(i/30). Adaptation: new contexts with θ_c and W frozen.

Methods ``one_per_env``, ``leads`` (fine-tuned on the new environments), ``coda_l2``, ``coda_l1``; metrics
``indomain_mse`` and ``adapt_mse``.

GPU-sized at 32 × 32 (≈ 53 h for the official schedule on one core): ``smoke``/``mini``/``cpu`` run the
dataset's 16 × 16 ``mini`` scale; ``paper`` is a GPU job, documented, not run.

Run ``python studies/coda_gs.py --budget smoke|mini|cpu|paper [--seeds ...] [--threads N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from physml.nn import ConvNet2d  # noqa: E402
from studies.dynamics_common import CODA_PENALTY, coda_adaptation_target, coda_main  # noqa: E402

BUDGETS = {
    "smoke": {"scale": "mini", "epochs": 1, "validate_every": 1, "adaptation_epochs": 1, "hidden": 4,
              "frames": 4},
    "mini": {"scale": "mini", "epochs": 120, "validate_every": 10, "adaptation_epochs": 80, "hidden": 64,
             "restart_decay_every": 1, "adaptation_restart_decay_every": 1},
    "cpu": {"scale": "mini", "epochs": 500, "validate_every": 20, "adaptation_epochs": 300, "hidden": 64,
            "restart_decay_every": 2, "adaptation_restart_decay_every": 2},
    "paper": {"scale": "paper", "epochs": 120_000, "validate_every": 30, "adaptation_epochs": 120_000,
              "hidden": 64},
}


def network(budget, generator):
    return ConvNet2d(2, 2, hidden_channels=budget["hidden"], n_layers=4, activation="swish",
                     padding_mode="circular", output_scale=5e-4, generator=generator, dtype=torch.float32)


def main(argv=None):
    return coda_main(
        name="coda_gs", description=__doc__, dataset="coda_gs", budgets=BUDGETS, network=network,
        solver={"method": "rk4"}, learning_rate=1e-3,
        restart={"initial": 0.99, "decay": 0.99, "every": 30, "minimum": 1e-3},
        adaptation_restart={"initial": 0.95, "decay": 0.95, "every": 30, "minimum": 1e-3},
        leads_penalty={"penalty_weight": 1 / 1e3, "lipschitz_weight": 1e-2}, coda_penalty=CODA_PENALTY,
        paper={}, dtype=torch.float32,
        deviations=[
            "Reduced grid below the paper budget: 16 × 16 with 2 × 2 seed squares and 1 test trajectory per "
            "environment (the paper: 32 × 32, 32 test trajectories).",
            "Restart decay every 1–2 iterations below the paper budget (the paper: every 30).",
        ],
        notes=["The CoDA paper's Table 2 numbers could not be retrieved (reference notes §3.4, §7)."],
        field=True, paper_schedule="up to 120 000 iterations at 32 × 32", targets=coda_adaptation_target,
        argv=argv)


if __name__ == "__main__":
    main()
