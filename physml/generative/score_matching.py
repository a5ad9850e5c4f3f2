r"""Continuous-time denoising score matching (Song et al. 2021, eq. 7).

With :math:`x_t = m(t)\,x_0 + \sigma(t)\,\varepsilon` the conditional score is
:math:`\nabla\log p_t(x_t\mid x_0) = -\varepsilon/\sigma(t)`, and the objective

.. math::
    \mathbb E_{t\sim U[\epsilon, 1]}\,\mathbb E_{x_0, \varepsilon}\;
    \lambda(t)\,\bigl\|s_\theta(x_t, t) + \varepsilon/\sigma(t)\bigr\|^2

is written for the two parameterisations as :math:`w(t)\,\|r\|^2` with

* ``"noise"`` (ε-prediction, DDPM): the network predicts :math:`\varepsilon`, the score is
  :math:`-\varepsilon_\theta/\sigma(t)`, and :math:`r = \varepsilon_\theta - \varepsilon`;
* ``"score"``: the network is the score, and :math:`r = \sigma(t)\,s_\theta + \varepsilon`;

and the weightings

* ``"sigma_squared"``: :math:`\lambda(t) = \sigma(t)^2`, i.e. :math:`w = 1` (DDPM's simple loss);
* ``"likelihood"``: :math:`\lambda(t) = g(t)^2`, i.e. :math:`w = g(t)^2/\sigma(t)^2`, which makes the
  objective an upper bound on the negative log-likelihood of the probability-flow model (Song, Durkan,
  Murray & Ermon 2021). Its variance is large for small :math:`t` (:math:`w \sim 1/t` for VP).

Squared norms are summed over the data dimensions and averaged over the batch.
"""

from __future__ import annotations

import torch

from ._validation import check_choice, check_network_output
from .networks import call_network
from .sdes import DiffusionSDE

__all__ = ["PARAMETERISATIONS", "WEIGHTINGS", "denoising_score_matching_loss", "output_to_score"]

PARAMETERISATIONS = ("noise", "score")
WEIGHTINGS = ("sigma_squared", "likelihood")


def output_to_score(output: torch.Tensor, std: torch.Tensor, parameterisation: str) -> torch.Tensor:
    """Turn a network output into a score estimate (``std`` broadcastable against ``output``)."""
    if parameterisation == "noise":
        return -output / std
    return output


def denoising_score_matching_loss(
    network,
    sde: DiffusionSDE,
    x0: torch.Tensor,
    *,
    generator: torch.Generator,
    parameterisation: str = "noise",
    weighting: str = "sigma_squared",
    epsilon: float = 1e-3,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""One Monte-Carlo estimate of the denoising score-matching objective on a batch.

    Parameters
    ----------
    network : callable
        ``network(t, x)`` or ``network(t, x, condition)`` with ``t`` of shape ``(batch,)``.
    sde : DiffusionSDE
        The forward process.
    x0 : torch.Tensor
        Data batch, shape ``(batch, ...)``.
    generator : torch.Generator
        Randomness for the times and the noise.
    parameterisation : {"noise", "score"}
        What the network predicts.
    weighting : {"sigma_squared", "likelihood"}
        :math:`\lambda(t) = \sigma(t)^2` or :math:`g(t)^2`.
    epsilon : float
        Smallest time: :math:`t \sim U[\epsilon, 1]` (the network is trained, so evaluated, on this window).
    condition : torch.Tensor, optional
        Class labels passed to the network.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VPSDE, TimeConditionedMLP, denoising_score_matching_loss
    >>> generator = torch.Generator().manual_seed(0)
    >>> network = TimeConditionedMLP(2, hidden_sizes=(16,), generator=generator)
    >>> loss = denoising_score_matching_loss(network, VPSDE(), torch.randn(32, 2, generator=generator),
    ...                                      generator=generator)
    >>> loss.ndim
    0
    """
    check_choice(parameterisation, PARAMETERISATIONS, name="parameterisation")
    check_choice(weighting, WEIGHTINGS, name="weighting")
    batch = x0.shape[0]
    options = {"generator": generator, "dtype": x0.dtype, "device": x0.device}
    t = epsilon + (1.0 - epsilon) * torch.rand(batch, **options)
    noise = torch.randn(x0.shape, **options)
    mean, std = sde.marginal(x0, t)
    x_t = mean + std * noise
    output = check_network_output(call_network(network, t, x_t, condition), x_t)
    residual = output - noise if parameterisation == "noise" else std * output + noise
    per_sample = residual.reshape(batch, -1).square().sum(dim=1)
    if weighting == "likelihood":
        per_sample = per_sample * sde.diffusion(t).square() / sde.variance(t)
    return per_sample.mean()
