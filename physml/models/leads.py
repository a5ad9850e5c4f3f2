"""LEADS (Yin et al., NeurIPS 2021): dynamics shared across environments plus small per-environment parts.

dX/dt = f(X) + g_e(X) for environment e.  The loss is ``MSE + λ⁻¹ Ω`` with

    Ω = lipschitz_weight · Σ_e Σ_layers σ_max(W)² + Σ_e mean_{batch, time} (|g_e(X)| / (|X| + 1e-5))²,

which keeps every g_e small (its Lipschitz bound through the spectral norms of its weights, and its
output relative to the state), so that whatever the environments share ends up in f.  The spectral norms
come from power iterations whose vectors persist between calls (buffers, so checkpoints keep them).

All g_e live in one :class:`physml.nn.stacked.StackedModules`: every environment is evaluated in one
vectorised call, and f on all environments' states at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..nn.stacked import StackedModules, stacked_plan, stacked_state, weight_matrices
from .neural_ode import NeuralODE, _check_environment_count

__all__ = ["Leads"]

_NORM_EPSILON = 1e-5


def _architecture(module: nn.Module) -> list:
    # Layer types and settings (sizes, activations, scales, padding) and parameter names: two modules
    # with equal descriptions compute the same function of their parameters.
    layers = [(name, type(layer).__name__, layer.extra_repr()) for name, layer in module.named_modules()]
    return layers + sorted(name for name, _ in module.named_parameters())


def _normalize(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class Leads(NeuralODE):
    """Shared vector field ``f`` plus one ``g_e`` per environment, with the LEADS penalty.

    Parameters
    ----------
    shared : nn.Module
        f, applied to the states of every environment (``(batch, *state)`` in, same shape out).
    environment_factory : callable
        Returns a fresh g (same architecture each call); it is called ``n_environments`` times and the
        results are stacked.  Kept for :meth:`adapt`.
    n_environments : int
        Number of training environments.
    penalty_weight : float
        λ⁻¹ (LEADS: 1/5e3 on Lotka–Volterra, 1/1e3 Gray–Scott, 1/1e5 Navier–Stokes); 0 is the
        "LEADS no min" ablation.
    lipschitz_weight : float
        Weight of the spectral-norm sum inside Ω (1e-2, 1e-2, 1e-4).
    power_iterations : int
        Power-iteration steps per penalty evaluation (5).
    generator : torch.Generator, optional
        Draws the initial power-iteration vectors.
    **solver
        As for :class:`NeuralODE`.

    Examples
    --------
    >>> import torch
    >>> from physml.nn.mlp import MLP
    >>> generator = torch.Generator().manual_seed(0)
    >>> model = Leads(MLP(2, 2, (16,), generator=generator), lambda: MLP(2, 2, (16,), generator=generator),
    ...               n_environments=3, generator=generator)
    >>> model(torch.tensor(0.0), torch.randn(3, 4, 2)).shape   # (environments, batch, state)
    torch.Size([3, 4, 2])
    >>> model.penalty(torch.rand(3, 4, 10, 2)).ndim            # (environments, batch, time, state)
    0
    """

    def __init__(self, shared: nn.Module, environment_factory: Callable[[], nn.Module],
                 n_environments: int, *, penalty_weight: float = 1 / 5e3, lipschitz_weight: float = 1e-2,
                 power_iterations: int = 5, generator: torch.Generator | None = None, **solver):
        _check_environment_count(n_environments)
        if not isinstance(shared, nn.Module):
            raise TypeError(f"shared must be an nn.Module, got {type(shared).__name__}")
        if not callable(environment_factory):
            raise TypeError(f"environment_factory must be callable, got {environment_factory!r}")
        for name, value in (("penalty_weight", penalty_weight), ("lipschitz_weight", lipschitz_weight)):
            if not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) \
                or power_iterations < 1:
            raise ValueError(f"power_iterations must be a positive integer, got {power_iterations!r}")
        super().__init__(None, n_environments=n_environments, **solver)
        self.shared = shared
        self.environment_models = StackedModules.from_factory(environment_factory, n_environments)
        self.environment_factory = environment_factory
        self.penalty_weight, self.lipschitz_weight = float(penalty_weight), float(lipschitz_weight)
        self.power_iterations = power_iterations
        self._solver = solver
        self._same_architecture: bool | None = None
        self.power_vectors = nn.Module()
        for index, matrix in enumerate(self._weight_matrices().values()):
            members, rows, columns = matrix.shape
            left = torch.randn(members, rows, generator=generator, dtype=matrix.dtype).to(matrix.device)
            right = torch.randn(members, columns, generator=generator, dtype=matrix.dtype).to(matrix.device)
            self.power_vectors.register_buffer(f"left_{index}", _normalize(left))
            self.power_vectors.register_buffer(f"right_{index}", _normalize(right))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        environments, batch = y.shape[:2]
        shared = self.shared(y.reshape(environments * batch, *y.shape[2:])).reshape(y.shape)
        return shared + self.environment_models(y)

    def prepared_vector_field(self):
        """f and every g_e as one stacked evaluation of 2E members, prepared once per solve.

        When f has the architecture of the g_e (the LEADS setting), f's parameters are repeated for
        each environment and stacked after the g_e's, halving the number of layer calls per
        right-hand-side evaluation; otherwise f and the stacked g_e run side by side.
        """
        environments = self.environment_models.count
        specific = self.environment_models.stacked_parameters()
        if not self._shared_matches_environments():
            plan = self.environment_models.plan()
            return lambda t, y: self.shared(y.reshape(-1, *y.shape[2:])).reshape(y.shape) + plan(y)
        shared = stacked_state(self.shared)
        combined = {name: torch.cat([specific[name], shared[name].expand(environments, *shared[name].shape)])
                    for name in specific}
        plan = stacked_plan(self.environment_models.members, combined)

        def field(t, y):
            both = plan(torch.cat([y, y]))
            return both[:environments] + both[environments:]

        return field

    def _shared_matches_environments(self) -> bool:
        if self._same_architecture is None:
            members = self.environment_models.members
            self._same_architecture = _architecture(self.shared) == _architecture(members)
        return self._same_architecture

    def _weight_matrices(self) -> dict[str, torch.Tensor]:
        return weight_matrices(self.environment_models.members, self.environment_models.stacked_parameters())

    def spectral_norms(self) -> torch.Tensor:
        """σ_max of every weight matrix of every g_e, shape ``(n_environments, n_matrices)``.

        Each call advances the persistent power iterations by ``power_iterations`` steps (without
        gradient), then returns ``uᵀ W v``, differentiable with respect to W.
        """
        norms = []
        for index, matrix in enumerate(self._weight_matrices().values()):
            left = getattr(self.power_vectors, f"left_{index}")
            right = getattr(self.power_vectors, f"right_{index}")
            with torch.no_grad():
                detached = matrix.detach()
                for _ in range(self.power_iterations):
                    right = _normalize(torch.einsum("erc,er->ec", detached, left))
                    left = _normalize(torch.einsum("erc,ec->er", detached, right))
                getattr(self.power_vectors, f"left_{index}").copy_(left)
                getattr(self.power_vectors, f"right_{index}").copy_(right)
            norms.append(torch.einsum("er,erc,ec->e", left, matrix, right))
        return torch.stack(norms, dim=1)

    def output_magnitude(self, states: torch.Tensor) -> torch.Tensor:
        """Σ_e mean over batch and time of (|g_e(X)| / (|X| + 1e-5))², states ``(E, batch, time, *state)``."""
        environments = states.shape[0]
        flat = states.reshape(environments, -1, *states.shape[3:])
        ratio = self.environment_models(flat).norm(dim=2) / (flat.norm(dim=2) + _NORM_EPSILON)
        return (ratio**2).reshape(environments, -1).mean(dim=1).sum()

    def penalty(self, states: torch.Tensor) -> torch.Tensor | None:
        if self.penalty_weight == 0:
            return None
        omega = self.output_magnitude(states)
        if self.lipschitz_weight:
            omega = omega + self.lipschitz_weight * (self.spectral_norms() ** 2).sum()
        return self.penalty_weight * omega

    def adapt(self, n_environments: int, *, generator: torch.Generator | None = None) -> Leads:
        """A LEADS model for new environments: a frozen copy of f and fresh g_e from the factory.

        Training it fits only the new g_e (LEADS's adaptation to new environments); the penalty settings
        are kept.
        """
        shared = copy.deepcopy(self.shared).requires_grad_(False)
        adapted = Leads(shared, self.environment_factory, n_environments, penalty_weight=self.penalty_weight,
                        lipschitz_weight=self.lipschitz_weight, power_iterations=self.power_iterations,
                        generator=generator, **self._solver)
        # The factory builds on its own device; the new g_e belong beside f.
        device = next(iter(shared.parameters()), torch.empty(0)).device
        return adapted.to(device)
