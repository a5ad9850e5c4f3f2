"""The vector field as the integrators see it: counted, time-mapped and kept inside the interval.

Integrators always march in increasing internal time ``s``.  A decreasing output grid ``t`` is handled
by the map ``t = -s`` and ``dy/ds = -f(t, y)``, so one loop serves both directions.  Every stage time
is clamped to the integration interval before it reaches ``func``: the vector field is never evaluated
outside ``[min(t), max(t)]`` (torchdiffeq's adaptive solvers evaluate past the end, torchdiffeq #78).
"""

from __future__ import annotations

import torch

from ._validation import check_vector_field_output


class VectorField:
    """Wrap ``func(t, y)`` (or ``func(t, y, args)``) for the integrators.

    Parameters
    ----------
    func : callable
        The user's right-hand side.
    y0 : torch.Tensor
        Initial state; fixes the dtype and device of the times passed to ``func``.
    direction : {1.0, -1.0}
        Sign of ``t[-1] - t[0]``.
    start, end : float
        Internal times (``direction * t``) of the interval ends, ``start < end``.
    args : optional
        Extra argument handed to ``func`` as a third positional argument when not ``None``.
    """

    def __init__(self, func, y0: torch.Tensor, direction: float, start: float, end: float, args=None):
        self.func = func
        self.direction = direction
        self.start = start
        self.end = end
        self.args = args
        self.time_dtype = y0.real.dtype if y0.is_complex() else y0.dtype
        self.device = y0.device
        self.evaluations = 0

    def time_tensor(self, s: float) -> torch.Tensor:
        return torch.scalar_tensor(self.direction * s, dtype=self.time_dtype, device=self.device)

    def __call__(self, s: float, y: torch.Tensor) -> torch.Tensor:
        """Evaluate at one internal time shared by the whole batch."""
        s = min(max(s, self.start), self.end)
        self.evaluations += 1
        t = torch.scalar_tensor(self.direction * s, dtype=self.time_dtype, device=self.device)
        out = self.func(t, y) if self.args is None else self.func(t, y, self.args)
        if self.evaluations == 1:
            check_vector_field_output(out, y)
        return out if self.direction > 0 else -out

    def stage_times(self, internal_times: torch.Tensor) -> torch.Tensor:
        """Map clamped internal stage times (float64) to the times ``func`` receives."""
        times = internal_times if self.direction > 0 else -internal_times
        return times.to(self.time_dtype)

    def at_times(self, t: torch.Tensor, y: torch.Tensor, args=None) -> torch.Tensor:
        """Evaluate at times already mapped by :meth:`stage_times` (one per batch member)."""
        self.evaluations += 1
        out = self.func(t, y) if args is None else self.func(t, y, args)
        return out if self.direction > 0 else -out

    def per_sample(self, s: torch.Tensor, y: torch.Tensor, args=None) -> torch.Tensor:
        """Evaluate with one internal time per batch member (``s`` has shape ``(batch,)``, float64)."""
        s = s.clamp(self.start, self.end)
        self.evaluations += 1
        t = (s if self.direction > 0 else -s).to(self.time_dtype)
        out = self.func(t, y) if args is None else self.func(t, y, args)
        if self.evaluations == 1:
            check_vector_field_output(out, y)
        return out if self.direction > 0 else -out


def linear_combination(base: torch.Tensor, step: float, coefficients, stages) -> torch.Tensor:
    """Return ``base + step * Σ_i coefficients[i] * stages[i]``, skipping zero coefficients.

    One fused ``torch.add(..., alpha=...)`` per non-zero term keeps the per-step overhead (and the
    autograd graph) small for the small tensors of typical neural ODEs.
    """
    out = base
    for coefficient, stage in zip(coefficients, stages):
        if coefficient != 0.0:
            out = torch.add(out, stage, alpha=step * coefficient)
    return out


def weighted_sum(coefficients, stages) -> torch.Tensor | None:
    """Return ``Σ_i coefficients[i] * stages[i]`` over the non-zero coefficients (``None`` if all zero)."""
    out = None
    for coefficient, stage in zip(coefficients, stages):
        if coefficient == 0.0:
            continue
        out = stage * coefficient if out is None else torch.add(out, stage, alpha=coefficient)
    return out



def sum_of_terms(terms, stages) -> torch.Tensor:
    """``Σ c * stages[j]`` over precomputed non-zero ``(j, c)`` terms (see ``ButcherTableau.a_terms``)."""
    iterator = iter(terms)
    index, coefficient = next(iterator)
    out = stages[index] * coefficient
    for index, coefficient in iterator:
        out = torch.add(out, stages[index], alpha=coefficient)
    return out
