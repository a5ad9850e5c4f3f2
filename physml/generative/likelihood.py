r"""Log-densities through an ODE: the instantaneous change of variables.

Along a trajectory of :math:`\dot x = v(x, t)` the log-density of the transported distribution obeys
:math:`\tfrac{d}{dt}\log p_t(x(t)) = -\nabla\!\cdot v(x(t), t)`.  Integrating from the data time
:math:`t_d` (where ``x`` lives) to the base time :math:`t_b` (where the density is known):

.. math::
    \log p_{t_d}(x) = \log p_{t_b}(x(t_b)) + \int_{t_d}^{t_b} \nabla\!\cdot v(x(t), t)\,dt.

This serves continuous normalising flows and flow matching (data at 1, base at 0) and the
probability-flow ODE of score SDEs (data at ε, prior at 1).  The divergence is either exact (one
backward pass per dimension: for small dimension) or the Hutchinson–Skilling estimate
:math:`\varepsilon^\top (\partial v/\partial x)\,\varepsilon` with a Rademacher probe drawn once per solve
and held fixed during it (so the adaptive solver integrates a smooth field); it is unbiased, and for a
field whose Jacobian is diagonal it is exact.

The augmented state is one tensor ``(batch, D + 1 [+ 2])`` so the continuous adjoint of
:func:`physml.solve_ode` can differentiate it.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_choice, check_network_output, check_samples, resolve_generator

__all__ = [
    "TRACE_ESTIMATORS",
    "rademacher_probe",
    "exact_divergence",
    "hutchinson_divergence",
    "AugmentedDynamics",
    "ode_log_likelihood",
    "probability_flow_velocity",
    "probability_flow_log_likelihood",
    "standard_normal_log_prob",
]

TRACE_ESTIMATORS = ("exact", "hutchinson")


def rademacher_probe(shape, *, generator: torch.Generator, dtype, device) -> torch.Tensor:
    """Independent ±1 entries with equal probability."""
    signs = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
    return (2 * signs - 1).to(dtype)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Log-density of :math:`\\mathcal N(0, I)` at each row of ``z`` (summed over all but the first axis)."""
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * flat.square().sum(dim=1) - 0.5 * flat.shape[1] * torch.log(
        torch.tensor(2.0 * torch.pi, dtype=z.dtype, device=z.device)
    )


def _grad(output, x, cotangent, create_graph):
    if not output.requires_grad:
        return torch.zeros_like(x)  # the field does not depend on x at all
    (gradient,) = torch.autograd.grad(
        output, x, cotangent, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return torch.zeros_like(x) if gradient is None else gradient


def exact_divergence(output: torch.Tensor, x: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
    r"""Exact :math:`\nabla\!\cdot v` per sample by one vector-Jacobian product per dimension.

    ``output`` must have been computed from ``x`` (which requires grad) with gradients enabled.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.likelihood import exact_divergence
    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> exact_divergence(2.0 * x, x)
    tensor([6., 6., 6., 6.])
    """
    batch = x.shape[0]
    flat_output = output.reshape(batch, -1)
    dimension = flat_output.shape[1]
    divergence = torch.zeros(batch, dtype=x.dtype, device=x.device)
    for index in range(dimension):
        cotangent = torch.zeros_like(flat_output)
        cotangent[:, index] = 1.0
        gradient = _grad(flat_output, x, cotangent, create_graph)
        divergence = divergence + gradient.reshape(batch, -1)[:, index]
    return divergence


def hutchinson_divergence(
    output: torch.Tensor, x: torch.Tensor, probe: torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Hutchinson–Skilling estimate :math:`\varepsilon^\top J \varepsilon` with :math:`\varepsilon^\top J`.

    Unbiased when :math:`\mathbb E[\varepsilon\varepsilon^\top] = I` (Rademacher or Gaussian probes); its
    variance for Rademacher probes is :math:`2\sum_{i\neq j} \bigl((J_{ij} + J_{ji})/2\bigr)^2`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.likelihood import hutchinson_divergence
    >>> x = torch.randn(2, 3, requires_grad=True)
    >>> estimate, _ = hutchinson_divergence(2.0 * x, x, torch.ones(2, 3))
    >>> estimate
    tensor([6., 6.])
    """
    vector_jacobian = _grad(output, x, probe, create_graph)
    estimate = (vector_jacobian * probe).reshape(x.shape[0], -1).sum(dim=1)
    return estimate, vector_jacobian


class AugmentedDynamics(nn.Module):
    r"""The field ``v`` augmented with its divergence (and the RNODE regularisers) as one flat state.

    State layout ``(batch, D + 1 + 2·regularise)``: the flattened ``x``, the running integral of
    :math:`\nabla\!\cdot v`, then (when ``regularise``) :math:`\int\|v\|^2dt` (kinetic energy) and
    :math:`\int\|\varepsilon^\top\partial v/\partial x\|^2dt` (Hutchinson estimate of the Jacobian's
    squared Frobenius norm, Finlay et al. 2020).

    Parameters
    ----------
    velocity : callable or nn.Module
        ``velocity(t, x)`` with ``x`` of shape ``(batch, *event_shape)``; registered as a submodule when
        it is one, so the adjoint finds its parameters.
    event_shape : tuple of int
        Shape of one sample.
    trace : {"exact", "hutchinson"}
        How the divergence is computed.
    probe : torch.Tensor, optional
        Fixed probe ``(batch, *event_shape)`` for the Hutchinson estimate and the Frobenius regulariser.
    regularise : bool
        Also integrate the kinetic-energy and Jacobian-Frobenius channels.
    name : str
        Name used in error messages about the field's output.
    """

    def __init__(
        self,
        velocity,
        event_shape,
        *,
        trace: str = "exact",
        probe: torch.Tensor | None = None,
        regularise: bool = False,
        name: str = "network",
    ):
        super().__init__()
        check_choice(trace, TRACE_ESTIMATORS, name="trace")
        if (trace == "hutchinson" or regularise) and probe is None:
            raise ValueError("a probe is required for trace='hutchinson' and for the Frobenius regulariser")
        self.velocity = velocity
        self.event_shape = tuple(event_shape)
        self.dimension = int(torch.Size(self.event_shape).numel())
        self.trace = trace
        self.probe = probe
        self.regularise = regularise
        self.name = name
        self.evaluations = 0

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        extra = 3 if self.regularise else 1
        zeros = torch.zeros(x.shape[0], extra, dtype=x.dtype, device=x.device)
        return torch.cat([x.reshape(x.shape[0], -1), zeros], dim=1)

    def split_state(self, state: torch.Tensor):
        """``(x, divergence integral, kinetic integral or None, Frobenius integral or None)``."""
        x = state[:, : self.dimension].reshape(state.shape[0], *self.event_shape)
        divergence = state[:, self.dimension]
        if not self.regularise:
            return x, divergence, None, None
        return x, divergence, state[:, self.dimension + 1], state[:, self.dimension + 2]

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        # Gradients are needed downstream (training, adjoint backward) exactly when grad mode is on here.
        create_graph = torch.is_grad_enabled()
        batch = state.shape[0]
        with torch.enable_grad():
            x = state[:, : self.dimension].reshape(batch, *self.event_shape)
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            velocity = self.velocity(t, x)
            self.evaluations += 1
            if self.evaluations == 1:
                check_network_output(velocity, x, name=self.name)
            vector_jacobian = None
            if self.trace == "exact":
                divergence = exact_divergence(velocity, x, create_graph=create_graph)
            else:
                divergence, vector_jacobian = hutchinson_divergence(
                    velocity, x, self.probe, create_graph=create_graph
                )
            pieces = [velocity.reshape(batch, -1), divergence[:, None]]
            if self.regularise:
                if vector_jacobian is None:
                    vector_jacobian = _grad(velocity, x, self.probe, create_graph)
                pieces.append(velocity.reshape(batch, -1).square().sum(dim=1, keepdim=True))
                pieces.append(vector_jacobian.reshape(batch, -1).square().sum(dim=1, keepdim=True))
        out = torch.cat(pieces, dim=1)
        return out if create_graph else out.detach()


def ode_log_likelihood(
    velocity,
    x: torch.Tensor,
    *,
    data_time: float,
    base_time: float,
    base_log_prob,
    trace: str = "exact",
    generator: torch.Generator | None = None,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options: dict | None = None,
    differentiable: bool = False,
    name: str = "network",
) -> tuple[torch.Tensor, dict]:
    r"""Log-density at ``x`` of the distribution an ODE transports from a known base.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x)`` returning a tensor shaped like ``x``.
    x : torch.Tensor
        Points ``(batch, ...)`` at ``data_time``.
    data_time, base_time : float
        Where ``x`` lives and where ``base_log_prob`` is known; the solve runs from one to the other and the
        field is only evaluated between them.
    base_log_prob : callable
        Log-density of the base at ``base_time``: ``(batch, ...) -> (batch,)``.
    trace : {"exact", "hutchinson"}
        Divergence estimator; Hutchinson draws one Rademacher probe per sample from ``generator`` and keeps
        it for the whole solve.
    generator : torch.Generator, optional
        For the Hutchinson probe.
    method, rtol, atol, options
        Passed to :func:`physml.solve_ode`.
    differentiable : bool
        Keep the autograd graph so the result can be differentiated (with respect to ``x`` or parameters
        the field closes over). By default the solve runs without it: evaluation only.

    Returns
    -------
    log_prob : torch.Tensor
        Shape ``(batch,)``.
    stats : dict
        ``nfe`` (field evaluations), the solver's ``n_steps``/``n_accepted``/``n_rejected``, ``status`` and
        ``latent`` (the points at ``base_time``).

    Examples
    --------
    >>> import torch
    >>> from physml.generative.likelihood import ode_log_likelihood, standard_normal_log_prob
    >>> x = torch.zeros(1, 2, dtype=torch.float64)
    >>> # v = x doubles the spread by t = log 2: the density at x = 0 drops by a factor 4.
    >>> log_prob, stats = ode_log_likelihood(lambda t, y: y, x, data_time=0.6931471805599453, base_time=0.0,
    ...                                      base_log_prob=standard_normal_log_prob, rtol=1e-9, atol=1e-9)
    >>> round(float(log_prob), 6), round(float(standard_normal_log_prob(x)) - 1.386294, 6)
    (-3.224171, -3.224171)
    """
    from ..solvers import solve_ode

    x = check_samples(x, name="x")
    check_choice(trace, TRACE_ESTIMATORS, name="trace")
    probe = None
    if trace == "hutchinson":
        generator = resolve_generator(generator, x.device)
        probe = rademacher_probe(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    dynamics = AugmentedDynamics(velocity, x.shape[1:], trace=trace, probe=probe, name=name)
    with torch.set_grad_enabled(bool(differentiable)):
        solution = solve_ode(
            dynamics,
            dynamics.initial_state(x),
            [float(data_time), float(base_time)],
            method=method,
            rtol=rtol,
            atol=atol,
            options=options,
        )
    latent, divergence_integral, _, _ = dynamics.split_state(solution.ys[-1])
    with torch.set_grad_enabled(bool(differentiable)):
        log_prob = base_log_prob(latent) + divergence_integral
    stats = {
        "nfe": dynamics.evaluations,
        "n_steps": solution.stats.get("n_steps"),
        "n_accepted": solution.stats.get("n_accepted"),
        "n_rejected": solution.stats.get("n_rejected"),
        "status": solution.status,
        "latent": latent,
    }
    return log_prob, stats


def probability_flow_velocity(score_function, sde):
    r"""The probability-flow ODE field :math:`f(x, t) - \tfrac12 g(t)^2\,s(t, x)` of a score SDE.

    ``score_function(t, x)`` estimates :math:`\nabla_x\log p_t(x)`; ``t`` is a 0-dim tensor.
    """

    def velocity(t, x):
        g = sde.diffusion(torch.as_tensor(t, dtype=x.dtype, device=x.device))
        return sde.drift(t, x) - 0.5 * g.square() * score_function(t, x)

    return velocity


def probability_flow_log_likelihood(
    score_function,
    sde,
    x: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    trace: str = "exact",
    generator=None,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options=None,
    prior_log_prob=None,
    differentiable: bool = False,
) -> tuple[torch.Tensor, dict]:
    r"""Log-density of :math:`p_\epsilon` at ``x`` under the probability-flow ODE of a score SDE.

    Solves from :math:`t = \epsilon` to 1 (the score is only evaluated there) and uses the SDE's prior
    at :math:`t = 1` unless ``prior_log_prob`` is given.  See :func:`ode_log_likelihood` for the other
    arguments.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VPSDE
    >>> from physml.generative.likelihood import probability_flow_log_likelihood
    >>> sde = VPSDE()
    >>> # Data N(0, I): every marginal is N(0, I) and the score is -x.
    >>> x = torch.zeros(1, 2, dtype=torch.float64)
    >>> log_prob, _ = probability_flow_log_likelihood(lambda t, y: -y, sde, x, rtol=1e-8, atol=1e-8)
    >>> round(float(log_prob), 5)
    -1.83788
    """
    return ode_log_likelihood(
        probability_flow_velocity(score_function, sde),
        x,
        data_time=epsilon,
        base_time=sde.time_horizon,
        base_log_prob=prior_log_prob or sde.prior_log_prob,
        trace=trace,
        generator=generator,
        method=method,
        rtol=rtol,
        atol=atol,
        options=options,
        differentiable=differentiable,
        name="score network",
    )
