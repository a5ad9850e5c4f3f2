"""Explicit Runge–Kutta integration of a whole batch with one step size (fixed or adaptive).

Times are Python floats (float64) in the increasing internal time of :class:`VectorField`; only the
states are tensors.  Keeping the step-size bookkeeping out of torch is what makes the per-step
overhead small next to torchdiffeq, which does it in 0-dim tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._tableaux import ButcherTableau
from ._vector_field import VectorField, linear_combination, sum_of_terms, weighted_sum


@dataclass
class StepSizeController:
    """Integral step-size controller with the options torchdiffeq users know.

    The new step is ``h * clip(safety * error_ratio ** (-1 / (error_order + 1)), dfactor, ifactor)``;
    after a rejected step the factor is capped at 1.
    """

    rtol: float
    atol: float
    safety: float = 0.9
    ifactor: float = 10.0
    dfactor: float = 0.2
    max_step: float = math.inf
    norm: object = None

    def factor(self, error_ratio: float, exponent: float, accepted: bool) -> float:
        if error_ratio == 0.0:
            proposal = self.ifactor
        elif not math.isfinite(error_ratio):
            proposal = self.dfactor
        else:
            proposal = self.safety * error_ratio ** (-exponent)
        proposal = min(self.ifactor, max(self.dfactor, proposal))
        return proposal if accepted else min(1.0, proposal)


@dataclass
class IntegrationResult:
    outputs: list  # one tensor per requested time, None where the solve stopped before it
    n_steps: int
    n_accepted: int
    n_rejected: int
    status: str  # "success", "max_steps_reached" or "step_size_underflow"


def landing_slack(target: float) -> float:
    """Distance below which a step is stretched to land exactly on ``target`` (a few ulps)."""
    return 64 * 2.220446049250313e-16 * max(1.0, abs(target))


def rms_norm(tensor: torch.Tensor) -> torch.Tensor:
    """Root-mean-square norm, the default error norm (as in torchdiffeq and SciPy)."""
    return torch.linalg.vector_norm(tensor) / math.sqrt(tensor.numel())


class ErrorEstimator:
    """Scaled norm of a step's embedded error estimate; ≤ 1 accepts the step.

    Built once per solve: the error weights become one tensor so that the estimate is a single
    matrix-vector product over the stacked stages (fewer kernel launches than one add per stage,
    which matters for the small states of neural ODEs).  Runs without recording gradients: step-size
    decisions are not differentiated.
    """

    def __init__(self, tableau: ButcherTableau, controller: StepSizeController, like: torch.Tensor):
        self.controller = controller
        self.norm = controller.norm
        self.terms = [(i, e) for i, e in enumerate(tableau.b_error) if e != 0.0]
        self.indices = [i for i, _ in self.terms]
        self.weights = torch.tensor([e for _, e in self.terms], dtype=like.dtype, device=like.device)
        self.secondary = None
        if tableau.b_error_secondary is not None:
            self.secondary = torch.tensor(tableau.b_error_secondary, dtype=like.dtype, device=like.device)
        self.inverse_sqrt_size = 1.0 / math.sqrt(like.numel())
        # Stacking copies the stages: it beats one add per stage on small states (fewer launches) but is
        # about twice slower on large fields, where the adds are memory-bound anyway (measured).
        self.use_matvec = like.numel() <= 16384

    def __call__(self, step: float, stages, y_abs: torch.Tensor, y_new: torch.Tensor):
        """Return ``(error_ratio, |y_new|)``; ``y_abs`` is ``|y|`` from the previous call."""
        with torch.no_grad():
            y_new_abs = y_new.abs()
            scale = torch.maximum(y_abs, y_new_abs).mul_(self.controller.rtol).add_(self.controller.atol)
            if self.use_matvec:
                stacked = torch.stack([stages[i] for i in self.indices]).reshape(len(self.indices), -1)
                error = torch.mv(stacked.T, self.weights).view(y_new.shape).div_(scale)
            else:
                error = sum_of_terms(self.terms, stages).div_(scale)
            if self.secondary is not None:
                return self._dop853(step, stages, error, scale), y_new_abs
            if self.norm is not None:
                return float(self.norm(error.mul_(abs(step)))), y_new_abs
            return abs(step) * float(torch.linalg.vector_norm(error)) * self.inverse_sqrt_size, y_new_abs

    def _dop853(self, step, stages, error, scale) -> float:
        # DOP853's estimate |err5|² / sqrt(|err5|² + 0.01 |err3|²), scaled to an RMS-like value.
        stacked = torch.stack(stages[: len(self.secondary)]).reshape(len(self.secondary), -1)
        secondary = torch.mv(stacked.T, self.secondary).view(error.shape).div_(scale)
        err5 = (abs(step) * float(torch.linalg.vector_norm(error))) ** 2
        err3 = (abs(step) * float(torch.linalg.vector_norm(secondary))) ** 2
        if err5 == 0.0 and err3 == 0.0:
            return 0.0
        return err5 / math.sqrt((err5 + 0.01 * err3) * error.numel())


def runge_kutta_stages(field: VectorField, tableau: ButcherTableau, s: float, y, step: float, f0, s_limit):
    """Evaluate the stages of one explicit step; returns (stages, y_new)."""
    stages = [f0]
    stage_state = y
    add = torch.add
    for c_i, terms in zip(tableau.c[1:], tableau.a_terms[1:]):
        stage_state = y
        for index, coefficient in terms:
            stage_state = add(stage_state, stages[index], alpha=step * coefficient)
        stages.append(field(min(s + c_i * step, s_limit), stage_state))
    if tableau.fsal:
        # The last stage is evaluated at (s + h, y_new): its input is the new state.
        return stages, stage_state
    return stages, linear_combination(y, step, tableau.b, stages)


def dense_weights(tableau: ButcherTableau, theta: float) -> list[float]:
    powers = [theta ** (j + 1) for j in range(len(tableau.dense[0]))]
    return [sum(p * coefficient for p, coefficient in zip(powers, row)) for row in tableau.dense]


class StepInterpolant:
    """Dense output over one accepted step, built lazily (DOP853 needs three extra evaluations)."""

    def __init__(self, field, tableau, s, step, y, y_new, stages):
        self.field, self.tableau = field, tableau
        self.s, self.step, self.y, self.y_new, self.stages = s, step, y, y_new, stages
        self._dop853_terms = None

    def __call__(self, s_out: float) -> torch.Tensor:
        theta = (s_out - self.s) / self.step
        if theta >= 1.0:
            return self.y_new
        if self.tableau.dense is not None:
            return linear_combination(self.y, self.step, dense_weights(self.tableau, theta), self.stages)
        if self.tableau.dense_extra_stages:
            return self._dop853(theta)
        # Hermite cubic through the step's end points (needs f at the end: FSAL methods have it).
        raise RuntimeError(f"method {self.tableau.name} has no dense output")

    def _dop853(self, theta: float) -> torch.Tensor:
        if self._dop853_terms is None:
            stages = list(self.stages)
            for c_i, a_i in self.tableau.dense_extra_stages:
                state = linear_combination(self.y, self.step, a_i, stages)
                stages.append(self.field(min(self.s + c_i * self.step, self.field.end), state))
            delta = self.y_new - self.y
            f_old, f_new = stages[0], stages[12]
            terms = [
                delta,
                self.step * f_old - delta,
                2.0 * delta - self.step * (f_new + f_old),
            ]
            for row in self.tableau.dense_extra_weights:
                terms.append(weighted_sum(row, stages) * self.step)
            self._dop853_terms = terms
        value = None
        for index, term in enumerate(reversed(self._dop853_terms)):
            value = term if value is None else value + term
            value = value * (theta if index % 2 == 0 else 1.0 - theta)
        return self.y + value


def integrate_fixed(field: VectorField, y0, times: list[float], tableau: ButcherTableau, step_size):
    """Fixed-step integration hitting every output time exactly.

    Each output interval is split into ``ceil(|Δt| / step_size)`` equal steps (one step when
    ``step_size`` is None), so no interpolation error enters the outputs.
    """
    outputs = [y0]
    y = y0
    n_steps = 0
    f0 = None
    for start, end in zip(times[:-1], times[1:]):
        n = 1 if step_size is None else max(1, math.ceil((end - start) / step_size - 1e-9))
        step = (end - start) / n
        for index in range(n):
            s = start + index * step
            step_here = end - s if index == n - 1 else step
            if f0 is None:
                f0 = field(s, y)
            stages, y = runge_kutta_stages(field, tableau, s, y, step_here, f0, end)
            f0 = stages[-1] if tableau.fsal else None
            n_steps += 1
        outputs.append(y)
    return IntegrationResult(outputs, n_steps, n_steps, 0, "success")


def initial_step_size(field, y0, f0, s0, s_end, order, controller, norm=None) -> float:
    """Hairer–Nørsett–Wanner's starting step (Solving ODEs I, II.4); its probe stays in the interval."""
    norm = norm or rms_norm
    with torch.no_grad():
        scale = y0.abs() * controller.rtol + controller.atol
        d0 = float(norm(y0 / scale))
        d1 = float(norm(f0 / scale))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, s_end - s0, controller.max_step)
        f1 = field(s0 + h0, y0 + h0 * f0)
        d2 = float(norm((f1 - f0) / scale)) / h0
        if max(d1, d2) <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1, s_end - s0, controller.max_step)


def integrate_adaptive(
    field: VectorField,
    y0,
    times: list[float],
    tableau: ButcherTableau,
    controller: StepSizeController,
    *,
    first_step: float | None,
    max_steps: int,
    step_points: list[float] = (),
    jump_points: list[float] = (),
) -> IntegrationResult:
    """Adaptive explicit integration of a batch with one shared step size and dense output.

    ``step_points`` are times the solver must step to (kinks in the vector field); at ``jump_points``
    it also discards the FSAL derivative and re-evaluates (discontinuities).
    """
    s_end = times[-1]
    breakpoints = sorted({p for p in (*step_points, *jump_points) if times[0] < p < s_end})
    jumps = set(jump_points)
    exponent = 1.0 / (tableau.error_order + 1)

    y = y0
    s = times[0]
    f0 = field(s, y)
    estimate_error = ErrorEstimator(tableau, controller, y0)
    with torch.no_grad():
        y_abs = y0.abs()
    step = first_step if first_step is not None else initial_step_size(
        field, y, f0, s, s_end, tableau.order, controller
    )
    outputs = [y0]
    next_output = 1
    n_accepted = n_rejected = 0
    breakpoint_index = 0
    status = "success"

    while next_output < len(times):
        if n_accepted + n_rejected >= max_steps:
            status = "max_steps_reached"
            break
        while breakpoint_index < len(breakpoints) and breakpoints[breakpoint_index] <= s:
            breakpoint_index += 1
        target = breakpoints[breakpoint_index] if breakpoint_index < len(breakpoints) else s_end
        step = min(step, controller.max_step)
        # Land on the target when the remainder would be a roundoff-sized sliver.
        lands_on_target = step >= target - s - landing_slack(target)
        if lands_on_target:
            step = target - s
        stages, y_new = runge_kutta_stages(field, tableau, s, y, step, f0, target)
        ratio, y_new_abs = estimate_error(step, stages, y_abs, y_new)
        accepted = ratio <= 1.0
        if accepted:
            n_accepted += 1
            s_new = target if lands_on_target else s + step
            if next_output < len(times) and times[next_output] <= s_new:
                interpolant = StepInterpolant(field, tableau, s, step, y, y_new, stages)
                while next_output < len(times) and times[next_output] <= s_new:
                    outputs.append(interpolant(times[next_output]))
                    next_output += 1
            s, y, y_abs = s_new, y_new, y_new_abs
            if lands_on_target and target in jumps:
                f0 = field(s, y)
            else:
                f0 = stages[-1] if tableau.fsal else field(s, y)
        else:
            n_rejected += 1
        step = step * controller.factor(ratio, exponent, accepted)
        if step <= 0 or step < 1e-14 * max(1.0, abs(s)):
            # Underflow: the step cannot shrink further; report as a failed solve, not an exception.
            status = "step_size_underflow"
            break
    outputs.extend([None] * (len(times) - len(outputs)))
    return IntegrationResult(outputs, n_accepted + n_rejected, n_accepted, n_rejected, status)
