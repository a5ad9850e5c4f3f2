"""Score-based generative model (Song et al. 2021) as an estimator: fit / sample / log_prob / score."""

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
    check_positive_float,
    check_positive_int,
    check_probability,
    check_samples,
    check_time_in_window,
    resolve_generator,
)
from .likelihood import TRACE_ESTIMATORS, probability_flow_log_likelihood
from .networks import guided_network_output
from .results import SamplingResult
from .samplers import (
    ancestral_sample,
    annealed_langevin_sample,
    predictor_corrector_sample,
    probability_flow_sample,
    reverse_sde_sample,
)
from .score_matching import PARAMETERISATIONS, WEIGHTINGS, denoising_score_matching_loss, output_to_score
from .sdes import make_sde

__all__ = ["ScoreBasedModel", "SAMPLERS"]

#: Sampler name -> function; ``ScoreBasedModel.sample(sampler=...)`` passes its keywords through.
SAMPLERS = {
    "probability_flow": probability_flow_sample,
    "reverse_sde": reverse_sde_sample,
    "predictor_corrector": predictor_corrector_sample,
    "ancestral": ancestral_sample,
    "annealed_langevin": annealed_langevin_sample,
}


class ScoreBasedModel(NetworkEstimator):
    r"""Score-based generative model trained by continuous-time denoising score matching.

    Parameters
    ----------
    sde : {"vp", "subvp", "ve"} or DiffusionSDE
        The forward process (:class:`VPSDE`, :class:`SubVPSDE`, :class:`VESDE` with their defaults, or an
        instance).
    network : nn.Module, optional
        ``network(t, x)`` (or ``network(t, x, condition)`` with ``num_classes``) returning a tensor shaped
        like ``x``.  Default: a :class:`TimeConditionedMLP` built at the first :meth:`fit`.
    hidden_sizes, activation
        Configuration of the default network.
    parameterisation : {"noise", "score"}
        The network predicts the noise ε (score :math:`-\varepsilon_\theta/\sigma(t)`) or the score.
    weighting : {"sigma_squared", "likelihood"}
        :math:`\lambda(t) = \sigma(t)^2` or :math:`g(t)^2` (see :mod:`physml.generative.score_matching`).
    epsilon : float
        Smallest time, in (0, 1): training draws :math:`t\sim U[\epsilon, 1]`, samplers stop at
        :math:`\epsilon` and likelihoods start there, so the network only ever sees :math:`[\epsilon, 1]`.
    num_classes : int, optional
        Class-conditional model; label ``num_classes`` is the null class of classifier-free guidance.
    condition_dropout : float
        Probability of replacing a label by the null class during training (Ho & Salimans use 0.1-0.2).
    steps, batch_size, learning_rate, weight_decay
        Adam training schedule.
    ema_decay : float, optional
        Keep an exponential moving average of the weights with this decay and sample with it (score_sde
        uses 0.999 to 0.9999); ``None`` keeps the last iterate.

    Attributes
    ----------
    network_ : nn.Module
        The trained network.
    loss_history_ : list of float
        Training loss per step.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import ScoreBasedModel
    >>> generator = torch.Generator().manual_seed(0)
    >>> data = 0.5 * torch.randn(512, 2, generator=generator) + 1.0
    >>> model = ScoreBasedModel("vp", hidden_sizes=(32, 32), steps=20, batch_size=64)
    >>> model = model.fit(data, generator=generator)
    >>> result = model.sample(8, sampler="reverse_sde", steps=50, generator=generator)
    >>> result.samples.shape, result.nfe
    (torch.Size([8, 2]), 52)
    """

    def __init__(
        self,
        sde="vp",
        *,
        network=None,
        hidden_sizes=(128, 128, 128),
        activation: str = "silu",
        parameterisation: str = "noise",
        weighting: str = "sigma_squared",
        epsilon: float = 1e-3,
        num_classes: int | None = None,
        condition_dropout: float = 0.1,
        steps: int = 2000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        ema_decay: float | None = None,
    ):
        self.sde = make_sde(sde)
        self.network = network
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.parameterisation = check_choice(parameterisation, PARAMETERISATIONS, name="parameterisation")
        self.weighting = check_choice(weighting, WEIGHTINGS, name="weighting")
        self.epsilon = check_time_in_window(epsilon, name="epsilon", allow_one=False)
        if num_classes is not None:
            num_classes = check_positive_int(num_classes, name="num_classes")
        self.num_classes = num_classes
        self.condition_dropout = check_probability(condition_dropout, name="condition_dropout")
        self.steps = check_positive_int(steps, name="steps")
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.learning_rate = check_positive_float(learning_rate, name="learning_rate")
        self.weight_decay = check_positive_float(weight_decay, name="weight_decay", allow_zero=True)
        self.ema_decay = check_ema_decay(ema_decay)
        self.network_ = network
        self.event_shape_: tuple[int, ...] | None = None
        self.loss_history_: list[float] = []

    # ------------------------------------------------------------------ training

    def fit(self, data, labels=None, *, generator=None) -> ScoreBasedModel:
        """Train the network by denoising score matching.

        Parameters
        ----------
        data : torch.Tensor or callable
            Samples ``(n, ...)`` (minibatches drawn with replacement) or a sampler
            ``data(n, generator=...)`` called every step.  The network follows its dtype and device.
        labels : torch.Tensor, optional
            Integer class labels ``(n,)`` for a conditional model.
        generator : torch.Generator, optional
            All training randomness (batches, times, noise, label dropout, default network weights).

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
            x0, batch_labels = source.draw(self.batch_size, generator)
            condition = drop_conditions(
                batch_labels, self.condition_dropout, self.num_classes or 0, generator
            )
            return denoising_score_matching_loss(
                self.network_,
                self.sde,
                x0,
                generator=generator,
                parameterisation=self.parameterisation,
                weighting=self.weighting,
                epsilon=self.epsilon,
                condition=condition,
            )

        return self._train_network(compute_loss)

    # ------------------------------------------------------------------ fields

    def score_function(self, t, x: torch.Tensor, condition=None, guidance_scale: float = 0.0) -> torch.Tensor:
        r"""The learned score :math:`\nabla_x\log p_t(x \mid c)`, with classifier-free guidance.

        With guidance scale :math:`w` the network output is :math:`(1+w)\,o(x, c) - w\,o(x, \varnothing)`
        (equivalently for the scores, as the noise-to-score map is linear).

        Parameters
        ----------
        t : float or torch.Tensor
            A time in :math:`[\epsilon, 1]` (0-dim) or one per sample.
        x : torch.Tensor
            States ``(batch, ...)``.
        condition : int or torch.Tensor, optional
            Class label(s).
        guidance_scale : float
            :math:`w \geq 0`.
        """
        network = self._require_network()
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        labels = expand_condition(condition, x.shape[0], self.num_classes, x.device)
        output = guided_network_output(
            network, t, x, labels, null_label=self.num_classes or 0, guidance_scale=float(guidance_scale)
        )
        std = self.sde.std(t)
        if std.ndim:
            std = std.reshape(-1, *([1] * (x.ndim - 1)))
        return output_to_score(output, std, self.parameterisation)

    def _bound_score(self, condition, guidance_scale, n, device):
        labels = expand_condition(condition, n, self.num_classes, device)
        guidance_scale = check_positive_float(guidance_scale, name="guidance_scale", allow_zero=True)

        def score(t, x):
            return self.score_function(t, x, labels, guidance_scale)

        return score

    # ------------------------------------------------------------------ sampling and likelihood

    def sample(
        self,
        n: int,
        *,
        sampler: str = "probability_flow",
        condition=None,
        guidance_scale: float = 0.0,
        generator=None,
        **sampler_options,
    ) -> SamplingResult:
        """Draw ``n`` samples: prior at ``t = 1``, then one of :data:`SAMPLERS` down to ``epsilon``.

        Parameters
        ----------
        n : int
            Number of samples.
        sampler : {"probability_flow", "reverse_sde", "predictor_corrector", "ancestral", "annealed_langevin"}
            See :mod:`physml.generative.samplers`; ``sampler_options`` (``steps``, ``method``, ``rtol``,
            ``snr``, ``denoise``, ...) are passed through.
        condition : int or torch.Tensor, optional
            Class label(s) for a conditional model.
        guidance_scale : float
            Classifier-free guidance weight :math:`w` (0: plain conditional).
        generator : torch.Generator, optional
            Prior draw and sampler noise.

        Returns
        -------
        SamplingResult
        """
        network = self._require_network()
        n = check_positive_int(n, name="n")
        check_choice(sampler, tuple(SAMPLERS), name="sampler")
        dtype, device = parameter_like(network)
        generator = resolve_generator(generator, device)
        shape = (n, *self._event_shape())
        score = self._bound_score(condition, guidance_scale, n, device)
        options = dict(sampler_options)
        options.setdefault("epsilon", self.epsilon)
        self._check_inside_training_window(options)
        if sampler != "probability_flow":
            options["generator"] = generator
        with torch.no_grad():
            prior = self.sde.prior_sample(shape, generator=generator, dtype=dtype, device=device)
            return SAMPLERS[sampler](score, self.sde, prior, **options)

    def _check_inside_training_window(self, options) -> None:
        """The network was trained on [epsilon, 1]: refuse schedules that would query it below."""
        if options.get("times") is not None:
            lowest, name = min(float(time) for time in options["times"]), "times"
        else:
            lowest, name = float(options["epsilon"]), "epsilon"
        if lowest < self.epsilon:
            raise ValueError(
                f"{name} reaches t = {lowest:g}, below the model's training window [epsilon, 1] with "
                f"epsilon = {self.epsilon:g}; the network was never trained there"
            )

    def log_prob(
        self,
        x: torch.Tensor,
        *,
        condition=None,
        trace: str = "exact",
        generator=None,
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        return_stats: bool = False,
    ):
        r"""Log-density of :math:`p_\epsilon` at ``x`` through the probability-flow ODE (from ε to 1).

        Parameters
        ----------
        x : torch.Tensor
            Points ``(batch, ...)``.
        condition : int or torch.Tensor, optional
            Class label(s): the conditional density.
        trace : {"exact", "hutchinson"}
            Exact divergence (small dimension) or Hutchinson–Skilling with one Rademacher probe per solve.
        generator : torch.Generator, optional
            For the Hutchinson probe.
        method, rtol, atol
            ODE solver settings.
        return_stats : bool
            Also return the solver statistics (``nfe``, ``n_steps``, ``status``, ``latent``).
        """
        self._require_network()
        x = check_samples(x, name="x")
        check_choice(trace, TRACE_ESTIMATORS, name="trace")
        score = self._bound_score(condition, 0.0, x.shape[0], x.device)
        with torch.no_grad():
            log_prob, stats = probability_flow_log_likelihood(
                score,
                self.sde,
                x,
                epsilon=self.epsilon,
                trace=trace,
                generator=generator,
                method=method,
                rtol=rtol,
                atol=atol,
            )
        return (log_prob, stats) if return_stats else log_prob

