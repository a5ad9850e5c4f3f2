"""CoDA on 2-D Navier–Stokes vorticity (Kirchmeyer et al., ICML 2022): five viscosities, four new ones.

θ_e = θ_c + W ξ_e for a 2-D FNO (12 × 12 modes, width 10, 4 layers, head 128, Swish), ξ_e ∈ ℝ²; Euler with
one step per observation (Δt = 1, 10 frames); ℓ_m = 1e-6, ℓ_c = 1e-4; Adam lr 1e-3, gradient clipping 1;
restarts ε = 0.99 · 0.99^(i/15). Adaptation: new contexts with θ_c and W frozen.

Methods ``one_per_env``, ``leads`` (fine-tuned on the new environments), ``coda_l2``, ``coda_l1``; metrics
``indomain_mse`` and ``adapt_mse``.

GPU-sized (≈ 140 h for the official schedule on one core): ``smoke``/``mini`` run the dataset's 16 × 16
``mini`` scale (dt = 0.01, 1-unit spin-up, 4 frames), ``cpu`` its 16 × 16 ``cpu`` scale (5-unit spin-up,
10 frames, 2 training trajectories per environment), both with 6 × 6 modes (12 do not fit a 16-point grid);
``paper`` is a GPU job, documented, not run.

Run ``python studies/coda_ns.py --budget smoke|mini|cpu|paper [--seeds ...] [--threads N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from physml.nn import FNO2d  # noqa: E402
from studies.dynamics_common import CODA_PENALTY, coda_adaptation_target, coda_main  # noqa: E402

BUDGETS = {
    "smoke": {"scale": "mini", "epochs": 1, "validate_every": 1, "adaptation_epochs": 1, "modes": 4,
              "width": 4, "head": 8, "frames": 3},
    "mini": {"scale": "mini", "epochs": 150, "validate_every": 10, "adaptation_epochs": 100, "modes": 6,
             "width": 10, "head": 128, "restart_decay_every": 1, "adaptation_restart_decay_every": 1},
    "cpu": {"scale": "cpu", "epochs": 600, "validate_every": 20, "adaptation_epochs": 300, "modes": 6,
            "width": 10, "head": 128, "restart_decay_every": 2, "adaptation_restart_decay_every": 2},
    "paper": {"scale": "paper", "epochs": 120_000, "validate_every": 15, "adaptation_epochs": 120_000,
              "modes": 12, "width": 10, "head": 128},
}


def network(budget, generator):
    modes = budget["modes"]
    return FNO2d(1, 1, modes=(modes, modes), width=budget["width"], n_layers=4, head_width=budget["head"],
                 activation="swish", generator=generator, dtype=torch.float32)


def main(argv=None):
    return coda_main(
        name="coda_ns", description=__doc__, dataset="coda_ns", budgets=BUDGETS, network=network,
        solver={"method": "euler"}, learning_rate=1e-3,
        restart={"initial": 0.99, "decay": 0.99, "every": 15, "minimum": 1e-3},
        adaptation_restart={"initial": 0.95, "decay": 0.95, "every": 30, "minimum": 1e-3},
        leads_penalty={"penalty_weight": 1 / 1e5, "lipschitz_weight": 1e-4}, coda_penalty=CODA_PENALTY,
        paper={}, dtype=torch.float32, variables=["vorticity"],
        deviations=[
            "Reduced problem below the paper budget: 16 × 16 grid, dt = 0.01, 6 × 6 modes (the paper: "
            "32 × 32, dt = 1e-3, 28.5-unit spin-up, 16 training / 32 test trajectories per environment, "
            "12 × 12 modes); the mini scale has a 1-unit spin-up, 4 frames and 1 trajectory per split and "
            "environment, the cpu scale a 5-unit spin-up, 10 frames, 2 training / 1 validation / 4 test "
            "trajectories per environment and 1 / 4 on the adaptation environments.",
            "Restart decay every 1–2 iterations below the paper budget (the paper: every 15).",
        ],
        notes=["The CoDA paper's Table 2 numbers could not be retrieved (reference notes §3.4, §7)."],
        field=True, paper_schedule="up to 120 000 iterations at 32 × 32", targets=coda_adaptation_target,
        argv=argv)


if __name__ == "__main__":
    main()
