"""Result containers returned by the samplers and estimators."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SamplingResult:
    """Samples drawn by a generative model, with the cost of drawing them.

    Attributes
    ----------
    samples : torch.Tensor
        The generated samples, shape ``(n, *event_shape)``.
    nfe : int
        Number of evaluations of the learned network (score, noise, velocity or coupling network).
        One classifier-free-guided evaluation runs the conditional and unconditional inputs as one
        batched call and counts once.
    stats : dict
        Sampler-specific details: solver statistics (``n_steps``, ...), the step count, the status of an
        ODE solve, the time window used.
    """

    samples: torch.Tensor
    nfe: int
    stats: dict = field(default_factory=dict)


class CountingField:
    """Wrap a field ``(t, x) -> tensor``: count calls, check the first output's shape.

    The count is the NFE the samplers report; the shape check names the wrapped network so a wrong
    output shape fails with a clear message instead of a broadcasting error deep inside a solver.
    """

    def __init__(self, function, *, name: str = "network"):
        self.function = function
        self.name = name
        self.evaluations = 0

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from ._validation import check_network_output

        out = self.function(t, x)
        self.evaluations += 1
        if self.evaluations == 1:
            check_network_output(out, x, name=self.name)
        return out
