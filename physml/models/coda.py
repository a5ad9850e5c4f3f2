"""CoDA (Kirchmeyer et al., ICML 2022): environment-specific weights from a low-dimensional context.

Every environment e uses the network's weights θ_e = θ_c + W ξ_e: θ_c shared, W a bias-free linear
hypernetwork from the context space ℝ^d to all of the network's parameters, and ξ_e a learned context
vector (initially 0).  The penalty is ``ℓ_m R(W) + ℓ_c ‖Ξ‖²`` with R the ℓ1,2 norm of W's rows (CoDA-ℓ1:
whole rows vanish, so W adapts few parameters) or its squared Frobenius norm (CoDA-ℓ2).  Adapting to a
new environment trains a new ξ only, with θ_c and W frozen (:meth:`Coda.adapt`).

All environments run in one call: θ_e for every e is one ``(E, d) @ (d, n_parameters)`` product, and the
network is evaluated with the stacked θ_e through :func:`physml.nn.stacked.stacked_forward`.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..nn.stacked import stacked_forward, stacked_plan
from .neural_ode import NeuralODE, _check_environment_count

__all__ = ["CODA_REGULARIZATIONS", "Coda"]

#: Penalties on the hypernetwork W: the ℓ1,2 row norm (CoDA-ℓ1) or the squared Frobenius norm (CoDA-ℓ2).
CODA_REGULARIZATIONS = ("l1", "l2")


class Coda(NeuralODE):
    """Context-informed dynamics: θ_e = θ_c + W ξ_e for a shared network architecture.

    Parameters
    ----------
    network : nn.Module
        The root network; its current parameters are θ_c (``network.parameters()``, trained).
    n_environments : int
        Number of environments (one context vector each).
    code_dim : int
        Dimension d of the contexts ξ_e (CoDA: 2).
    regularization : {"l1", "l2"}
        R(W): ``"l1"`` = Σ_rows |W_i|₂ (CoDA-ℓ1), ``"l2"`` = |W|²_F (CoDA-ℓ2).
    weight_penalty : float
        ℓ_m (1e-6).
    code_penalty : float
        ℓ_c on |Ξ|²_F (1e-4).
    generator : torch.Generator, optional
        Draws W's initial values, uniform on ±1/√d (PyTorch's default for a bias-free ``nn.Linear``).
    **solver
        As for :class:`NeuralODE`.

    Examples
    --------
    >>> import torch
    >>> from physml.nn.mlp import MLP
    >>> generator = torch.Generator().manual_seed(0)
    >>> model = Coda(MLP(2, 2, (16,), generator=generator), n_environments=4, generator=generator)
    >>> model(torch.tensor(0.0), torch.randn(4, 3, 2)).shape   # (environments, batch, state)
    torch.Size([4, 3, 2])
    >>> model.hypernetwork.shape                                # (parameters of the network, d)
    torch.Size([83, 2])
    """

    def __init__(self, network: nn.Module, n_environments: int, code_dim: int = 2, *,
                 regularization: str = "l1", weight_penalty: float = 1e-6, code_penalty: float = 1e-4,
                 generator: torch.Generator | None = None, **solver):
        _check_environment_count(n_environments)
        _check_environment_count(code_dim, "code_dim")
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be an nn.Module, got {type(network).__name__}")
        if regularization not in CODA_REGULARIZATIONS:
            raise ValueError(f"regularization must be one of {CODA_REGULARIZATIONS}, got {regularization!r}")
        for name, value in (("weight_penalty", weight_penalty), ("code_penalty", code_penalty)):
            if not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        super().__init__(None, n_environments=n_environments, **solver)
        self.network = network
        parameters = list(network.named_parameters())
        if not parameters:
            raise ValueError(f"network {type(network).__name__} has no parameters to adapt per environment")
        reference = parameters[0][1]
        self.parameter_shapes = {name: tuple(value.shape) for name, value in parameters}
        n_parameters = sum(value.numel() for _, value in parameters)
        bound = 1.0 / math.sqrt(code_dim)
        # Drawn on the CPU (where a default generator lives), then moved next to the network.
        hypernetwork = torch.empty(n_parameters, code_dim, dtype=reference.dtype)
        hypernetwork.uniform_(-bound, bound, generator=generator)
        self.hypernetwork = nn.Parameter(hypernetwork.to(reference.device))
        self.codes = nn.Parameter(torch.zeros(n_environments, code_dim, dtype=reference.dtype,
                                              device=reference.device))
        self.regularization = regularization
        self.weight_penalty, self.code_penalty = float(weight_penalty), float(code_penalty)
        self._solver = solver

    def environment_parameters(self) -> dict[str, torch.Tensor]:
        """θ_e = θ_c + W ξ_e for every environment, by the network's parameter names, shapes ``(E, ...)``.

        The network's buffers are shared by all environments (expanded, not copied).
        """
        shared = torch.cat([value.reshape(-1) for value in self.network.parameters()])
        flat = shared + self.codes @ self.hypernetwork.T
        environments = flat.shape[0]
        stacked, offset = {}, 0
        for name, shape in self.parameter_shapes.items():
            size = math.prod(shape)
            stacked[name] = flat[:, offset: offset + size].reshape(environments, *shape)
            offset += size
        for name, buffer in self.network.named_buffers():
            stacked[name] = buffer.expand(environments, *buffer.shape)
        return stacked

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return stacked_forward(self.network, self.environment_parameters(), y)

    def prepared_vector_field(self):
        """θ_e computed once for a whole solve (the hypernetwork output does not change within it)."""
        plan = stacked_plan(self.network, self.environment_parameters())
        return lambda t, y: plan(y)

    def hypernetwork_norm(self) -> torch.Tensor:
        """R(W): the ℓ1,2 row norm or the squared Frobenius norm, per ``regularization``."""
        if self.regularization == "l1":
            return self.hypernetwork.norm(dim=1).sum()
        return (self.hypernetwork**2).sum()

    def penalty(self, states: torch.Tensor | None = None) -> torch.Tensor | None:
        """ℓ_m R(W) + ℓ_c |Ξ|²_F (independent of the states)."""
        if self.weight_penalty == 0 and self.code_penalty == 0:
            return None
        return self.weight_penalty * self.hypernetwork_norm() + self.code_penalty * (self.codes**2).sum()

    def adapt(self, n_environments: int, *, weight_penalty: float = 0.0, code_penalty: float = 0.0) -> Coda:
        """A CoDA model for new environments: copies of θ_c and W, frozen, and new contexts ξ = 0.

        Training it fits only the new contexts.  The reference adaptation uses no penalty (the defaults).
        """
        adapted = Coda(copy.deepcopy(self.network), n_environments, self.codes.shape[1],
                       regularization=self.regularization, weight_penalty=weight_penalty,
                       code_penalty=code_penalty, generator=torch.Generator(), **self._solver)
        with torch.no_grad():
            adapted.hypernetwork.copy_(self.hypernetwork)
        adapted.network.requires_grad_(False)
        adapted.hypernetwork.requires_grad_(False)
        return adapted
