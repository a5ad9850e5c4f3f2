"""Weight initialisation from an explicit ``torch.Generator`` (no global random state).

The three papers use different schemes: PyTorch's default (CoDA), orthogonal with a small gain (APHYNITY's
augmentation network) and a normal law with a small standard deviation (LEADS).  :func:`initialize_`
applies one of them to every linear and convolutional layer of a module; layers with their own scheme
(the Fourier layers of :class:`physml.nn.fno.SpectralConv2d`) provide ``reset_parameters(generator)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["INITIALIZATIONS", "initialize_"]

#: Schemes understood by :func:`initialize_`.
INITIALIZATIONS = ("default", "orthogonal", "normal", "xavier_normal")

_WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def initialize_(module: nn.Module, scheme: str = "default", *, gain: float = 1.0,
                generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialise the linear and convolutional layers of ``module`` in place and return it.

    Parameters
    ----------
    module : nn.Module
        Every ``nn.Linear`` / ``nn.ConvNd`` inside is re-initialised; physml layers with their own scheme
        (``resets_with_generator = True`` and ``reset_parameters(generator)``) are reset from the same
        generator.
    scheme : {"default", "orthogonal", "normal", "xavier_normal"}
        ``"default"`` reproduces PyTorch's own (Kaiming-uniform weights, uniform biases);
        ``"orthogonal"`` and ``"xavier_normal"`` scale by ``gain``; ``"normal"`` draws the weights from
        N(0, gain²).  The non-default schemes set biases to zero, as the reference implementations do.
    gain : float
        Gain (orthogonal, xavier) or standard deviation (normal).
    generator : torch.Generator, optional
        Source of randomness; the global generator when omitted.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(3, 3)
    >>> _ = initialize_(layer, "orthogonal", gain=0.2, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(layer.weight @ layer.weight.T, 0.04 * torch.eye(3), atol=1e-6)
    True
    """
    if scheme not in INITIALIZATIONS:
        raise ValueError(f"scheme must be one of {INITIALIZATIONS}, got {scheme!r}")
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be a positive number, got {gain!r}")
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED_LAYERS):
            _initialize_layer(layer, scheme, gain, generator)
        elif getattr(layer, "resets_with_generator", False):
            # physml layers with their own scheme; torch layers such as BatchNorm reset deterministically.
            layer.reset_parameters(generator=generator)
    return module


@torch.no_grad()
def _initialize_layer(layer: nn.Module, scheme: str, gain: float, generator) -> None:
    weight, bias = layer.weight, layer.bias
    if scheme == "default":
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        if bias is not None:
            fan_in = weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(bias, -bound, bound, generator=generator)
        return
    if scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=gain, generator=generator)
    elif scheme == "normal":
        nn.init.normal_(weight, 0.0, gain, generator=generator)
    else:
        nn.init.xavier_normal_(weight, gain=gain, generator=generator)
    if bias is not None:
        nn.init.zeros_(bias)
