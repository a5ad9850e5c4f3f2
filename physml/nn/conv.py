"""Convolutional vector fields for 2-D fields of shape ``(batch, channels, ny, nx)``."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from .activations import make_activation
from .initialization import initialize_
from .mlp import ScaledSequential, check_positive_int, uninitialized

__all__ = ["PADDING_MODES", "ConvNet2d"]

#: Boundary treatments of the convolutions ("circular" for periodic domains).
PADDING_MODES = ("circular", "zeros", "reflect", "replicate")


class ConvNet2d(ScaledSequential):
    """A stack of same-size 2-D convolutions with activations (and optional batch norm) between them.

    Parameters
    ----------
    in_channels, out_channels : int
        Fields in and out (2 for the reaction–diffusion and wave states).
    hidden_channels : int
        Channels of the hidden layers (APHYNITY: 16; LEADS and CoDA: 64).
    n_layers : int
        Number of convolutions, at least 2 (APHYNITY: 3; LEADS and CoDA Gray–Scott: 4).
    kernel_size : int
        Odd kernel size; the padding keeps the grid size.
    activation : str
        One of :data:`physml.nn.activations.ACTIVATIONS`.
    padding_mode : str
        One of :data:`PADDING_MODES`: ``"circular"`` for periodic domains (LEADS, CoDA), ``"zeros"`` as
        in APHYNITY.
    batch_norm : bool
        Batch normalisation after each hidden convolution, with batch statistics only
        (``track_running_stats=False``, as APHYNITY), so training and evaluation behave the same.
    output_scale : float
        Multiplies the output (LEADS Gray–Scott 1e-3, CoDA 5e-4).
    initialization, gain, generator, dtype, device
        As for :class:`physml.nn.mlp.MLP`.

    Examples
    --------
    >>> import torch
    >>> network = ConvNet2d(2, 2, hidden_channels=8, n_layers=3, generator=torch.Generator().manual_seed(0))
    >>> network(torch.zeros(4, 2, 16, 16)).shape
    torch.Size([4, 2, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, n_layers: int = 4,
                 kernel_size: int = 3, activation: str = "swish", *, padding_mode: str = "circular",
                 batch_norm: bool = False, output_scale: float = 1.0, initialization: str = "default",
                 gain: float = 1.0, generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden_channels", hidden_channels), ("kernel_size", kernel_size)):
            check_positive_int(value, name)
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 2:
            raise ValueError(f"n_layers must be an integer >= 2, got {n_layers!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so the grid size is kept, got {kernel_size!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        widths = (in_channels, *([hidden_channels] * (n_layers - 1)), out_channels)
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(pairwise(widths)):
            layers.append(uninitialized(nn.Conv2d, width_in, width_out, kernel_size, padding=kernel_size // 2,
                                    padding_mode=padding_mode, dtype=dtype, device=device))
            if index < n_layers - 1:
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width_out, track_running_stats=False, dtype=dtype,
                                                 device=device))
                layers.append(make_activation(activation, dtype=dtype, device=device))
        self.layers = nn.Sequential(*layers)
        self.output_scale = float(output_scale)
        initialize_(self, initialization, gain=gain, generator=generator)
