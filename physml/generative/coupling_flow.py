r"""Discrete normalising flow with affine coupling layers (RealNVP, Dinh et al. 2017).

A coupling layer keeps the coordinates selected by a binary mask :math:`b` and transforms the others
with a scale and shift computed from the kept ones:

.. math::
    y = b\odot x + (1-b)\odot\bigl(x\odot e^{s(b\odot x)} + t(b\odot x)\bigr),
    \qquad \log\lvert\det\partial y/\partial x\rvert = \textstyle\sum (1-b)\odot s,

which is the exact time-:math:`\Delta t` flow of the ODE :math:`\dot x_a = w(x_b)\odot x_a + c(x_b)` (the
course derives RealNVP this way), so it is invertible in closed form.  Layers alternate their masks.
The scale is bounded, :math:`s = s_{max}\tanh(\cdot)`, so no layer can blow up early in training.

``bounds=(low, high)`` models a distribution on a box (e.g. collocation points of a PINN domain): the
data are mapped to :math:`\mathbb R^d` by :math:`y = \operatorname{logit}((x - low)/(high - low))` before
the coupling layers (with its log-Jacobian), and samples are mapped back with the sigmoid, so they
never leave the box.

Direction: the layers map data to the latent space (used by ``log_prob`` and training); ``sample``
runs them inverted from :math:`z\sim\mathcal N(0, I)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._estimator import BatchSource, NotFittedError, parameter_like, run_training, training_generator
from ._validation import check_positive_float, check_positive_int, check_samples, resolve_generator
from .likelihood import standard_normal_log_prob
from .results import SamplingResult

__all__ = ["AffineCoupling", "RealNVP"]


class AffineCoupling(nn.Module):
    """One affine coupling layer on vectors of size ``dim``; ``mask`` marks the coordinates kept fixed.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.coupling_flow import AffineCoupling
    >>> generator = torch.Generator().manual_seed(0)
    >>> layer = AffineCoupling(torch.tensor([1.0, 0.0]), hidden_sizes=(8,), generator=generator)
    >>> x = torch.randn(3, 2)
    >>> y, log_det = layer(x)
    >>> bool(torch.allclose(layer.inverse(y), x, atol=1e-6))
    True
    """

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_sizes=(64, 64),
        *,
        scale_bound: float = 2.0,
        generator=None,
        dtype=None,
        device=None,
    ):
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.to(dtype=dtype or torch.get_default_dtype(), device=device))
        widths = (dim, *hidden_sizes)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(width_in, width_out, dtype=dtype, device=device), nn.SiLU()]
        layers.append(nn.Linear(widths[-1], 2 * dim, dtype=dtype, device=device))
        self.conditioner = nn.Sequential(*layers)
        self.scale_bound = float(scale_bound)
        with torch.no_grad():
            for module in self.conditioner:
                if isinstance(module, nn.Linear):
                    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                    bound = 1.0 / math.sqrt(module.in_features)
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            # Start at the identity map: a zero last layer gives s = t = 0.
            self.conditioner[-1].weight.zero_()
            self.conditioner[-1].bias.zero_()

    def _scale_and_shift(self, kept: torch.Tensor):
        scale, shift = self.conditioner(kept).chunk(2, dim=1)
        free = 1.0 - self.mask
        return self.scale_bound * torch.tanh(scale) * free, shift * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data → latent direction: ``(y, log|det ∂y/∂x|)``."""
        kept = x * self.mask
        scale, shift = self._scale_and_shift(kept)
        return kept + (1.0 - self.mask) * (x * scale.exp() + shift), scale.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Latent → data direction."""
        kept = y * self.mask
        scale, shift = self._scale_and_shift(kept)
        return kept + (1.0 - self.mask) * ((y - shift) * (-scale).exp())


class RealNVP(nn.Module):
    r"""RealNVP normalising flow as an estimator: ``fit`` / ``sample`` / ``log_prob`` / ``score``.

    Parameters
    ----------
    num_coupling_layers : int
        Number of affine coupling layers (masks alternate between even and odd coordinates).
    hidden_sizes : sequence of int
        Hidden widths of each layer's scale-and-shift network.
    bounds : tuple (low, high), optional
        Box domain: floats or tensors of shape ``(dim,)``; the density is zero outside.
    scale_bound : float
        Bound on each log-scale.
    steps, batch_size, learning_rate, weight_decay
        Adam maximum-likelihood schedule.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import RealNVP
    >>> generator = torch.Generator().manual_seed(0)
    >>> data = torch.rand(256, 2, generator=generator)
    >>> flow = RealNVP(num_coupling_layers=4, hidden_sizes=(16,), bounds=(0.0, 1.0), steps=20, batch_size=64)
    >>> samples = flow.fit(data, generator=generator).sample(100, generator=generator).samples
    >>> bool(((samples > 0) & (samples < 1)).all())
    True
    """

    def __init__(
        self,
        num_coupling_layers: int = 8,
        hidden_sizes=(64, 64),
        *,
        bounds=None,
        scale_bound: float = 2.0,
        steps: int = 2000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        self.num_coupling_layers = check_positive_int(num_coupling_layers, name="num_coupling_layers")
        self.hidden_sizes = tuple(int(width) for width in hidden_sizes)
        self.bounds = bounds
        self.scale_bound = check_positive_float(scale_bound, name="scale_bound")
        self.steps = check_positive_int(steps, name="steps")
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.learning_rate = check_positive_float(learning_rate, name="learning_rate")
        self.weight_decay = check_positive_float(weight_decay, name="weight_decay", allow_zero=True)
        self.layers = nn.ModuleList()
        self.dim: int | None = None
        self.loss_history_: list[float] = []

    # ------------------------------------------------------------------ construction

    def _build(self, dim: int, generator, dtype, device) -> None:
        if dim < 2:
            raise ValueError(f"RealNVP needs at least 2 dimensions to couple, got data of dimension {dim}")
        self.dim = dim
        even = (torch.arange(dim) % 2 == 0).to(torch.float64)
        for index in range(self.num_coupling_layers):
            mask = even if index % 2 == 0 else 1.0 - even
            self.layers.append(
                AffineCoupling(
                    mask,
                    self.hidden_sizes,
                    scale_bound=self.scale_bound,
                    generator=generator,
                    dtype=dtype,
                    device=device,
                )
            )
        if self.bounds is not None:
            low, high = self._bounds_like(torch.zeros(1, dim, dtype=dtype, device=device))
            if not bool((high > low).all()):
                raise ValueError(f"bounds must satisfy low < high in every coordinate, got {self.bounds!r}")

    def _bounds_like(self, x: torch.Tensor):
        try:
            low, high = self.bounds
        except (TypeError, ValueError):
            raise TypeError(f"bounds must be a pair (low, high), got {self.bounds!r}") from None
        low = torch.as_tensor(low, dtype=x.dtype, device=x.device).expand(x.shape[1])
        high = torch.as_tensor(high, dtype=x.dtype, device=x.device).expand(x.shape[1])
        return low, high

    def _require_built(self):
        if self.dim is None:
            raise NotFittedError("RealNVP has no layers yet: call fit() first")

    # ------------------------------------------------------------------ transforms

    def to_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data to the latent space: ``(z, log|det ∂z/∂x|)`` (``-inf`` log-det outside the bounds)."""
        self._require_built()
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        if self.bounds is not None:
            low, high = self._bounds_like(x)
            inside = ((x > low) & (x < high)).all(dim=1)
            unit = ((x - low) / (high - low)).clamp(1e-12, 1.0 - 1e-12)
            x = torch.log(unit) - torch.log1p(-unit)
            jacobian = -torch.log(unit) - torch.log1p(-unit) - torch.log(high - low)
            log_det = log_det + jacobian.sum(dim=1)
            log_det = torch.where(inside, log_det, torch.full_like(log_det, -math.inf))
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return x, log_det

    def to_data(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent points to data (the inverse of :meth:`to_latent`)."""
        self._require_built()
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        if self.bounds is not None:
            low, high = self._bounds_like(z)
            z = low + (high - low) * torch.sigmoid(z)
        return z

    # ------------------------------------------------------------------ estimator surface

    def fit(self, data, *, generator=None) -> RealNVP:
        """Maximum-likelihood training on a tensor ``(n, dim)`` or a sampler ``data(n, generator=...)``."""
        source = BatchSource(data)
        generator = training_generator(generator, source)
        example = source.example(generator)
        if example.ndim != 2:
            raise ValueError(f"data must have shape (n, dim), got {tuple(example.shape)}")
        if self.dim is None:
            self._build(example.shape[1], generator, example.dtype, example.device)
        if source.data is not None and self.bounds is not None:
            low, high = self._bounds_like(source.data)
            if not bool(((source.data > low) & (source.data < high)).all()):
                raise ValueError(f"data must lie strictly inside bounds={self.bounds!r}")
        self.to(dtype=example.dtype, device=example.device)
        self.train()

        def compute_loss():
            x, _ = source.draw(self.batch_size, generator)
            z, log_det = self.to_latent(x)
            return -(standard_normal_log_prob(z) + log_det).mean()

        self.loss_history_ += run_training(
            self.parameters(),
            compute_loss,
            steps=self.steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            description=f"{type(self).__name__}.fit",
        )
        self.eval()
        return self

    def sample(self, n: int, *, generator=None) -> SamplingResult:
        """Draw ``n`` samples; ``nfe`` counts the coupling-network evaluations (one per layer)."""
        self._require_built()
        n = check_positive_int(n, name="n")
        dtype, device = parameter_like(self)
        generator = resolve_generator(generator, device)
        with torch.no_grad():
            z = torch.randn(n, self.dim, generator=generator, dtype=dtype, device=device)
            samples = self.to_data(z)
        return SamplingResult(samples=samples, nfe=len(self.layers), stats={"sampler": "inverse"})

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density at ``x`` (``-inf`` outside the bounds)."""
        self._require_built()
        x = check_samples(x, name="x")
        if x.shape[1:] != (self.dim,):
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        z, log_det = self.to_latent(x)
        return standard_normal_log_prob(z) + log_det

    def score(self, x: torch.Tensor) -> float:
        """Mean log-likelihood of ``x`` (nats per sample; higher is better)."""
        with torch.no_grad():
            return float(self.log_prob(x).mean())
