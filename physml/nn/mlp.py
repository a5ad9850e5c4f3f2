"""Multilayer perceptron vector fields for ODE states of shape ``(..., features)``."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils import skip_init

from .activations import make_activation
from .initialization import initialize_
from .stacked import child_parameters, stacked_plan

__all__ = ["MLP"]


def uninitialized(layer_class, *args, device=None, **kwargs) -> nn.Module:
    """A layer built without drawing initial values from the global random generator.

    :func:`physml.nn.initialization.initialize_` then sets the values from an explicit generator.
    """
    device = device if device is not None else torch.get_default_device()
    return skip_init(layer_class, *args, device=device, **kwargs)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class ScaledSequential(nn.Module):
    """``output_scale * layers(x)``, evaluated alone or as stacked copies (the shared tail of the networks).

    Subclasses build ``self.layers`` (an ``nn.Sequential``) and set ``self.output_scale``.
    """

    layers: nn.Sequential
    output_scale: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.layers(x)
        return output if self.output_scale == 1.0 else output * self.output_scale

    def plan_stacked(self, parameters):
        """Batched evaluation of stacked copies (see :func:`physml.nn.stacked.stacked_plan`)."""
        plan = stacked_plan(self.layers, child_parameters(parameters, "layers"))
        scale = self.output_scale
        return plan if scale == 1.0 else (lambda x: plan(x) * scale)

    def extra_repr(self) -> str:
        return f"output_scale={self.output_scale:g}" if self.output_scale != 1.0 else ""


class MLP(ScaledSequential):
    """Fully connected network acting on the last dimension, with an optional output scale.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes (the state size for a vector field).
    hidden_sizes : sequence of int
        Widths of the hidden layers (LEADS and CoDA: ``(64, 64, 64)``; APHYNITY's pendulum: ``(200, 200)``).
    activation : str
        One of :data:`physml.nn.activations.ACTIVATIONS` (LEADS and CoDA: ``"swish"``; APHYNITY:
        ``"relu"``).
    output_scale : float
        Multiplies the output (LEADS uses 1e-3 on Gray–Scott so that one big solver step stays small).
    bias : bool
        Whether the linear layers have biases.
    initialization, gain : str, float
        Passed to :func:`physml.nn.initialization.initialize_` (APHYNITY: ``"orthogonal"``, 0.2; LEADS:
        ``"normal"``, 0.05; CoDA: ``"default"``).
    generator : torch.Generator, optional
        Randomness of the initial weights.
    dtype, device : optional
        Where the parameters live.

    Examples
    --------
    >>> import torch
    >>> network = MLP(2, 2, (16, 16), activation="relu", generator=torch.Generator().manual_seed(0))
    >>> network(torch.zeros(5, 2)).shape
    torch.Size([5, 2])
    """

    def __init__(self, in_features: int, out_features: int, hidden_sizes: Sequence[int] = (64, 64, 64),
                 activation: str = "swish", *, output_scale: float = 1.0, bias: bool = True,
                 initialization: str = "default", gain: float = 1.0, generator: torch.Generator | None = None,
                 dtype=None, device=None):
        super().__init__()
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features")
        hidden_sizes = tuple(hidden_sizes)
        for width in hidden_sizes:
            check_positive_int(width, "each of hidden_sizes")
        sizes = (in_features, *hidden_sizes, out_features)
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(pairwise(sizes)):
            layers.append(uninitialized(nn.Linear, width_in, width_out, bias=bias, dtype=dtype,
                                        device=device))
            if index < len(sizes) - 2:
                layers.append(make_activation(activation, dtype=dtype, device=device))
        self.layers = nn.Sequential(*layers)
        self.output_scale = float(output_scale)
        self.in_features, self.out_features = in_features, out_features
        initialize_(self, initialization, gain=gain, generator=generator)
