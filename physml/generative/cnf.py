r"""Continuous normalising flow trained by maximum likelihood (FFJORD; RNODE regularisation).

The flow :math:`\dot x = v_\theta(t, x)` carries the base :math:`\mathcal N(0, I)` at :math:`t = 0` to the
model at :math:`t = 1` (the flow-matching convention, so the two share sampling and likelihood code).
Training integrates a data batch from 1 back to 0 together with the divergence integral (exact, or
Hutchinson with one Rademacher probe per step) and maximises

.. math::
    \log p_1(x) = \log\mathcal N(x(0); 0, I) - \int_0^1 \nabla\!\cdot v_\theta(t, x(t))\,dt

minus the RNODE penalties (Finlay et al. 2020) :math:`\lambda_K\int_0^1\|v\|^2dt` (kinetic energy) and
:math:`\lambda_J\int_0^1\|\varepsilon^\top\partial v/\partial x\|^2dt` (Jacobian Frobenius norm, Hutchinson),
which favour straight, easy-to-integrate flows.  ``adjoint=True`` differentiates the solve with the
continuous adjoint of :func:`physml.solve_ode` (memory independent of the number of steps).
"""

from __future__ import annotations

import torch

from ._estimator import BatchSource, NetworkEstimator, parameter_like, training_generator
from ._validation import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_samples,
    resolve_generator,
)
from .likelihood import (
    TRACE_ESTIMATORS,
    AugmentedDynamics,
    rademacher_probe,
    standard_normal_log_prob,
)
from .results import CountingField, SamplingResult

__all__ = ["ContinuousNormalizingFlow", "cnf_negative_log_likelihood"]


def cnf_negative_log_likelihood(
    network,
    x: torch.Tensor,
    *,
    trace: str = "exact",
    generator=None,
    kinetic_energy_weight: float = 0.0,
    jacobian_frobenius_weight: float = 0.0,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options: dict | None = None,
    adjoint: bool = False,
) -> tuple[torch.Tensor, dict]:
    r"""Differentiable training objective of a CNF on one batch.

    Parameters
    ----------
    network : nn.Module
        Velocity ``network(t, x)``.
    x : torch.Tensor
        Data batch ``(batch, ...)`` at ``t = 1``.
    trace : {"exact", "hutchinson"}
        Divergence estimator.
    generator : torch.Generator, optional
        For the Rademacher probe (Hutchinson trace and Frobenius penalty), drawn once for this solve.
    kinetic_energy_weight, jacobian_frobenius_weight : float
        RNODE weights :math:`\lambda_K`, :math:`\lambda_J`.
    method, rtol, atol, options
        ODE solver settings.
    adjoint : bool
        Use the continuous adjoint for the gradients.

    Returns
    -------
    loss : torch.Tensor
        :math:`-\overline{\log p} + \lambda_K\,\overline{K} + \lambda_J\,\overline{J}` (batch means).
    stats : dict
        ``negative_log_likelihood``, ``kinetic_energy``, ``jacobian_frobenius`` (floats), ``nfe`` (forward
        field evaluations) and the solver ``status``.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import TimeConditionedMLP
    >>> from physml.generative.cnf import cnf_negative_log_likelihood
    >>> network = TimeConditionedMLP(2, (8,), activation="tanh", generator=torch.Generator().manual_seed(0))
    >>> loss, stats = cnf_negative_log_likelihood(network, torch.zeros(4, 2), rtol=1e-3, atol=1e-3)
    >>> loss.requires_grad, stats["status"]
    (True, 'success')
    """
    from ..solvers import solve_ode

    regularise = kinetic_energy_weight > 0 or jacobian_frobenius_weight > 0
    probe = None
    if trace == "hutchinson" or regularise:
        generator = resolve_generator(generator, x.device)
        probe = rademacher_probe(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    dynamics = AugmentedDynamics(network, x.shape[1:], trace=trace, probe=probe, regularise=regularise)
    extra = {}
    if adjoint:
        extra = {"adjoint": True, "adjoint_params": tuple(p for p in network.parameters() if p.requires_grad)}
    solution = solve_ode(
        dynamics,
        dynamics.initial_state(x),
        [1.0, 0.0],
        method=method,
        rtol=rtol,
        atol=atol,
        options=options,
        **extra,
    )
    latent, divergence_integral, kinetic, frobenius = dynamics.split_state(solution.ys[-1])
    log_prob = standard_normal_log_prob(latent) + divergence_integral
    loss = -log_prob.mean()
    stats = {
        "negative_log_likelihood": float(-log_prob.mean().detach()),
        "nfe": dynamics.evaluations,
        "status": solution.status,
    }
    if regularise:
        # Integrated from 1 down to 0, the channels hold minus the integrals over [0, 1].
        kinetic, frobenius = -kinetic.mean(), -frobenius.mean()
        loss = loss + kinetic_energy_weight * kinetic + jacobian_frobenius_weight * frobenius
        stats.update(kinetic_energy=float(kinetic.detach()), jacobian_frobenius=float(frobenius.detach()))
    return loss, stats


class ContinuousNormalizingFlow(NetworkEstimator):
    r"""FFJORD-style continuous normalising flow with optional RNODE regularisation.

    Parameters
    ----------
    network : nn.Module, optional
        Velocity ``network(t, x)``; default a :class:`TimeConditionedMLP` (FFJORD's toy default is
        3 × 64 tanh).
    hidden_sizes, activation
        Configuration of the default network.
    trace : {"exact", "hutchinson"}
        Divergence during training (FFJORD's ``brute_force`` / ``approximate`` with Rademacher probes).
    kinetic_energy_weight, jacobian_frobenius_weight : float
        RNODE penalties (FFJORD's ``--l2int`` and ``--JFrobint``).
    adjoint : bool
        Continuous-adjoint gradients.
    method, rtol, atol
        ODE solver for training, sampling and likelihood (FFJORD: dopri5, 1e-5).
    steps, batch_size, learning_rate, weight_decay
        Adam schedule (FFJORD's toys: 10 000 steps, batch 100, lr 1e-3, weight decay 1e-5).

    Attributes
    ----------
    network_, loss_history_, nfe_history_
        Trained network, training loss and forward NFE per step.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import ContinuousNormalizingFlow
    >>> generator = torch.Generator().manual_seed(0)
    >>> data = torch.randn(128, 2, generator=generator)
    >>> flow = ContinuousNormalizingFlow(hidden_sizes=(16,), steps=3, batch_size=32, rtol=1e-3, atol=1e-3)
    >>> flow.fit(data, generator=generator).sample(5, generator=generator).samples.shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        *,
        network=None,
        hidden_sizes=(64, 64, 64),
        activation: str = "tanh",
        trace: str = "exact",
        kinetic_energy_weight: float = 0.0,
        jacobian_frobenius_weight: float = 0.0,
        adjoint: bool = False,
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        steps: int = 1000,
        batch_size: int = 100,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        self.network = network
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.trace = check_choice(trace, TRACE_ESTIMATORS, name="trace")
        self.kinetic_energy_weight = check_positive_float(
            kinetic_energy_weight, name="kinetic_energy_weight", allow_zero=True
        )
        self.jacobian_frobenius_weight = check_positive_float(
            jacobian_frobenius_weight, name="jacobian_frobenius_weight", allow_zero=True
        )
        if not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be a bool, got {adjoint!r}")
        self.adjoint = adjoint
        self.method = method
        self.rtol = check_positive_float(rtol, name="rtol")
        self.atol = check_positive_float(atol, name="atol")
        self.steps = check_positive_int(steps, name="steps")
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.learning_rate = check_positive_float(learning_rate, name="learning_rate")
        self.weight_decay = check_positive_float(weight_decay, name="weight_decay", allow_zero=True)
        self.network_ = network
        self.event_shape_: tuple[int, ...] | None = None
        self.loss_history_: list[float] = []
        self.nfe_history_: list[int] = []

    def fit(self, data, *, generator=None) -> ContinuousNormalizingFlow:
        """Maximum-likelihood training on a tensor ``(n, ...)`` or a sampler ``data(n, generator=...)``."""
        source = BatchSource(data)
        generator = training_generator(generator, source)
        example = source.example(generator)
        self.event_shape_ = tuple(example.shape[1:])
        self._prepare_network(example, generator)

        def compute_loss():
            x, _ = source.draw(self.batch_size, generator)
            loss, stats = cnf_negative_log_likelihood(
                self.network_,
                x,
                trace=self.trace,
                generator=generator,
                kinetic_energy_weight=self.kinetic_energy_weight,
                jacobian_frobenius_weight=self.jacobian_frobenius_weight,
                method=self.method,
                rtol=self.rtol,
                atol=self.atol,
                adjoint=self.adjoint,
            )
            self.nfe_history_.append(stats["nfe"])
            return loss

        return self._train_network(compute_loss)

    def sample(
        self,
        n: int,
        *,
        generator=None,
        method: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        steps: int | None = None,
    ) -> SamplingResult:
        """Draw ``n`` samples: :math:`z\\sim\\mathcal N(0, I)` pushed from ``t = 0`` to ``t = 1``.

        ``method``, ``rtol``, ``atol`` override the flow's solver settings; ``steps`` gives the number of
        equal steps of a fixed-step ``method`` ("euler", "rk4", ...).
        """
        from ..solvers import solve_ode

        network = self._require_network()
        n = check_positive_int(n, name="n")
        dtype, device = parameter_like(network)
        generator = resolve_generator(generator, device)
        counting = CountingField(network, name="network")
        step_options = None if steps is None else {"step_size": 1.0 / check_positive_int(steps, name="steps")}
        with torch.no_grad():
            z = torch.randn((n, *self._event_shape()), generator=generator, dtype=dtype, device=device)
            solution = solve_ode(
                counting,
                z,
                [0.0, 1.0],
                method=method or self.method,
                rtol=rtol or self.rtol,
                atol=atol or self.atol,
                options=step_options,
            )
        stats = {
            "sampler": "ode",
            "status": solution.status,
            **{key: solution.stats.get(key) for key in ("n_steps", "n_accepted", "n_rejected")},
        }
        return SamplingResult(samples=solution.ys[-1], nfe=counting.evaluations, stats=stats)

    def log_prob(
        self,
        x: torch.Tensor,
        *,
        trace: str = "exact",
        generator=None,
        method: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        return_stats: bool = False,
    ):
        """Log-density at ``x`` (exact or Hutchinson divergence; see :func:`ode_log_likelihood`)."""
        network = self._require_network()
        x = check_samples(x, name="x")
        return self._flow_log_prob(network, x, standard_normal_log_prob, trace=trace, generator=generator,
                                   method=method, rtol=rtol, atol=atol, return_stats=return_stats)

