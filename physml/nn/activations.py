"""Activations used by the dynamics networks, chosen by name.

:class:`Swish` is the learnable-slope activation of LEADS and CoDA; the others are torch's own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "Swish", "make_activation"]


class Swish(nn.Module):
    """``x · sigmoid(softplus(β) x) / 1.1`` with a learnable slope β (initially 0.5), as in LEADS and CoDA.

    Softplus keeps the slope positive; the division by 1.1 is the reference implementation's scaling
    (it keeps the activation's gain close to one).

    Examples
    --------
    >>> import torch
    >>> activation = Swish()
    >>> round(activation(torch.tensor([0.0, 1.0]))[1].item(), 4)   # sigmoid(softplus(0.5)) / 1.1
    0.6599
    """

    def __init__(self, *, dtype=None, device=None):
        super().__init__()
        self.beta = nn.Parameter(torch.full((1,), 0.5, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish(x, self.beta)

    def plan_stacked(self, parameters):
        """One slope per member: ``parameters["beta"]`` has shape ``(members, 1)``."""
        beta = parameters["beta"]
        shaped: dict[int, torch.Tensor] = {}  # the slopes reshaped for each input rank met

        def activation(x: torch.Tensor) -> torch.Tensor:
            if x.ndim not in shaped:
                shaped[x.ndim] = beta.reshape(beta.shape[0], *([1] * (x.ndim - 1)))
            return swish(x, shaped[x.ndim])

        return activation


_SCALE = 1 / 1.1


class _SwishFunction(torch.autograd.Function):
    """Swish as one autograd node: the solver evaluates it thousands of times per backward pass, where
    five elementary nodes each cost more bookkeeping than the arithmetic itself."""

    @staticmethod
    def forward(ctx, x, beta):
        slope = F.softplus(beta)
        gate = torch.sigmoid(x * slope)
        ctx.save_for_backward(x, beta, slope, gate)
        return (x * gate).mul_(_SCALE)

    @staticmethod
    def backward(ctx, grad_output):
        x, beta, slope, gate = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: rebuild the intermediates with their history
            slope = F.softplus(beta)
            gate = torch.sigmoid(x * slope)
        scaled = grad_output * _SCALE
        # y = x·σ(z)/1.1 with z = x·softplus(β): dσ/dz = σ(1 - σ), d softplus(β)/dβ = sigmoid(β).
        inner = scaled * x * torch.addcmul(gate, gate, gate, value=-1)
        grad_x = torch.addcmul(scaled * gate, inner, slope)
        grad_beta = (inner * x).sum_to_size(beta.shape) * torch.sigmoid(beta)
        return grad_x, grad_beta


def swish(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Functional :class:`Swish`; ``beta`` broadcasts against ``x``."""
    if torch._C._are_functorch_transforms_active():
        # Under vmap/grad, the composite form, which those transforms support natively (the fused
        # function would need setup_context, whose argument binding costs more than it saves).
        return x * torch.sigmoid(x * F.softplus(beta)) * _SCALE
    return _SwishFunction.apply(x, beta)


#: Activation names understood by :func:`make_activation`.
ACTIVATIONS = {
    "swish": Swish,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def make_activation(name: str, *, dtype=None, device=None) -> nn.Module:
    """A fresh activation module from its name (one of :data:`ACTIVATIONS`).

    Examples
    --------
    >>> make_activation("relu")
    ReLU()
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    if name == "swish":
        return Swish(dtype=dtype, device=device)
    return ACTIVATIONS[name]()
