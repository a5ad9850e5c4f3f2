"""Small time-conditioned networks used as default score, noise and velocity models.

The protocol every generative model in :mod:`physml.generative` expects from its network is
``network(t, x)`` (unconditional) or ``network(t, x, condition)`` (class-conditional), returning a
tensor shaped like ``x``.  ``t`` is a tensor of shape ``()`` or ``(batch,)``; the argument order follows
physml's vector fields ``func(t, y)`` so a velocity network can be handed to :func:`physml.solve_ode`
directly.  Class labels are integers in ``[0, num_classes)``; the label ``num_classes`` means "no
condition" (the null class that classifier-free guidance trains and queries).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TimeConditionedMLP", "TimeConditionedConvNet", "sinusoidal_time_embedding"]

_ACTIVATIONS = {"silu": nn.SiLU, "selu": nn.SELU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU}


class TimeConditionedMLP(nn.Module):
    """Multilayer perceptron on ``[x, t]`` (and a learned class embedding when conditional).

    Parameters
    ----------
    dim : int
        Dimension of the state ``x`` (shape ``(batch, dim)``).
    hidden_sizes : sequence of int
        Widths of the hidden layers.
    activation : {"silu", "selu", "tanh", "softplus", "elu"}
        Smooth activations only: likelihoods need the divergence of the network, and CNF training
        differentiates it again.
    num_classes : int, optional
        Number of classes for conditional models; one extra embedding row is the null class.
    embedding_dim : int
        Size of the class embedding.
    generator : torch.Generator, optional
        Randomness for the initial weights (PyTorch's default initialisation scheme, drawn from this
        generator instead of the global RNG).
    dtype, device : optional
        Where the parameters live.

    Examples
    --------
    >>> import torch
    >>> from physml.generative import TimeConditionedMLP
    >>> network = TimeConditionedMLP(2, hidden_sizes=(16, 16), generator=torch.Generator().manual_seed(0))
    >>> network(torch.tensor(0.5), torch.zeros(8, 2)).shape
    torch.Size([8, 2])
    """

    def __init__(
        self,
        dim: int,
        hidden_sizes=(64, 64, 64),
        activation: str = "silu",
        *,
        num_classes: int | None = None,
        embedding_dim: int = 16,
        generator=None,
        dtype=None,
        device=None,
    ):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(_ACTIVATIONS)}")
        hidden_sizes = tuple(int(width) for width in hidden_sizes)
        if not hidden_sizes or min(hidden_sizes) <= 0:
            raise ValueError(f"hidden_sizes must be non-empty positive widths, got {hidden_sizes!r}")
        self.dim = dim
        self.num_classes = num_classes
        factory = {"dtype": dtype, "device": device}
        self.embedding = None
        extra = 0
        if num_classes is not None:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
                raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
            self.embedding = nn.Embedding(num_classes + 1, embedding_dim, **factory)
            extra = embedding_dim
        widths = (dim + 1 + extra, *hidden_sizes)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(width_in, width_out, **factory), _ACTIVATIONS[activation]()]
        layers.append(nn.Linear(widths[-1], dim, **factory))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator=None) -> None:
        """Re-draw the weights from ``generator`` with PyTorch's default ``nn.Linear`` scheme."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, generator=generator)

    def forward(
        self, t: torch.Tensor, x: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        time_column = t.reshape(-1, 1).expand(x.shape[0], 1) if t.numel() == 1 else t.reshape(-1, 1)
        pieces = [x, time_column]
        if self.embedding is not None:
            if condition is None:
                condition = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            pieces.append(self.embedding(condition))
        elif condition is not None:
            raise ValueError("condition was given but the network was built without num_classes")
        return self.layers(torch.cat(pieces, dim=1))


def call_network(network, t: torch.Tensor, x: torch.Tensor, condition=None) -> torch.Tensor:
    """Evaluate ``network(t, x)`` or ``network(t, x, condition)`` (only when a condition is given)."""
    if condition is None:
        return network(t, x)
    return network(t, x, condition)


def guided_network_output(network, t, x, condition, *, null_label: int, guidance_scale: float):
    """Classifier-free guidance (Ho & Salimans 2022): ``(1 + w) out(c) - w out(∅)``.

    With ``w = 0`` this is the plain conditional output.  The conditional and unconditional inputs run
    as one batched call, so a guided evaluation costs one network call (the batch doubles).
    """
    if condition is None or guidance_scale == 0.0:
        return call_network(network, t, x, condition)
    batch = x.shape[0]
    null = torch.full_like(condition, null_label)
    times = t if t.numel() == 1 else torch.cat([t.reshape(-1), t.reshape(-1)])
    out = network(times, torch.cat([x, x]), torch.cat([condition, null]))
    conditional, unconditional = out[:batch], out[batch:]
    return torch.add(conditional, conditional - unconditional, alpha=guidance_scale)


def sinusoidal_time_embedding(t: torch.Tensor, size: int, batch: int) -> torch.Tensor:
    """Transformer-style features of ``t`` in [0, 1]: sines and cosines at geometric frequencies.

    ``t`` of shape ``()`` or ``(batch,)``; returns ``(batch, size)`` (``size`` even).
    """
    t = t.reshape(-1).expand(batch) if t.numel() == 1 else t.reshape(-1)
    half = size // 2
    # Frequencies from 1 to 1000 so both the coarse and fine structure of a schedule in t are visible.
    frequencies = torch.exp(
        torch.linspace(0.0, math.log(1000.0), half, dtype=t.dtype, device=t.device)
    )
    angles = t[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class _ConditionedResidualBlock(nn.Module):
    """Two circular 3 × 3 convolutions with GroupNorm and SiLU; the embedding shifts the first's output."""

    def __init__(self, channels_in: int, channels_out: int, embedding_size: int, factory: dict):
        super().__init__()
        groups = 8 if channels_out % 8 == 0 else 1
        self.norm_in = nn.GroupNorm(min(groups, channels_in) if channels_in % groups == 0 else 1, channels_in,
                                    **factory)
        self.conv_in = nn.Conv2d(channels_in, channels_out, 3, padding=1, padding_mode="circular", **factory)
        self.shift = nn.Linear(embedding_size, channels_out, **factory)
        self.norm_out = nn.GroupNorm(groups, channels_out, **factory)
        self.conv_out = nn.Conv2d(channels_out, channels_out, 3, padding=1, padding_mode="circular",
                                  **factory)
        self.skip = (nn.Identity() if channels_in == channels_out
                     else nn.Conv2d(channels_in, channels_out, 1, **factory))
        self.activation = nn.SiLU()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_in(self.activation(self.norm_in(x)))
        hidden = hidden + self.shift(embedding)[:, :, None, None]
        hidden = self.conv_out(self.activation(self.norm_out(hidden)))
        return hidden + self.skip(x)


class TimeConditionedConvNet(nn.Module):
    """A small two-level U-Net on periodic fields, conditioned on time (and a class label).

    Circular padding everywhere, so the network respects the periodic domain of the fields it models
    (Navier–Stokes vorticity on the torus, say); SiLU activations keep it smooth for likelihoods.

    Parameters
    ----------
    channels : int
        Channels of the field, shape ``(batch, channels, height, width)``; height and width even.
    width : int
        Channels of the first level (the second has ``2 * width``).
    num_classes : int, optional
        Class-conditional network; label ``num_classes`` is the null class of classifier-free guidance.
    embedding_size : int
        Size of the time (and class) embedding.
    generator, dtype, device : optional
        Initial weights drawn from ``generator``; where the parameters live.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.networks import TimeConditionedConvNet
    >>> network = TimeConditionedConvNet(1, width=8, generator=torch.Generator().manual_seed(0))
    >>> network(torch.tensor(0.3), torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(self, channels: int = 1, width: int = 32, *, num_classes: int | None = None,
                 embedding_size: int = 64, generator=None, dtype=None, device=None):
        super().__init__()
        for name, value in (("channels", channels), ("width", width), ("embedding_size", embedding_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes <= 0):
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        factory = {"dtype": dtype, "device": device}
        self.channels, self.num_classes, self.embedding_size = channels, num_classes, embedding_size
        self.time_mlp = nn.Sequential(nn.Linear(embedding_size, embedding_size, **factory), nn.SiLU(),
                                      nn.Linear(embedding_size, embedding_size, **factory))
        self.embedding = (None if num_classes is None
                          else nn.Embedding(num_classes + 1, embedding_size, **factory))
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1, padding_mode="circular", **factory)
        self.down = _ConditionedResidualBlock(width, width, embedding_size, factory)
        self.middle = _ConditionedResidualBlock(width, 2 * width, embedding_size, factory)
        # Skip connection by addition after a 1 x 1 projection: a concatenation would triple the channels
        # of the costliest (full-resolution) block.
        self.project = nn.Conv2d(2 * width, width, 1, **factory)
        self.up = _ConditionedResidualBlock(width, width, embedding_size, factory)
        self.conv_out = nn.Conv2d(width, channels, 3, padding=1, padding_mode="circular", **factory)
        self.activation = nn.SiLU()
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator=None) -> None:
        """Re-draw every weight from ``generator`` with PyTorch's default schemes."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                fan_in = module.weight[0].numel()
                nn.init.uniform_(module.bias, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in),
                                 generator=generator)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, generator=generator)

    def forward(self, t: torch.Tensor, x: torch.Tensor, condition=None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"x must have shape (batch, {self.channels}, even height, even width), "
                             f"got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        embedding = self.time_mlp(sinusoidal_time_embedding(t, self.embedding_size, x.shape[0]))
        if self.embedding is not None:
            if condition is None:
                condition = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            embedding = embedding + self.embedding(condition)
        elif condition is not None:
            raise ValueError("condition was given but the network was built without num_classes")
        embedding = self.activation(embedding)
        first = self.down(self.conv_in(x), embedding)
        coarse = self.middle(nn.functional.avg_pool2d(first, 2), embedding)
        upsampled = nn.functional.interpolate(coarse, scale_factor=2, mode="nearest")
        hidden = self.up(self.project(upsampled) + first, embedding)
        return self.conv_out(self.activation(hidden))
