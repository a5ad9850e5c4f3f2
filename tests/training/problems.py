"""Small multi-environment problems shared by the training tests (and their spawned workers)."""

import torch

from physml.models.leads import Leads
from physml.nn.mlp import MLP
from physml.training import TrajectorySet
from simulators.lotka_volterra import LotkaVolterra

#: (alpha, gamma) of the environments, a subset of LEADS's.
ENVIRONMENTS = ((0.5, 0.5), (1.0, 0.5), (0.5, 1.0))


def lotka_volterra(n_samples: int, seed: int, n_times: int = 8, environments=(0, 1, 2)) -> TrajectorySet:
    """``n_samples`` Lotka–Volterra trajectories per environment (float64, Δt = 0.5)."""
    pairs = [ENVIRONMENTS[e] for e in environments]
    alpha = torch.tensor([a for a, _ in pairs for _ in range(n_samples)], dtype=torch.float64)
    gamma = torch.tensor([g for _, g in pairs for _ in range(n_samples)], dtype=torch.float64)
    system = LotkaVolterra(alpha=alpha, gamma=gamma)
    y0 = system.sample_initial_conditions(len(alpha), torch.Generator().manual_seed(seed))
    times = torch.arange(n_times, dtype=torch.float64) * 0.5
    ys = system.simulate(y0, times, method="dopri5", rtol=1e-9, atol=1e-11).ys  # (time, sample, state)
    states = ys.transpose(0, 1).reshape(len(pairs), n_samples, n_times, 2)
    parameters = {"alpha": alpha.view(len(pairs), -1), "gamma": gamma.view(len(pairs), -1)}
    return TrajectorySet(states, times, ("x", "y"), tuple(environments), parameters,
                         name=f"lotka_volterra(seed={seed})")


def leads_model(seed: int = 0, n_environments: int = 3, width: int = 8, **solver) -> Leads:
    generator = torch.Generator().manual_seed(seed)

    def network():
        return MLP(2, 2, (width, width), initialization="normal", gain=0.1, generator=generator,
                   dtype=torch.float64)

    return Leads(network(), network, n_environments, penalty_weight=1e-2, generator=generator,
                 state_names=("x", "y"), **solver)
