"""Lotka–Volterra predator–prey system (LEADS, CoDA): dx/dt = αx − βxy, dy/dt = δxy − γy."""

from __future__ import annotations

import torch

from physml.systems import ParameterSpec, System, Variable, check_count, uniform


class LotkaVolterra(System):
    """Lotka–Volterra predator–prey dynamics with prey ``x`` and predators ``y``.

    dx/dt = α x − β x y,  dy/dt = δ x y − γ y.

    Every parameter is a number or a 1-D tensor with one value per sample or environment, so one module
    simulates all LEADS/CoDA environments in a single batched solve (see :attr:`LEADS_ENVIRONMENTS`,
    :attr:`CODA_ENVIRONMENTS` and :attr:`CODA_ADAPTATION_ENVIRONMENTS`).  The defaults are the first
    LEADS environment, α = β = γ = δ = 0.5.

    Parameters
    ----------
    initial_condition_range : tuple of float
        Each population starts uniform on ``[low, high)``; LEADS and CoDA both use ``(1.0, 2.0)``.
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; ``values`` may set ``alpha``, ``beta``, ``gamma``, ``delta``.

    Examples
    --------
    >>> import torch
    >>> system = LotkaVolterra(alpha=[0.5, 0.25], gamma=[0.5, 0.5])
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> solution = system.simulate(y0, torch.linspace(0.0, 1.0, 3))
    >>> solution.ys.shape
    torch.Size([3, 2, 2])
    >>> drift = system.first_integral(solution.ys[-1]) - system.first_integral(y0)
    >>> bool(drift.abs().max() < 1e-6)
    True
    """

    name = "lotka_volterra"
    title = "Lotka–Volterra predator–prey system"
    state_variables = (
        Variable("x", "1", "prey population"),
        Variable("y", "1", "predator population"),
    )
    parameter_specs = (
        ParameterSpec("alpha", "1", 0.5, "prey growth rate α"),
        ParameterSpec("beta", "1", 0.5, "predation rate β"),
        ParameterSpec("gamma", "1", 0.5, "predator death rate γ"),
        ParameterSpec("delta", "1", 0.5, "predator growth per prey eaten δ"),
    )
    references = (
        "Yin et al. (2021), LEADS: Learning dynamical systems that generalize across environments, NeurIPS; "
        "Kirchmeyer et al. (2022), Generalizing to new physical systems via context-informed dynamics "
        "model (CoDA), ICML"
    )

    #: LEADS: β = δ = 0.5 and ten (α, γ) pairs.
    LEADS_ENVIRONMENTS = tuple(
        {"alpha": alpha, "beta": 0.5, "gamma": gamma, "delta": 0.5}
        for alpha, gamma in [(0.5, 0.5), (0.25, 0.5), (0.75, 0.5), (1.0, 0.5), (0.5, 0.25), (0.5, 0.75),
                             (0.5, 1.0), (0.25, 0.25), (0.75, 0.75), (1.0, 1.0)]
    )
    #: CoDA training environments: α = γ = 0.5, β and δ in {0.5, 0.75, 1.0}².
    CODA_ENVIRONMENTS = tuple(
        {"alpha": 0.5, "beta": beta, "gamma": 0.5, "delta": delta}
        for beta in (0.5, 0.75, 1.0) for delta in (0.5, 0.75, 1.0)
    )
    #: CoDA adaptation environments: β and δ in {0.625, 1.125}².
    CODA_ADAPTATION_ENVIRONMENTS = tuple(
        {"alpha": 0.5, "beta": beta, "gamma": 0.5, "delta": delta}
        for beta in (0.625, 1.125) for delta in (0.625, 1.125)
    )

    def __init__(self, *, initial_condition_range: tuple[float, float] = (1.0, 2.0), learnable=(),
                 dtype: torch.dtype = torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        low, high = (float(bound) for bound in initial_condition_range)
        if not 0 < low < high:
            raise ValueError(
                f"initial_condition_range must be (low, high) with 0 < low < high (populations are "
                f"positive), got {initial_condition_range!r}"
            )
        self.initial_condition_range = (low, high)

    def forward(self, t, y):
        prey, predators = y[..., 0], y[..., 1]
        alpha, beta, gamma, delta = (self.broadcast(value, prey) for value in
                                     (self.alpha, self.beta, self.gamma, self.delta))
        encounters = prey * predators
        return torch.stack([alpha * prey - beta * encounters, delta * encounters - gamma * predators], dim=-1)

    def first_integral(self, y: torch.Tensor) -> torch.Tensor:
        """The conserved quantity V = δx − γ ln x + βy − α ln y, shape ``y.shape[:-1]``.

        ``y`` is ``(..., batch, 2)`` (a state, or a trajectory ``(time, batch, 2)``); batched parameters
        align with the batch dimension just before the state.
        """
        prey, predators = y[..., 0], y[..., 1]
        alpha, beta, gamma, delta = (value.to(y.dtype) for value in
                                     (self.alpha, self.beta, self.gamma, self.delta))
        return delta * prey - gamma * torch.log(prey) + beta * predators - alpha * torch.log(predators)

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        low, high = self.initial_condition_range
        return uniform(generator, (n, 2), low, high, self.alpha.dtype, self.alpha.device)

    def describe(self) -> dict:
        description = super().describe()
        description["options"] = {"initial_condition_range": list(self.initial_condition_range)}
        return description
