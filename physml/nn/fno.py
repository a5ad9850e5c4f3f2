"""A 2-D Fourier neural operator (Li et al. 2021) as a vector field on periodic fields.

The layout follows the version LEADS and CoDA use on Navier–Stokes: the field is lifted with its grid
coordinates to ``width`` channels, passes ``n_layers`` Fourier layers (a truncated spectral convolution
plus a pointwise linear map, an activation after all but the last) and a two-layer pointwise head.
Inside the network the channels are the last dimension, so every pointwise map is an ``nn.Linear``.

Complex spectral weights are stored as real tensors with a trailing dimension of 2 (real, imaginary):
optimisers, gradient all-reduce and checkpoints then only ever see real tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .activations import make_activation
from .initialization import initialize_
from .mlp import check_positive_int, uninitialized
from .stacked import child_parameters, stacked_plan

__all__ = ["FNO2d", "SpectralConv2d"]


def _modes(modes) -> tuple[int, int]:
    pair = (modes, modes) if isinstance(modes, int) else tuple(modes)
    if len(pair) != 2 or any(isinstance(m, bool) or not isinstance(m, int) or m <= 0 for m in pair):
        raise ValueError(f"modes must be a positive integer or a pair of them, got {modes!r}")
    return pair


def _complex(pairs: torch.Tensor) -> torch.Tensor:
    # Stacked weights may be strided slices (CoDA's per-environment parameters): view needs contiguity.
    return torch.view_as_complex(pairs.contiguous())


class SpectralConv2d(nn.Module):
    """Multiply the lowest Fourier modes of a channel-last field by learned complex matrices.

    Input and output have shape ``(..., ny, nx, channels)``.  Along ``ny`` both the ``modes[0]`` lowest
    positive and negative frequencies are kept; along ``nx`` (the real-FFT axis) the ``modes[1]`` lowest.

    Parameters
    ----------
    in_channels, out_channels : int
    modes : int or (int, int)
        Retained modes along y and x.
    generator, dtype, device : optional
        Weights start uniform on ``[0, 1/sqrt(in_channels))`` for both real and imaginary parts (the
        scaling of the LEADS and CoDA implementations).

    Examples
    --------
    >>> import torch
    >>> layer = SpectralConv2d(3, 4, modes=4, generator=torch.Generator().manual_seed(0))
    >>> layer(torch.randn(2, 16, 16, 3)).shape
    torch.Size([2, 16, 16, 4])
    """

    resets_with_generator = True

    def __init__(self, in_channels: int, out_channels: int, modes=(6, 6), *,
                 generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.modes = _modes(modes)
        shape = (in_channels, out_channels, *self.modes, 2)
        self.weight_positive = nn.Parameter(torch.empty(shape, dtype=dtype, device=device))
        self.weight_negative = nn.Parameter(torch.empty(shape, dtype=dtype, device=device))
        self.reset_parameters(generator=generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        bound = 1.0 / math.sqrt(self.in_channels)
        for weight in (self.weight_positive, self.weight_negative):
            nn.init.uniform_(weight, 0.0, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x, _complex(self.weight_positive), _complex(self.weight_negative), "...")

    def plan_stacked(self, parameters):
        """One weight set per member: weights ``(members, in, out, my, mx, 2)``, input ``(members, ...)``."""
        weights = (_complex(parameters["weight_positive"]), _complex(parameters["weight_negative"]))
        return lambda x: self._convolve(x, *weights, "m...")

    def penalty_matrices(self, parameters) -> dict[str, torch.Tensor]:
        """Real parts of the weights as ``(..., out, in · my · mx)`` matrices (the LEADS convention)."""
        matrices = {}
        for name in ("weight_positive", "weight_negative"):
            real = parameters[name][..., 0].movedim(-3, -4)
            matrices[name] = real.reshape(*real.shape[:-4], self.out_channels, -1)
        return matrices

    def _convolve(self, x, weight_positive, weight_negative, lead: str) -> torch.Tensor:
        ny, nx = x.shape[-3], x.shape[-2]
        modes_y, modes_x = self.modes
        if 2 * modes_y > ny or modes_x > nx // 2 + 1:
            raise ValueError(
                f"modes {self.modes} do not fit a {ny}x{nx} grid: need 2 * modes[0] <= ny and "
                f"modes[1] <= nx // 2 + 1"
            )
        spectrum = torch.fft.rfft2(x, dim=(-3, -2))
        # Members (if any) lead both the input and the weights: "m...xyi,mioxy->m...xyo".
        weight_lead = lead.replace("...", "")
        equation = f"{lead}xyi,{weight_lead}ioxy->{lead}xyo"
        result = torch.zeros(*spectrum.shape[:-1], self.out_channels, dtype=spectrum.dtype, device=x.device)
        low, high = slice(None, modes_y), slice(ny - modes_y, None)
        for rows, weight in ((low, weight_positive), (high, weight_negative)):
            result[..., rows, :modes_x, :] = torch.einsum(equation, spectrum[..., rows, :modes_x, :], weight)
        return torch.fft.irfft2(result, s=(ny, nx), dim=(-3, -2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"


class FNO2d(nn.Module):
    """Fourier neural operator on ``(batch, channels, ny, nx)`` fields.

    Parameters
    ----------
    in_channels, out_channels : int
        Fields in and out (Navier–Stokes vorticity: 1 and 1).
    modes : int or (int, int)
        Retained Fourier modes per axis (LEADS: 6; CoDA: 12).
    width : int
        Channels of the Fourier layers (LEADS and CoDA: 10).
    n_layers : int
        Fourier layers (4).
    head_width : int
        Hidden width of the pointwise output head (128).
    activation : str
        One of :data:`physml.nn.activations.ACTIVATIONS` (``"swish"``).
    append_coordinates : bool
        Append the grid coordinates (``linspace(0, 1)`` along y and x) to the input channels.
    output_scale : float
        Multiplies the output.
    initialization, gain, generator, dtype, device
        As for :class:`physml.nn.mlp.MLP`; the spectral weights follow
        :class:`SpectralConv2d`.

    Examples
    --------
    >>> import torch
    >>> network = FNO2d(1, 1, modes=4, width=6, generator=torch.Generator().manual_seed(0))
    >>> network(torch.randn(3, 1, 16, 16)).shape
    torch.Size([3, 1, 16, 16])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, modes=(6, 6), width: int = 10,
                 n_layers: int = 4, head_width: int = 128, activation: str = "swish", *,
                 append_coordinates: bool = True, output_scale: float = 1.0, initialization: str = "default",
                 gain: float = 1.0, generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("n_layers", n_layers), ("head_width", head_width)):
            check_positive_int(value, name)
        factory = {"dtype": dtype, "device": device}
        self.append_coordinates = bool(append_coordinates)
        lifted_channels = in_channels + (2 if self.append_coordinates else 0)
        self.lift = uninitialized(nn.Linear, lifted_channels, width, **factory)
        self.spectral = nn.ModuleList(
            [SpectralConv2d(width, width, modes, generator=generator, **factory) for _ in range(n_layers)])
        self.pointwise = nn.ModuleList(
            [uninitialized(nn.Linear, width, width, **factory) for _ in range(n_layers)])
        self.activations = nn.ModuleList(
            [make_activation(activation, **factory) for _ in range(n_layers - 1)])
        self.head = uninitialized(nn.Linear, width, head_width, **factory)
        self.head_activation = make_activation(activation, **factory)
        self.projection = uninitialized(nn.Linear, head_width, out_channels, **factory)
        self.output_scale = float(output_scale)
        initialize_(self, initialization, gain=gain, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._evaluate(x, lambda name, layer, h: layer(h))

    def plan_stacked(self, parameters):
        """Batched evaluation of stacked copies, inputs ``(members, batch, channels, ny, nx)``."""
        plans = {name: stacked_plan(layer, child_parameters(parameters, name))
                 for name, layer in self.named_modules() if name and not isinstance(layer, nn.ModuleList)}
        return lambda x: self._evaluate(x, lambda name, layer, h: plans[name](h))

    def extra_repr(self) -> str:
        settings = [f"append_coordinates={self.append_coordinates}"]
        if self.output_scale != 1.0:
            settings.append(f"output_scale={self.output_scale:g}")
        return ", ".join(settings)

    def _evaluate(self, x: torch.Tensor, apply: Callable) -> torch.Tensor:
        h = x.movedim(-3, -1)
        if self.append_coordinates:
            ny, nx = h.shape[-3], h.shape[-2]
            y = torch.linspace(0.0, 1.0, ny, dtype=h.dtype, device=h.device).view(ny, 1, 1).expand(ny, nx, 1)
            x_coordinate = torch.linspace(0.0, 1.0, nx, dtype=h.dtype, device=h.device).view(1, nx, 1)
            grid = torch.cat([y, x_coordinate.expand(ny, nx, 1)], dim=-1)
            h = torch.cat([h, grid.expand(*h.shape[:-1], 2)], dim=-1)
        h = apply("lift", self.lift, h)
        for index, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = apply(f"spectral.{index}", spectral, h) + apply(f"pointwise.{index}", pointwise, h)
            if index < len(self.activations):
                h = apply(f"activations.{index}", self.activations[index], h)
        h = apply("head_activation", self.head_activation, apply("head", self.head, h))
        h = apply("projection", self.projection, h)
        h = h.movedim(-1, -3)
        return h if self.output_scale == 1.0 else h * self.output_scale
