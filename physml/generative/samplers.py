r"""Samplers for score-based models: reverse-time SDE, predictor–corrector, probability-flow ODE,
DDPM ancestral sampling and NCSN annealed Langevin dynamics.

All take a score function ``score_function(t, x)`` estimating :math:`\nabla_x\log p_t(x)` (``t`` a 0-dim
tensor), the forward :class:`~physml.generative.sdes.DiffusionSDE` and the prior samples at ``t = 1``, and
return a :class:`~physml.generative.results.SamplingResult` with the number of score evaluations.

Time runs *backwards* from 1 to :math:`\epsilon` and the score is only ever evaluated at times in
:math:`[\epsilon, 1]` — the window it was trained on.  The reverse-time SDE

.. math:: dx = \bigl[f(x, t) - g(t)^2\,\nabla_x\log p_t(x)\bigr]dt + g(t)\,d\bar w

is handed to :func:`physml.sdeint` with decreasing output times (negative steps, increments of variance
:math:`|h|`), and the probability-flow ODE :math:`\dot x = f - \tfrac12 g^2\nabla\log p_t` to
:func:`physml.solve_ode` from 1 to :math:`\epsilon`: no time negation, no re-parameterised clock.

``denoise=True`` (the default, as score_sde_pytorch's ``noise_removal``) finishes with one Tweedie step
:math:`\hat x_0 = (x + \sigma(\epsilon)^2\,s(\epsilon, x))/m(\epsilon)` at :math:`t = \epsilon` (one more
evaluation, counted in the NFE).
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_samples,
    check_time_in_window,
    check_time_schedule,
    resolve_generator,
)
from .likelihood import probability_flow_velocity
from .results import CountingField, SamplingResult
from .sdes import DiffusionSDE

__all__ = [
    "ReverseTimeSDE",
    "reverse_sde_sample",
    "probability_flow_sample",
    "predictor_corrector_sample",
    "ancestral_sample",
    "annealed_langevin_sample",
    "PREDICTORS",
    "CORRECTORS",
]

PREDICTORS = ("euler_maruyama", "reverse_diffusion", "ancestral", "none")
CORRECTORS = ("langevin", "none")


class ReverseTimeSDE(nn.Module):
    r"""The generative SDE :math:`dx = [f - g^2 s]\,dt + g\,d\bar w` in torchsde's protocol.

    Solve it with :func:`physml.sdeint` and *decreasing* times (from 1 to :math:`\epsilon`); the same
    formula serves because the solver takes negative steps.

    Parameters
    ----------
    score_function : callable
        ``score_function(t, x)``.
    sde : DiffusionSDE
        The forward SDE.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, score_function, sde: DiffusionSDE):
        super().__init__()
        self.score_function = score_function
        self.sde = sde
        # [time object, drift coefficient c(t), g(t), g(t)^2]; mutated in place because assigning an
        # attribute of an nn.Module goes through Module.__setattr__, a visible cost at 1 000 steps.
        self._cache = [None, None, None, None]

    def _coefficients(self, t, y) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Solvers call f and g with the same time object in a step: the schedule arithmetic on 0-dim
        # tensors runs once per step for both (with a cheap score it is a visible share of a step).
        cache = self._cache
        if cache[0] is t and cache[2].dtype == y.dtype:
            return cache[1], cache[2], cache[3]
        time = torch.as_tensor(t, dtype=y.dtype, device=y.device)
        diffusion = self.sde.diffusion(time)
        cache[:] = [t, self.sde.drift_coefficient(time), diffusion, diffusion.square()]
        return cache[1], cache[2], cache[3]

    def f(self, t, y):
        # f(x, t) = c(t) x for every DiffusionSDE (its drift is defined that way).
        coefficient, _, diffusion_squared = self._coefficients(t, y)
        return torch.addcmul(coefficient * y, diffusion_squared, self.score_function(t, y), value=-1.0)

    def g(self, t, y):
        return self._coefficients(t, y)[1].expand_as(y)


def _setup(score_function, sde, prior_samples, epsilon, steps, times):
    if not isinstance(sde, DiffusionSDE):
        raise TypeError(f"sde must be a physml.generative.DiffusionSDE, got {type(sde).__name__}")
    if not callable(score_function):
        raise TypeError(
            f"score_function must be callable (t, x) -> score, got {type(score_function).__name__}"
        )
    prior_samples = check_samples(prior_samples, name="prior_samples")
    if times is None:
        epsilon = check_time_in_window(epsilon, name="epsilon", allow_one=False)
        steps = check_positive_int(steps, name="steps")
        schedule = torch.linspace(sde.time_horizon, epsilon, steps + 1, dtype=torch.float64)
    else:
        schedule = check_time_schedule(times, name="times")
    counting = CountingField(score_function, name="score network")
    return counting, prior_samples, schedule.tolist()


def _time(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.scalar_tensor(value, dtype=like.dtype, device=like.device)


def _tweedie(score_function, sde, x, time: float):
    t = _time(time, x)
    score = score_function(t, x)
    return (x + sde.variance(t) * score) / sde.mean_coefficient(t)


def _result(x, counting, schedule, sampler, **stats):
    return SamplingResult(
        samples=x,
        nfe=counting.evaluations,
        stats={
            "sampler": sampler,
            "time_window": (schedule[-1], schedule[0]),
            "n_steps": len(schedule) - 1,
            **stats,
        },
    )


def reverse_sde_sample(
    score_function,
    sde: DiffusionSDE,
    prior_samples: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    steps: int = 1000,
    times=None,
    method: str = "euler",
    generator=None,
    denoise: bool = True,
) -> SamplingResult:
    r"""Sample by solving the reverse-time SDE from 1 to :math:`\epsilon` with :func:`physml.sdeint`.

    Parameters
    ----------
    score_function : callable
        ``score_function(t, x)`` estimating :math:`\nabla_x\log p_t(x)`.
    sde : DiffusionSDE
        The forward SDE.
    prior_samples : torch.Tensor
        Starting points at ``t = 1``, shape ``(n, ...)``.
    epsilon : float
        End time in (0, 1).
    steps : int
        Number of equal solver steps (ignored when ``times`` is given).
    times : sequence of float, optional
        Explicit decreasing schedule in (0, 1]; one solver step per interval.
    method : str
        An :data:`physml.SDE_METHODS` method for Itô SDEs with diagonal noise ("euler", "milstein").
    generator : torch.Generator, optional
        Randomness of the Brownian path.
    denoise : bool
        Finish with a Tweedie step at :math:`\epsilon`.

    Returns
    -------
    SamplingResult

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VPSDE, reverse_sde_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> sde = VPSDE()
    >>> prior = sde.prior_sample((500, 2), generator=generator)
    >>> # Data N(0, I): the exact score is -x at every time.
    >>> result = reverse_sde_sample(lambda t, x: -x, sde, prior, steps=100, generator=generator)
    >>> result.nfe, result.samples.shape
    (102, torch.Size([500, 2]))
    """
    from ..solvers import sdeint

    counting, x, schedule = _setup(score_function, sde, prior_samples, epsilon, steps, times)
    generator = resolve_generator(generator, x.device)
    if times is None:
        # Only the end state is kept; sdeint splits [epsilon, 1] into `steps` equal steps itself.
        output_times = [schedule[0], schedule[-1]]
        dt = (schedule[0] - schedule[-1]) / (len(schedule) - 1)
    else:
        # dt a hair above the largest gap: exactly one solver step per interval of the given schedule.
        output_times = schedule
        dt = max(start - stop for start, stop in zip(schedule[:-1], schedule[1:], strict=True)) * (1 + 1e-12)
    x = sdeint(ReverseTimeSDE(counting, sde), x, output_times, method=method, dt=dt, generator=generator)[-1]
    if denoise:
        x = _tweedie(counting, sde, x, schedule[-1])
    return _result(x, counting, schedule, "reverse_sde", method=method)


def probability_flow_sample(
    score_function,
    sde: DiffusionSDE,
    prior_samples: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    steps: int | None = None,
    options: dict | None = None,
    denoise: bool = True,
) -> SamplingResult:
    r"""Sample by solving the probability-flow ODE from 1 to :math:`\epsilon` with :func:`physml.solve_ode`.

    Parameters
    ----------
    score_function, sde, prior_samples, epsilon, denoise
        As for :func:`reverse_sde_sample`.
    method, rtol, atol, options
        Passed to :func:`physml.solve_ode` (score_sde_pytorch uses RK45 with 1e-5 tolerances).
    steps : int, optional
        For fixed-step methods (``euler``, ``rk4``, ...): the number of equal steps.

    Returns
    -------
    SamplingResult
        ``stats`` holds the solver's statistics and status.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VESDE, probability_flow_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> sde = VESDE(0.01, 5.0)
    >>> prior = sde.prior_sample((4, 2), generator=generator)
    >>> result = probability_flow_sample(lambda t, x: -x / (1 + sde.variance(t)), sde, prior)
    >>> result.stats["status"], result.nfe > 0
    ('success', True)
    """
    from ..solvers import solve_ode

    counting, x, schedule = _setup(score_function, sde, prior_samples, epsilon, 1, None)
    options = dict(options or {})
    if steps is not None:
        options["step_size"] = (schedule[0] - schedule[-1]) / check_positive_int(steps, name="steps")
    solution = solve_ode(
        probability_flow_velocity(counting, sde),
        x,
        [schedule[0], schedule[-1]],
        method=method,
        rtol=rtol,
        atol=atol,
        options=options or None,
    )
    x = solution.ys[-1]
    if denoise:
        x = _tweedie(counting, sde, x, schedule[-1])
    result = _result(x, counting, schedule, "probability_flow", method=method, status=solution.status)
    result.stats.update({key: solution.stats[key] for key in ("n_steps", "n_accepted", "n_rejected")})
    return result


def _langevin_step(score_function, x, t, snr, alpha, generator):
    """score_sde_pytorch's Langevin corrector: the step size is set by a target signal-to-noise ratio."""
    score = score_function(t, x)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    score_norm = score.reshape(x.shape[0], -1).norm(dim=1).mean()
    noise_norm = noise.reshape(x.shape[0], -1).norm(dim=1).mean()
    step = 2.0 * alpha * (snr * noise_norm / score_norm.clamp_min(torch.finfo(x.dtype).tiny)).square()
    return x + step * score + (2.0 * step).sqrt() * noise


def _predictor_step(kind, score_function, sde, x, start, stop, generator, variance="transition"):
    """One reverse step from time ``start`` down to ``stop`` (``start > stop``)."""
    t, s = _time(start, x), _time(stop, x)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    score = score_function(t, x)
    if kind == "euler_maruyama":
        gap = start - stop
        g = sde.diffusion(t)
        return x - (sde.drift(t, x) - g.square() * score) * gap + g * gap**0.5 * noise
    ratio, increment = sde.transition(s, t)
    if kind == "reverse_diffusion":
        # Discretised forward step x_t = x_s + (a - 1) x_s + sqrt(v) z, reversed (score_sde's predictor).
        return x - (ratio - 1.0) * x + increment * score + increment.sqrt() * noise
    mean = (x + increment * score) / ratio
    if variance == "posterior":
        return mean + (sde.variance(s) * increment / sde.variance(t)).sqrt() * noise
    return mean + increment.sqrt() * noise


def predictor_corrector_sample(
    score_function,
    sde: DiffusionSDE,
    prior_samples: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    steps: int = 1000,
    times=None,
    predictor: str = "reverse_diffusion",
    corrector: str = "langevin",
    snr: float = 0.16,
    corrector_steps: int = 1,
    generator=None,
    denoise: bool = True,
) -> SamplingResult:
    r"""Predictor–corrector sampling (Song et al. 2021, Algorithms 2-3).

    At each time :math:`t_k` of the schedule, ``corrector_steps`` Langevin steps on :math:`p_{t_k}` with the
    step size :math:`2\alpha_k(r\,\|z\|/\|s\|)^2` (``snr`` :math:`r`, norms averaged over the batch,
    :math:`\alpha_k = a(t_{k+1}, t_k)^2` the one-step mean factor squared, 1 for VE), then one predictor
    step to :math:`t_{k+1}`.

    Parameters
    ----------
    predictor : {"reverse_diffusion", "euler_maruyama", "ancestral", "none"}
        "reverse_diffusion" reverses the exactly discretised forward step, "ancestral" is the DDPM
        step (:func:`ancestral_sample`), "euler_maruyama" the reverse-SDE Euler step.
    corrector : {"langevin", "none"}
    snr : float
        Target signal-to-noise ratio of the corrector (score_sde's default 0.16; 0.05-0.2 typical).
    corrector_steps : int
        Langevin steps per time.
    score_function, sde, prior_samples, epsilon, steps, times, generator, denoise
        As for :func:`reverse_sde_sample`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VESDE, predictor_corrector_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> sde = VESDE(0.01, 5.0)
    >>> prior = sde.prior_sample((100, 2), generator=generator)
    >>> result = predictor_corrector_sample(lambda t, x: -x / (1 + sde.variance(t)), sde, prior, steps=50,
    ...                                     generator=generator)
    >>> result.nfe
    101
    """
    counting, x, schedule = _setup(score_function, sde, prior_samples, epsilon, steps, times)
    check_choice(predictor, PREDICTORS, name="predictor")
    check_choice(corrector, CORRECTORS, name="corrector")
    snr = check_positive_float(snr, name="snr")
    corrector_steps = check_positive_int(corrector_steps, name="corrector_steps")
    generator = resolve_generator(generator, x.device)
    for start, stop in zip(schedule[:-1], schedule[1:], strict=True):
        if corrector == "langevin":
            t = _time(start, x)
            ratio, _ = sde.transition(_time(stop, x), t)
            for _ in range(corrector_steps):
                x = _langevin_step(counting, x, t, snr, ratio.square(), generator)
        if predictor != "none":
            x = _predictor_step(predictor, counting, sde, x, start, stop, generator)
    if denoise:
        x = _tweedie(counting, sde, x, schedule[-1])
    return _result(
        x,
        counting,
        schedule,
        "predictor_corrector",
        predictor=predictor,
        corrector=corrector,
        snr=snr,
        corrector_steps=corrector_steps,
    )


def ancestral_sample(
    score_function,
    sde: DiffusionSDE,
    prior_samples: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    steps: int = 1000,
    times=None,
    variance: str = "transition",
    generator=None,
    denoise: bool = True,
) -> SamplingResult:
    r"""Ancestral sampling: DDPM's reverse Markov chain (Ho et al. 2020, Algorithm 2) on the SDE's grid.

    Between consecutive times :math:`s < t` the forward kernel is :math:`x_t = a\,x_s + \sqrt v\,z`
    (:meth:`DiffusionSDE.transition`; for VP :math:`v = \beta_t` and :math:`a = \sqrt{1 - \beta_t}`, the
    DDPM chain of ``steps`` steps).  One step draws

    .. math:: x_s = \frac{x_t + v\,s(t, x_t)}{a} + \sigma\,z,

    which with :math:`s = -\varepsilon_\theta/\sqrt{1-\bar\alpha_t}` is DDPM's
    :math:`\tfrac{1}{\sqrt{\alpha_t}}\bigl(x_t
    - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta\bigr)`.
    For VE (:math:`a = 1`) it is the ancestral sampler of score_sde_pytorch.

    Parameters
    ----------
    variance : {"transition", "posterior"}
        :math:`\sigma^2 = v` (Ho et al.'s :math:`\sigma_t^2 = \beta_t`) or the posterior variance
        :math:`v\,\sigma(s)^2/\sigma(t)^2` (:math:`\tilde\beta_t`); Ho et al. report similar results.
    score_function, sde, prior_samples, epsilon, steps, times, generator, denoise
        As for :func:`reverse_sde_sample`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VPSDE, ancestral_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> result = ancestral_sample(lambda t, x: -x, VPSDE(), torch.randn(10, 2, generator=generator), steps=20,
    ...                           generator=generator, denoise=False)
    >>> result.nfe
    20
    """
    counting, x, schedule = _setup(score_function, sde, prior_samples, epsilon, steps, times)
    check_choice(variance, ("transition", "posterior"), name="variance")
    generator = resolve_generator(generator, x.device)
    for start, stop in zip(schedule[:-1], schedule[1:], strict=True):
        x = _predictor_step("ancestral", counting, sde, x, start, stop, generator, variance=variance)
    if denoise:
        x = _tweedie(counting, sde, x, schedule[-1])
    return _result(x, counting, schedule, "ancestral", variance=variance)


def annealed_langevin_sample(
    score_function,
    sde: DiffusionSDE,
    prior_samples: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    noise_levels: int = 10,
    times=None,
    steps_per_level: int = 100,
    step_size: float = 2e-5,
    generator=None,
    denoise: bool = True,
) -> SamplingResult:
    r"""NCSN's annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For noise levels :math:`\sigma_1 > \dots > \sigma_L` (the marginal standard deviations at the times
    of the schedule; geometric for VE), run ``steps_per_level`` Langevin steps

    .. math:: x \leftarrow x + \tfrac{\alpha_i}{2}\,s(t_i, x) + \sqrt{\alpha_i}\,z,
              \qquad \alpha_i = \text{step\_size}\cdot\sigma_i^2/\sigma_L^2.

    Parameters
    ----------
    noise_levels : int
        Number of levels, at times ``linspace(1, epsilon, noise_levels)`` (ignored when ``times`` is given).
    steps_per_level : int
        Langevin steps per level (NCSN: 100).
    step_size : float
        :math:`\epsilon` of NCSN (2e-5 for images); :math:`\alpha_L = ` ``step_size`` at the smallest level.
    score_function, sde, prior_samples, epsilon, times, generator, denoise
        As for :func:`reverse_sde_sample`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VESDE, annealed_langevin_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> sde = VESDE(0.1, 5.0)
    >>> prior = sde.prior_sample((10, 2), generator=generator)
    >>> result = annealed_langevin_sample(lambda t, x: -x / (1 + sde.variance(t)), sde, prior, noise_levels=5,
    ...                                   steps_per_level=10, step_size=1e-3, generator=generator,
    ...                                   denoise=False)
    >>> result.nfe
    50
    """
    if times is None:
        noise_levels = check_positive_int(noise_levels, name="noise_levels")
        if noise_levels < 2:
            raise ValueError(f"noise_levels must be at least 2, got {noise_levels}")
    counting, x, schedule = _setup(
        score_function, sde, prior_samples, epsilon, max(int(noise_levels) - 1, 1), times
    )
    steps_per_level = check_positive_int(steps_per_level, name="steps_per_level")
    step_size = check_positive_float(step_size, name="step_size")
    generator = resolve_generator(generator, x.device)
    smallest_variance = sde.variance(_time(schedule[-1], x))
    for level in schedule:
        t = _time(level, x)
        alpha = step_size * sde.variance(t) / smallest_variance
        for _ in range(steps_per_level):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + 0.5 * alpha * counting(t, x) + alpha.sqrt() * noise
    if denoise:
        x = _tweedie(counting, sde, x, schedule[-1])
    result = _result(
        x, counting, schedule, "annealed_langevin", steps_per_level=steps_per_level, step_size=step_size
    )
    result.stats["n_steps"] = len(schedule) * steps_per_level
    return result
