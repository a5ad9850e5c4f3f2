r"""Conditional flow matching (Lipman et al. 2023; Tong et al. 2024) and its estimator.

A conditional probability path :math:`x_t = \mu_t(x_0, x_1) + \sigma_t\,\varepsilon` between a source
sample :math:`x_0` and a data sample :math:`x_1` has the conditional velocity
:math:`u_t = \dot\mu_t + \dot\sigma_t\,\varepsilon`; regressing a network :math:`v_\theta(t, x_t)` on
:math:`u_t` has the same gradient as regressing on the (intractable) marginal velocity, whose flow
carries the source distribution at :math:`t = 0` to the data at :math:`t = 1`.

* ``IndependentConditionalFlow`` (I-CFM): independent pairs, :math:`\mu_t = t x_1 + (1-t) x_0`,
  :math:`\sigma_t = \sigma`;
* ``TargetConditionalFlow`` (Lipman et al.): independent pairs with an :math:`\mathcal N(0, I)` source,
  :math:`\mu_t = t x_1`, :math:`\sigma_t = 1 - (1-\sigma_{min})t` (the source sample is the noise);
* ``OptimalTransportConditionalFlow`` (OT-CFM): pairs from the exact minibatch OT plan, I-CFM path;
* ``SchrodingerBridgeConditionalFlow`` (SB-CFM): pairs from the entropic plan with regularisation
  :math:`2\sigma^2`, :math:`\mu_t = t x_1 + (1-t) x_0`, :math:`\sigma_t = \sigma\sqrt{t(1-t)}`.

The training loss is the mean over batch *and* dimensions of :math:`(v_\theta - u_t)^2`, as torchcfm
reports it.
"""

from __future__ import annotations

import torch

from ._estimator import (
    BatchSource,
    NetworkEstimator,
    drop_conditions,
    expand_condition,
    parameter_like,
    training_generator,
)
from ._validation import (
    check_choice,
    check_ema_decay,
    check_network_output,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_samples,
    resolve_generator,
)
from .likelihood import TRACE_ESTIMATORS, standard_normal_log_prob
from .networks import call_network, guided_network_output
from .optimal_transport import entropic_transport_plan, exact_transport_plan, sample_from_plan
from .results import CountingField, SamplingResult

__all__ = [
    "ConditionalFlowPath",
    "IndependentConditionalFlow",
    "TargetConditionalFlow",
    "OptimalTransportConditionalFlow",
    "SchrodingerBridgeConditionalFlow",
    "PATHS",
    "make_path",
    "flow_matching_loss",
    "FlowMatchingModel",
]


class ConditionalFlowPath:
    """Base class of the conditional paths: a coupling of ``(x0, x1)`` and a Gaussian path between them.

    Subclasses implement :meth:`location_and_velocity`; couplings other than independent override
    :meth:`couple`.
    """

    #: Whether the source must be the standard normal (the path uses x0 as its Gaussian noise).
    requires_standard_normal_source = False
    #: Whether the path adds its own noise ε (so :meth:`location_and_velocity` needs it).
    uses_noise = True

    def __init__(self, sigma: float):
        self.sigma = check_positive_float(sigma, name="sigma", allow_zero=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma!r})"

    def couple(self, x0: torch.Tensor, x1: torch.Tensor, labels, generator: torch.Generator):
        """Pair source and data samples; the default keeps the independent pairing."""
        return x0, x1, labels

    def sample_times(self, count: int, *, generator, dtype, device) -> torch.Tensor:
        return torch.rand(count, generator=generator, dtype=dtype, device=device)

    def location_and_velocity(self, x0, x1, t, noise):
        """``(x_t, u_t)`` for times ``t`` of shape ``(batch,)``."""
        raise NotImplementedError


def _column(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (x.ndim - 1)))


class IndependentConditionalFlow(ConditionalFlowPath):
    r"""I-CFM: independent pairs, straight path with constant width :math:`\sigma`, :math:`u_t = x_1 - x_0`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import IndependentConditionalFlow
    >>> path = IndependentConditionalFlow(sigma=0.0)
    >>> x_t, u_t = path.location_and_velocity(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([0.25]),
    ...                                       torch.zeros(1, 2))
    >>> x_t, u_t
    (tensor([[0.2500, 0.2500]]), tensor([[1., 1.]]))
    """

    def __init__(self, sigma: float = 0.1):
        super().__init__(sigma)

    def location_and_velocity(self, x0, x1, t, noise):
        time = _column(t, x0)
        return time * x1 + (1.0 - time) * x0 + self.sigma * noise, x1 - x0


class TargetConditionalFlow(ConditionalFlowPath):
    r"""Lipman et al.'s flow matching with the optimal-transport Gaussian path from :math:`\mathcal N(0, I)`.

    :math:`x_t = t x_1 + (1 - (1-\sigma_{min})t)\,x_0` with :math:`x_0 \sim \mathcal N(0, I)`, so
    :math:`u_t = x_1 - (1-\sigma_{min})x_0` (:math:`= (x_1 - (1-\sigma_{min})x_t)/(1-(1-\sigma_{min})t)`,
    written without the division).
    """

    requires_standard_normal_source = True
    uses_noise = False

    def __init__(self, sigma: float = 0.0):
        super().__init__(sigma)
        if self.sigma >= 1.0:
            raise ValueError(f"sigma (sigma_min) must be below 1 for the target path, got {sigma!r}")

    def location_and_velocity(self, x0, x1, t, noise):
        time = _column(t, x0)
        return time * x1 + (1.0 - (1.0 - self.sigma) * time) * x0, x1 - (1.0 - self.sigma) * x0


def _couple_per_class(x0, x1, labels, generator, plan_function):
    """Re-pair within each class, so every class keeps the full source distribution as its own source."""
    if labels is None:
        rows, columns = sample_from_plan(plan_function(x0, x1), x0.shape[0], generator=generator)
        return x0[rows], x1[columns], None
    paired_x0, paired_x1, paired_labels = [], [], []
    for label in labels.unique():
        members = (labels == label).nonzero().reshape(-1)
        source, target = x0[members], x1[members]
        rows, columns = sample_from_plan(plan_function(source, target), members.numel(), generator=generator)
        paired_x0.append(source[rows])
        paired_x1.append(target[columns])
        paired_labels.append(labels[members][columns])
    return torch.cat(paired_x0), torch.cat(paired_x1), torch.cat(paired_labels)


class OptimalTransportConditionalFlow(IndependentConditionalFlow):
    r"""OT-CFM: pairs drawn from the exact minibatch optimal-transport plan (POT ``ot.emd``).

    As torchcfm does, ``batch`` pairs are drawn with replacement from the plan; with equal batch sizes the
    plan is a permutation, so the pairs are (almost) the optimal matching.
    """

    def couple(self, x0, x1, labels, generator):
        return _couple_per_class(x0, x1, labels, generator, exact_transport_plan)


class SchrodingerBridgeConditionalFlow(ConditionalFlowPath):
    r"""SB-CFM: pairs from the entropic plan (regularisation :math:`2\sigma^2`) and a Brownian-bridge path.

    :math:`\sigma_t = \sigma\sqrt{t(1-t)}` and
    :math:`u_t = x_1 - x_0 + \sigma\frac{1-2t}{2\sqrt{t(1-t)}}\varepsilon`.
    Times are drawn in :math:`[10^{-5}, 1-10^{-5}]`, where :math:`\dot\sigma_t` is finite.
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__(sigma)
        if self.sigma <= 0:
            raise ValueError(
                f"sigma must be positive for the Schrödinger bridge (entropic plan), got {sigma!r}"
            )

    def couple(self, x0, x1, labels, generator):
        regularisation = 2.0 * self.sigma**2
        return _couple_per_class(
            x0, x1, labels, generator, lambda a, b: entropic_transport_plan(a, b, regularisation)
        )

    def sample_times(self, count, *, generator, dtype, device):
        margin = 1e-5
        return margin + (1.0 - 2.0 * margin) * torch.rand(
            count, generator=generator, dtype=dtype, device=device
        )

    def location_and_velocity(self, x0, x1, t, noise):
        time = _column(t, x0)
        root = (time * (1.0 - time)).sqrt()
        location = time * x1 + (1.0 - time) * x0 + self.sigma * root * noise
        velocity = x1 - x0 + self.sigma * (1.0 - 2.0 * time) / (2.0 * root) * noise
        return location, velocity


#: Names accepted by :class:`FlowMatchingModel` and :func:`make_path`.
PATHS = {
    "independent": IndependentConditionalFlow,
    "target": TargetConditionalFlow,
    "optimal_transport": OptimalTransportConditionalFlow,
    "schrodinger_bridge": SchrodingerBridgeConditionalFlow,
}


def make_path(path, sigma: float | None = None) -> ConditionalFlowPath:
    """Return ``path`` if it is a :class:`ConditionalFlowPath`, else build one of :data:`PATHS` by name.

    Examples
    --------
    >>> from physml.generative import make_path
    >>> make_path("optimal_transport", sigma=0.0)
    OptimalTransportConditionalFlow(sigma=0.0)
    """
    if isinstance(path, ConditionalFlowPath):
        if sigma is not None:
            raise ValueError("sigma is set on the path object; do not pass it separately")
        return path
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"path must be a ConditionalFlowPath or one of {sorted(PATHS)}; got {path!r}")
    return PATHS[path]() if sigma is None else PATHS[path](sigma)


def flow_matching_loss(
    network,
    path: ConditionalFlowPath,
    x0: torch.Tensor,
    x1: torch.Tensor,
    *,
    generator: torch.Generator,
    labels=None,
) -> torch.Tensor:
    r"""Conditional flow-matching loss on one minibatch: couple, draw times and noise, regress.

    Parameters
    ----------
    network : callable
        ``network(t, x)`` or ``network(t, x, labels)`` with ``t`` of shape ``(batch,)``.
    path : ConditionalFlowPath
        Coupling and conditional path.
    x0, x1 : torch.Tensor
        Source and data batches of the same shape.
    generator : torch.Generator
        Times, noise and the sampling of pairs from a plan.
    labels : torch.Tensor, optional
        Class labels of ``x1`` (couplings stay within a class).

    Examples
    --------
    >>> import torch
    >>> from physml.generative import IndependentConditionalFlow, TimeConditionedMLP, flow_matching_loss
    >>> generator = torch.Generator().manual_seed(0)
    >>> network = TimeConditionedMLP(2, (16,), generator=generator)
    >>> loss = flow_matching_loss(network, IndependentConditionalFlow(), torch.zeros(8, 2), torch.ones(8, 2),
    ...                           generator=generator)
    >>> loss.ndim
    0
    """
    if x0.shape != x1.shape:
        raise ValueError(
            f"source batch shape {tuple(x0.shape)} differs from data batch shape {tuple(x1.shape)}"
        )
    x0, x1, labels = path.couple(x0, x1, labels, generator)
    options = {"generator": generator, "dtype": x1.dtype, "device": x1.device}
    t = path.sample_times(x1.shape[0], **options)
    noise = torch.randn(x1.shape, **options) if path.uses_noise else None
    location, target = path.location_and_velocity(x0, x1, t, noise)
    prediction = check_network_output(call_network(network, t, location, labels), location)
    return (prediction - target).square().mean()


class FlowMatchingModel(NetworkEstimator):
    r"""Flow-matching generative model: a velocity field trained by conditional flow matching.

    Parameters
    ----------
    path : {"independent", "target", "optimal_transport", "schrodinger_bridge"} or ConditionalFlowPath
        Coupling and conditional path (I-CFM, Lipman FM, OT-CFM, SB-CFM).
    sigma : float, optional
        Path width when ``path`` is a name (defaults: 0.1 for I-CFM/OT-CFM as in torchcfm's runner, 0 for
        the target path, 1 for SB-CFM).
    source : None, torch.Tensor or callable
        Distribution at ``t = 0``: ``None`` for :math:`\mathcal N(0, I)`, a tensor of samples (drawn with
        replacement) or a sampler ``source(n, generator=...)`` (e.g.
        :func:`physml.generative.toy.eight_gaussians`).
    source_log_prob : callable, optional
        Log-density of a non-Gaussian source, for :meth:`log_prob`.
    network, hidden_sizes, activation
        Velocity network ``network(t, x[, condition])``; default a :class:`TimeConditionedMLP` (torchcfm's
        3 × 64 SELU MLP).
    num_classes, condition_dropout
        Class-conditional generation with classifier-free guidance (label ``num_classes`` = no condition).
    steps, batch_size, learning_rate, weight_decay
        Adam training schedule.
    ema_decay : float, optional
        Sample with an exponential moving average of the weights (``None``: the last iterate).
    method, rtol, atol
        Default ODE solver for :meth:`sample` and :meth:`log_prob` (torchcfm's tutorials: dopri5, 1e-4).

    Examples
    --------
    >>> import torch
    >>> from physml.generative import FlowMatchingModel
    >>> generator = torch.Generator().manual_seed(0)
    >>> data = torch.randn(256, 2, generator=generator) + 3.0
    >>> model = FlowMatchingModel("optimal_transport", hidden_sizes=(32, 32), steps=20, batch_size=64)
    >>> result = model.fit(data, generator=generator).sample(16, generator=generator)
    >>> result.samples.shape, result.stats["status"]
    (torch.Size([16, 2]), 'success')
    """

    def __init__(
        self,
        path="optimal_transport",
        *,
        sigma: float | None = None,
        source=None,
        source_log_prob=None,
        network=None,
        hidden_sizes=(64, 64, 64),
        activation: str = "selu",
        num_classes: int | None = None,
        condition_dropout: float = 0.0,
        steps: int = 2000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        ema_decay: float | None = None,
        method: str = "dopri5",
        rtol: float = 1e-4,
        atol: float = 1e-4,
    ):
        self.path = make_path(path, sigma)
        if source is not None and self.path.requires_standard_normal_source:
            raise ValueError(
                f"{type(self.path).__name__} needs the standard normal source; leave source=None"
            )
        if source is not None and not callable(source):
            source = check_samples(source, name="source")
        self.source = source
        if source_log_prob is not None and not callable(source_log_prob):
            raise TypeError(f"source_log_prob must be callable, got {type(source_log_prob).__name__}")
        self.source_log_prob = source_log_prob
        self.network = network
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        if num_classes is not None:
            num_classes = check_positive_int(num_classes, name="num_classes")
        self.num_classes = num_classes
        self.condition_dropout = check_probability(condition_dropout, name="condition_dropout")
        self.steps = check_positive_int(steps, name="steps")
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.learning_rate = check_positive_float(learning_rate, name="learning_rate")
        self.weight_decay = check_positive_float(weight_decay, name="weight_decay", allow_zero=True)
        self.ema_decay = check_ema_decay(ema_decay)
        self.method = method
        self.rtol = check_positive_float(rtol, name="rtol")
        self.atol = check_positive_float(atol, name="atol")
        self.network_ = network
        self.event_shape_: tuple[int, ...] | None = None
        self.loss_history_: list[float] = []

    # ------------------------------------------------------------------ source

    def _draw_source(self, count: int, *, generator, dtype, device) -> torch.Tensor:
        if self.source is None:
            return torch.randn((count, *self._event_shape()), generator=generator, dtype=dtype, device=device)
        if isinstance(self.source, torch.Tensor):
            indices = torch.randint(
                0, self.source.shape[0], (count,), generator=generator, device=self.source.device
            )
            return self.source[indices].to(dtype=dtype, device=device)
        samples = self.source(count, generator=generator)
        return check_samples(samples, name="source(n)").to(dtype=dtype, device=device)

    # ------------------------------------------------------------------ training

    def fit(self, data, labels=None, *, generator=None) -> FlowMatchingModel:
        """Train the velocity network by conditional flow matching.

        Parameters
        ----------
        data : torch.Tensor or callable
            Target samples ``(n, ...)`` or a sampler ``data(n, generator=...)``; the network follows the
            data's dtype and device.
        labels : torch.Tensor, optional
            Class labels for a conditional model.
        generator : torch.Generator, optional
            All training randomness.

        Returns
        -------
        self
        """
        source = BatchSource(data, labels, num_classes=self.num_classes)
        generator = training_generator(generator, source)
        example = source.example(generator)
        self.event_shape_ = tuple(example.shape[1:])
        self._prepare_network(example, generator, num_classes=self.num_classes)

        def compute_loss():
            x1, batch_labels = source.draw(self.batch_size, generator)
            x0 = self._draw_source(x1.shape[0], generator=generator, dtype=x1.dtype, device=x1.device)
            condition = drop_conditions(
                batch_labels, self.condition_dropout, self.num_classes or 0, generator
            )
            return flow_matching_loss(self.network_, self.path, x0, x1, generator=generator, labels=condition)

        return self._train_network(compute_loss)

    # ------------------------------------------------------------------ field, sampling, likelihood

    def velocity(self, t, x: torch.Tensor, condition=None, guidance_scale: float = 0.0) -> torch.Tensor:
        r"""The learned velocity :math:`v_\theta(t, x \mid c)`, CFG weight :math:`w`."""
        network = self._require_network()
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        labels = expand_condition(condition, x.shape[0], self.num_classes, x.device)
        return guided_network_output(
            network, t, x, labels, null_label=self.num_classes or 0, guidance_scale=float(guidance_scale)
        )

    def _bound_velocity(self, condition, guidance_scale, n, device):
        labels = expand_condition(condition, n, self.num_classes, device)
        guidance_scale = check_positive_float(guidance_scale, name="guidance_scale", allow_zero=True)
        return lambda t, x: self.velocity(t, x, labels, guidance_scale)

    def sample(
        self,
        n: int,
        *,
        condition=None,
        guidance_scale: float = 0.0,
        generator=None,
        source_samples=None,
        method: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        steps: int | None = None,
    ) -> SamplingResult:
        """Push ``n`` source samples through the flow from ``t = 0`` to ``t = 1`` (:func:`physml.solve_ode`).

        Parameters
        ----------
        n : int
            Number of samples.
        condition : int or torch.Tensor, optional
            Class label(s).
        guidance_scale : float
            Classifier-free guidance weight.
        generator : torch.Generator, optional
            For the source draw.
        source_samples : torch.Tensor, optional
            Use these source points instead of drawing ``n`` (e.g. to compare solvers on the same points).
        method, rtol, atol : optional
            Override the model's solver settings.
        steps : int, optional
            Number of equal steps for a fixed-step ``method`` ("euler", "rk4", ...).

        Returns
        -------
        SamplingResult
        """
        network = self._require_network()
        dtype, device = parameter_like(network)
        if source_samples is None:
            n = check_positive_int(n, name="n")
            generator = resolve_generator(generator, device)
            with torch.no_grad():
                x0 = self._draw_source(n, generator=generator, dtype=dtype, device=device)
        else:
            x0 = check_samples(source_samples, name="source_samples").to(dtype=dtype, device=device)
            n = x0.shape[0]
        counting = CountingField(self._bound_velocity(condition, guidance_scale, n, device), name="network")
        options = None
        if steps is not None:
            options = {"step_size": 1.0 / check_positive_int(steps, name="steps")}
        from ..solvers import solve_ode

        with torch.no_grad():
            solution = solve_ode(
                counting,
                x0,
                [0.0, 1.0],
                method=method or self.method,
                rtol=rtol or self.rtol,
                atol=atol or self.atol,
                options=options,
            )
        stats = {
            "sampler": "ode",
            "method": method or self.method,
            "status": solution.status,
            **{key: solution.stats[key] for key in ("n_steps", "n_accepted", "n_rejected")},
        }
        return SamplingResult(samples=solution.ys[-1], nfe=counting.evaluations, stats=stats)

    def _base_log_prob(self):
        if self.source is None:
            return standard_normal_log_prob
        if self.source_log_prob is None:
            raise ValueError(
                "log_prob needs the source density: pass source_log_prob= for a non-Gaussian source"
            )
        return self.source_log_prob

    def log_prob(
        self,
        x: torch.Tensor,
        *,
        condition=None,
        trace: str = "exact",
        generator=None,
        method: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        return_stats: bool = False,
    ):
        """Log-density of the model at ``x`` by the instantaneous change of variables (ODE from 1 to 0).

        Parameters
        ----------
        x : torch.Tensor
            Points ``(batch, ...)``.
        condition : int or torch.Tensor, optional
            Class label(s): the conditional density (without guidance).
        trace : {"exact", "hutchinson"}
            Divergence estimator (Hutchinson: one Rademacher probe per sample, fixed during the solve).
        generator : torch.Generator, optional
            For the Hutchinson probe.
        method, rtol, atol : optional
            Override the model's solver settings.
        return_stats : bool
            Also return the solver statistics.
        """
        self._require_network()
        x = check_samples(x, name="x")
        check_choice(trace, TRACE_ESTIMATORS, name="trace")
        base_log_prob = self._base_log_prob()
        velocity = self._bound_velocity(condition, 0.0, x.shape[0], x.device)
        return self._flow_log_prob(velocity, x, base_log_prob, trace=trace, generator=generator,
                                   method=method, rtol=rtol, atol=atol, return_stats=return_stats)

