r"""Forward diffusion SDEs of score-based generative modelling (Song et al., ICLR 2021).

Each SDE :math:`dx = f(x, t)\,dt + g(t)\,dw` on :math:`t \in [0, 1]` is linear with a Gaussian
transition kernel :math:`p_t(x \mid x_0) = \mathcal N(m(t)\,x_0,\; \sigma(t)^2 I)`:

* VP (the DDPM limit): :math:`f = -\tfrac12\beta x`, :math:`g^2 = \beta`, :math:`m = e^{-B/2}`,
  :math:`\sigma^2 = 1 - e^{-B}`;
* sub-VP: :math:`f = -\tfrac12\beta x`, :math:`g^2 = \beta(1 - e^{-2B})`, :math:`m = e^{-B/2}`,
  :math:`\sigma^2 = (1 - e^{-B})^2`;
* VE (the NCSN limit): :math:`f = 0`, :math:`g^2 = \tfrac{d}{dt}s(t)^2`, :math:`m = 1`,
  :math:`\sigma^2 = s(t)^2 - s(0)^2`,

with :math:`\beta(t) = \beta_{min} + t(\beta_{max} - \beta_{min})`, :math:`B(t) = \int_0^t\beta`, and
:math:`s(t) = \sigma_{min}(\sigma_{max}/\sigma_{min})^t`.  The VE variance is the SDE's exact one from a
point mass; score_sde_pytorch uses :math:`s(t)^2` instead (data pre-blurred by :math:`\sigma_{min}`), which
differs only for :math:`t` near 0.

The SDE objects hand torchsde-protocol processes to :func:`physml.sdeint`:
:meth:`DiffusionSDE.forward_process` (noising) and :class:`physml.generative.samplers.ReverseTimeSDE` (the
generative reverse-time SDE, solved with *decreasing* times — no time negation).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

__all__ = ["DiffusionSDE", "VPSDE", "SubVPSDE", "VESDE", "make_sde"]


def _as_time(t, like: torch.Tensor) -> torch.Tensor:
    """Times as a tensor of ``like``'s dtype/device (0-dim or ``(batch,)``)."""
    return torch.as_tensor(t, dtype=like.dtype, device=like.device)


def broadcast_time(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample values ``(batch,)`` (or a scalar) to broadcast against ``x`` ``(batch, ...)``."""
    if values.ndim == 0:
        return values
    return values.reshape(values.shape[0], *([1] * (x.ndim - 1)))


class DiffusionSDE(ABC):
    """A linear forward SDE with scalar diffusion and Gaussian marginals, on the time window [0, 1].

    Subclasses define :meth:`drift_coefficient` (:math:`f(x, t) = c(t) x`), :meth:`diffusion`,
    :meth:`mean_coefficient` and :meth:`variance`, plus the prior's scale.
    """

    #: End of the forward process; the samplers start from the prior here.
    time_horizon: float = 1.0
    #: Standard deviation of the isotropic Gaussian prior at ``t = 1``.
    prior_std: float = 1.0

    @abstractmethod
    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`c(t)` in :math:`f(x, t) = c(t)\\,x`."""

    @abstractmethod
    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`g(t)`, elementwise in ``t``."""

    @abstractmethod
    def mean_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`m(t)` of the transition kernel from time 0."""

    @abstractmethod
    def variance(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\sigma(t)^2` of the transition kernel from time 0."""

    def std(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\sigma(t)`."""
        return self.variance(t).sqrt()

    def drift(self, t, x: torch.Tensor) -> torch.Tensor:
        """:math:`f(x, t)`; ``t`` is 0-dim or ``(batch,)``."""
        return broadcast_time(self.drift_coefficient(_as_time(t, x)), x) * x

    def marginal(self, x0: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of :math:`p_t(x \\mid x_0)`.

        Parameters
        ----------
        x0 : torch.Tensor
            Data, shape ``(batch, ...)``.
        t : float or torch.Tensor
            A time (0-dim) or one time per sample ``(batch,)``.

        Returns
        -------
        mean : torch.Tensor
            Shape of ``x0``.
        std : torch.Tensor
            Broadcastable against ``x0`` (shape ``(batch, 1, ...)`` or 0-dim).

        Examples
        --------
        >>> import torch
        >>> from physml.generative import VPSDE
        >>> mean, std = VPSDE().marginal(torch.ones(3, 2), torch.tensor(0.5))
        >>> round(float(mean[0, 0]), 4), round(float(std), 4)
        (0.2812, 0.9597)
        """
        t = _as_time(t, x0)
        mean = broadcast_time(self.mean_coefficient(t), x0) * x0
        return mean, broadcast_time(self.std(t), x0)

    def transition(self, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel :math:`x_t = a\\,x_s + \\sqrt{v}\\,z` between two times ``s < t``: returns ``(a, v)``.

        :math:`a = m(t)/m(s)` and :math:`v = \\sigma(t)^2 - a^2\\sigma(s)^2`; one step of the DDPM chain
        is this kernel with :math:`\\beta = v` (VP) and one NCSN noise level increment is it with ``a = 1``.
        """
        ratio = self.mean_coefficient(t) / self.mean_coefficient(s)
        return ratio, (self.variance(t) - ratio.square() * self.variance(s)).clamp_min(0.0)

    def prior_sample(
        self, shape, *, generator: torch.Generator, dtype=torch.float32, device=None
    ) -> torch.Tensor:
        """Draw from the prior :math:`\\mathcal N(0, \\text{prior\\_std}^2 I)` with ``generator``."""
        return self.prior_std * torch.randn(
            tuple(shape), generator=generator, dtype=dtype, device=device or generator.device
        )

    def prior_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of the prior at ``x`` (summed over all but the first axis)."""
        flat = x.reshape(x.shape[0], -1)
        dim = flat.shape[1]
        return -0.5 * flat.square().sum(dim=1) / self.prior_std**2 - 0.5 * dim * math.log(
            2.0 * math.pi * self.prior_std**2
        )

    def forward_process(self) -> nn.Module:
        """The noising SDE in torchsde's protocol, for :func:`physml.sdeint` (forward, increasing times).

        Examples
        --------
        >>> import torch, physml
        >>> from physml.generative import VPSDE
        >>> sde = VPSDE()
        >>> ys = physml.sdeint(sde.forward_process(), torch.zeros(4, 2), [0.0, 1.0], dt=0.01,
        ...                    generator=torch.Generator().manual_seed(0))
        >>> ys.shape
        torch.Size([2, 4, 2])
        """
        return _ForwardProcess(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._config().items())
        return f"{type(self).__name__}({fields})"

    def _config(self) -> dict:
        return {}


class _ForwardProcess(nn.Module):
    """``dx = f(x, t) dt + g(t) dw`` with diagonal noise, Itô (the noise is additive: Itô = Stratonovich)."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, sde: DiffusionSDE):
        super().__init__()
        self.sde = sde

    def f(self, t, y):
        return self.sde.drift(t, y)

    def g(self, t, y):
        return self.sde.diffusion(_as_time(t, y)).expand_as(y)


def _check_schedule(low: float, high: float, low_name: str, high_name: str) -> tuple[float, float]:
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise TypeError(f"{low_name} and {high_name} must be numbers, got {low!r} and {high!r}") from None
    if not (0.0 < low < high < math.inf):
        raise ValueError(
            f"need 0 < {low_name} < {high_name} < inf, got {low_name}={low!r}, {high_name}={high!r}"
        )
    return low, high


class VPSDE(DiffusionSDE):
    r"""Variance-preserving SDE: :math:`dx = -\tfrac12\beta(t)x\,dt + \sqrt{\beta(t)}\,dw`, the DDPM limit.

    Parameters
    ----------
    beta_min, beta_max : float
        Linear noise schedule :math:`\beta(t) = \beta_{min} + t(\beta_{max} - \beta_{min})`; defaults
        0.1 and 20 as in score_sde_pytorch (DDPM's :math:`\beta_1 = 10^{-4}, \beta_T = 0.02`, T = 1000,
        times T).

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VPSDE
    >>> sde = VPSDE()
    >>> float(sde.mean_coefficient(torch.tensor(0.0)))
    1.0
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min, self.beta_max = _check_schedule(beta_min, beta_max, "beta_min", "beta_max")

    def _config(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max}

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`B(t) = \\int_0^t \\beta(s)\\,ds`."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t.square()

    def drift_coefficient(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return self.beta(t).sqrt()

    def mean_coefficient(self, t):
        return torch.exp(-0.5 * self.integrated_beta(t))

    def variance(self, t):
        return -torch.expm1(-self.integrated_beta(t))


class SubVPSDE(VPSDE):
    r"""Sub-variance-preserving SDE: VP drift, :math:`g^2 = \beta(t)(1 - e^{-2B(t)})`.

    Its marginal variance :math:`(1 - e^{-B})^2` stays below the VP one; Song et al. report their best
    likelihoods with it.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import SubVPSDE, VPSDE
    >>> t = torch.tensor(0.3)
    >>> bool(SubVPSDE().variance(t) < VPSDE().variance(t))
    True
    """

    def diffusion(self, t):
        return (-self.beta(t) * torch.expm1(-2.0 * self.integrated_beta(t))).sqrt()

    def variance(self, t):
        return torch.expm1(-self.integrated_beta(t)).square()


class VESDE(DiffusionSDE):
    r"""Variance-exploding SDE: :math:`dx = \sqrt{d[s(t)^2]/dt}\,dw`, the NCSN limit.

    :math:`s(t) = \sigma_{min}(\sigma_{max}/\sigma_{min})^t`, so
    :math:`g(t) = s(t)\sqrt{2\log(\sigma_{max}/\sigma_{min})}`.  The prior is
    :math:`\mathcal N(0, \sigma_{max}^2 I)`.

    Parameters
    ----------
    sigma_min, sigma_max : float
        Noise scales (score_sde_pytorch's defaults 0.01 and 50; choose ``sigma_max`` about the largest
        pairwise distance in the data).

    Examples
    --------
    >>> import torch
    >>> from physml.generative import VESDE
    >>> round(float(VESDE(0.01, 50.0).std(torch.tensor(1.0))), 3)
    50.0
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        self.sigma_min, self.sigma_max = _check_schedule(sigma_min, sigma_max, "sigma_min", "sigma_max")
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)
        self.prior_std = self.sigma_max

    def _config(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    def noise_scale(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`s(t) = \\sigma_{min}(\\sigma_{max}/\\sigma_{min})^t`."""
        return self.sigma_min * torch.exp(t * self.log_ratio)

    def drift_coefficient(self, t):
        return torch.zeros_like(t)

    def diffusion(self, t):
        return self.noise_scale(t) * math.sqrt(2.0 * self.log_ratio)

    def mean_coefficient(self, t):
        return torch.ones_like(t)

    def variance(self, t):
        # s(t)^2 - s(0)^2 = sigma_min^2 (exp(2 t log r) - 1), written with expm1 for small t.
        return self.sigma_min**2 * torch.expm1(2.0 * t * self.log_ratio)


def make_sde(sde) -> DiffusionSDE:
    """Return ``sde`` if it is a :class:`DiffusionSDE`, else build one from a name ("vp", "subvp", "ve").

    Examples
    --------
    >>> from physml.generative import make_sde
    >>> make_sde("ve")
    VESDE(sigma_min=0.01, sigma_max=50.0)
    """
    if isinstance(sde, DiffusionSDE):
        return sde
    names = {"vp": VPSDE, "subvp": SubVPSDE, "sub-vp": SubVPSDE, "ve": VESDE}
    if not isinstance(sde, str) or sde.lower() not in names:
        raise ValueError(f"sde must be a DiffusionSDE or one of 'vp', 'subvp', 've'; got {sde!r}")
    return names[sde.lower()]()
