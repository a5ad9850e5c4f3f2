"""Per-sample adaptive integration: every batch member has its own step size and accept/reject.

Members that reach the end of the interval are compacted out of the batch (rows removed), rather
than masked as torchode and ``jax.vmap``-ed diffrax do, so the cost of a loop iteration follows the
number of members still integrating.  The first dimension of the state is the batch; ``func``
receives one time per remaining member, ``t`` of shape ``(batch,)``, and per-sample ``args`` (if
given) are compacted together with the state.
"""

from __future__ import annotations

import contextlib
import math

import torch

from ._explicit import IntegrationResult, landing_slack, StepSizeController
from ._tableaux import ButcherTableau
from ._vector_field import VectorField, sum_of_terms, weighted_sum


def select_rows(args, rows: torch.Tensor):
    """Index the leading (batch) dimension of a tensor or a tuple/list/dict of tensors."""
    if args is None:
        return None
    if isinstance(args, torch.Tensor):
        return args.index_select(0, rows)
    if isinstance(args, (tuple, list)):
        return type(args)(select_rows(item, rows) for item in args)
    if isinstance(args, dict):
        return {key: select_rows(value, rows) for key, value in args.items()}
    return args


def _rms_per_sample(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.abs().square().flatten(1).mean(1).sqrt()


class _PerSampleDense:
    """Evaluate the dense output of the current step for a subset of rows at per-row θ."""

    def __init__(self, tableau: ButcherTableau, dtype, device):
        self.tableau = tableau
        if tableau.dense is not None:
            self.matrix = torch.tensor(tableau.dense, dtype=dtype, device=device)  # (stages, degree)
            self.exponents = torch.arange(1, self.matrix.shape[1] + 1, dtype=dtype, device=device)

    def __call__(self, field, rows, theta, s, step, y, y_new, stages, args):
        view = (-1,) + (1,) * (y.ndim - 1)
        y_rows = y.index_select(0, rows)
        step_rows = step.index_select(0, rows)
        h = step_rows.to(y.dtype).view(view)
        theta = theta.to(y.dtype)
        if self.tableau.dense is not None:
            # One stacked gather and one contraction instead of an operation per stage.
            weights = theta.unsqueeze(1).pow(self.exponents) @ self.matrix.T  # (rows, stages)
            stage_rows = torch.stack(stages, dim=1).index_select(0, rows)  # (rows, stages, ...)
            total = torch.einsum("rs,rs...->r...", weights, stage_rows)
            return torch.addcmul(y_rows, h, total)
        stage_rows = [stage.index_select(0, rows) for stage in stages]
        return self._dop853(field, rows, theta, s, step_rows, h, y_rows, y_new.index_select(0, rows),
                            stage_rows, select_rows(args, rows), view)

    def _dop853(self, field, rows, theta, s, step_rows, h, y_rows, y_new_rows, stage_rows, args, view):
        s_rows = s.index_select(0, rows)
        stages = list(stage_rows)
        for c_i, a_i in self.tableau.dense_extra_stages:
            state = y_rows + h * weighted_sum(a_i, stages)
            stages.append(field.per_sample(s_rows + c_i * step_rows, state, args))
        delta = y_new_rows - y_rows
        f_old, f_new = stages[0], stages[12]
        terms = [delta, h * f_old - delta, 2.0 * delta - h * (f_new + f_old)]
        terms += [h * weighted_sum(row, stages) for row in self.tableau.dense_extra_weights]
        theta = theta.view(view)
        value = None
        for index, term in enumerate(reversed(terms)):
            value = term if value is None else value + term
            value = value * (theta if index % 2 == 0 else 1.0 - theta)
        return y_rows + value


def integrate_per_sample(
    field: VectorField,
    y0: torch.Tensor,
    times: list[float],
    tableau: ButcherTableau,
    controller: StepSizeController,
    *,
    first_step: float | None,
    max_steps: int,
    args=None,
) -> tuple[IntegrationResult, dict]:
    """Integrate each batch member with its own step-size control; see the module docstring.

    The loop body is written for few tensor operations per iteration: with small states the cost of
    an iteration is kernel-launch overhead, and the loop runs as many iterations as the hardest
    member needs steps.
    """
    if not tableau.fsal:
        raise ValueError(f"per_sample=True needs an FSAL adaptive method, got {tableau.name!r}")
    batch = y0.shape[0]
    device, dtype = y0.device, y0.dtype
    n_times = len(times)
    float64 = dict(dtype=torch.float64, device=device)
    # A trailing +inf makes "next output time" well defined after the last output has been written.
    time_grid = torch.tensor([*times, math.inf], **float64)
    s_end = times[-1]
    end = torch.tensor(s_end, **float64)
    end_minus_slack = torch.tensor(s_end - landing_slack(s_end), **float64)
    stage_fractions = torch.tensor(tableau.c[1:], **float64).view(-1, 1)
    upper_after_accept = torch.tensor(controller.ifactor, **float64)
    upper_after_reject = torch.tensor(1.0, **float64)
    view = (-1,) + (1,) * (y0.ndim - 1)
    exponent = 1.0 / (tableau.error_order + 1)
    inverse_sqrt_size = 1.0 / math.sqrt(y0[0].numel())
    dense = _PerSampleDense(tableau, dtype, device)

    member = torch.arange(batch, device=device)  # original index of each remaining row
    y = y0
    s = torch.full((batch,), times[0], **float64)
    f0 = field.per_sample(s, y, args)
    if first_step is None:
        step = _initial_step(field, y, f0, s, s_end, tableau.order, controller, args)
    else:
        step = torch.full_like(s, min(first_step, s_end - times[0]))
    with torch.no_grad():
        y_abs = y.abs()
    next_output = torch.ones(batch, dtype=torch.long, device=device)
    next_time = time_grid[next_output]
    accepted_rows = torch.zeros(batch, dtype=torch.long, device=device)
    accepted_count = torch.zeros(batch, dtype=torch.long, device=device)
    attempts = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    output_index = [member.clone()]  # flat index time * batch + member
    output_value = [y0]
    iterations = 0
    status = "success"

    # One reusable context for the bookkeeping (step-size decisions are never differentiated); none at
    # all when gradients are off, since entering a context each time costs more than the op it wraps.
    bookkeeping = torch.no_grad() if torch.is_grad_enabled() else contextlib.nullcontext()
    stage_terms = tableau.a_terms[1:]
    error_terms = tableau.b_error_terms
    rtol, atol, safety, dfactor = controller.rtol, controller.atol, controller.safety, controller.dfactor
    clamp_max_step = controller.max_step != math.inf
    addcmul, where, add = torch.addcmul, torch.where, torch.add

    while member.numel() > 0:
        if iterations >= max_steps:
            status = "max_steps_reached"
            break
        iterations += 1
        with bookkeeping:
            if clamp_max_step:
                step = step.clamp(max=controller.max_step)
            lands = add(s, step) >= end_minus_slack
            step = where(lands, end - s, step)
            stage_times = field.stage_times(addcmul(s, stage_fractions, step).clamp_(max=s_end))
        h = step.to(dtype).view(view)

        stages = [f0]
        for terms, stage_time in zip(stage_terms, stage_times):
            state = addcmul(y, h, sum_of_terms(terms, stages))
            stages.append(field.at_times(stage_time, state, args))
        y_new = state

        with bookkeeping:
            y_new_abs = y_new.abs()
            scale = torch.maximum(y_abs, y_new_abs).mul_(rtol).add_(atol)
            error = sum_of_terms(error_terms, stages).mul_(h).div_(scale)
            if tableau.b_error_secondary is None:
                ratio = torch.linalg.vector_norm(error.flatten(1), dim=1).mul_(inverse_sqrt_size)
            else:
                secondary = weighted_sum(tableau.b_error_secondary, stages).mul_(h).div_(scale)
                err5 = error.abs().square().flatten(1).sum(1)
                err3 = secondary.abs().square().flatten(1).sum(1)
                denominator = ((err5 + 0.01 * err3) * error[0].numel()).sqrt()
                ratio = where(denominator > 0, err5 / denominator.clamp_min(1e-300), 0.0)
            ratio = ratio.to(torch.float64).nan_to_num_(nan=math.inf)
            accept = ratio <= 1.0
            s_new = where(lands, end, add(s, step))
            pending = (accept & (next_time <= s_new)).nonzero().squeeze(1)

        # Dense output for accepted members whose next output time lies inside their step.
        while pending.numel() > 0:
            out_index = next_output.index_select(0, pending)
            theta = (next_time.index_select(0, pending) - s.index_select(0, pending)) / step.index_select(0, pending)
            value = dense(field, pending, theta.clamp(0.0, 1.0), s, step, y, y_new, stages, args)
            output_index.append(out_index * batch + member.index_select(0, pending))
            output_value.append(value)
            with bookkeeping:
                next_output = next_output.index_add(0, pending, torch.ones_like(pending))
                next_time = time_grid[next_output]
                pending = pending[next_time.index_select(0, pending) <= s_new.index_select(0, pending)]

        accept_view = accept.view(view)
        y = where(accept_view, y_new, y)
        f0 = where(accept_view, stages[-1], f0)
        with bookkeeping:
            factor = ratio.clamp_(min=1e-300).pow_(-exponent).mul_(safety).clamp_(min=dfactor)
            step = step * torch.minimum(factor, where(accept, upper_after_accept, upper_after_reject))
            accepted_rows.add_(accept)
            done = accept & lands
            y_abs = where(accept_view, y_new_abs, y_abs)
            s = where(accept, s_new, s)

        if bool(done.any()):
            with torch.no_grad():
                finished_members = member[done]
                finished[finished_members] = True
                attempts[finished_members] = iterations
                accepted_count[finished_members] = accepted_rows[done]
                keep = (~done).nonzero().squeeze(1)
            member, y, f0, y_abs, s, step, next_output, next_time, accepted_rows = (
                tensor.index_select(0, keep)
                for tensor in (member, y, f0, y_abs, s, step, next_output, next_time, accepted_rows)
            )
            args = select_rows(args, keep)
    # Members stopped by max_steps attempted a step at every iteration.
    attempts[member] = iterations
    accepted_count[member] = accepted_rows

    flat = torch.full((n_times * batch, *y0.shape[1:]), float("nan"), dtype=dtype, device=device)
    flat = flat.index_copy(0, torch.cat(output_index), torch.cat(output_value))
    outputs = list(flat.view(n_times, *y0.shape).unbind(0))
    rejected_count = attempts - accepted_count
    stats = {
        "nfe": (2 if first_step is None else 1) + (tableau.n_stages - 1) * attempts,
        "n_steps": attempts,
        "n_accepted": accepted_count,
        "n_rejected": rejected_count,
        "success": finished,
        "n_iterations": iterations,
        "n_batched_calls": field.evaluations,
    }
    result = IntegrationResult(outputs, int(attempts.sum()), int(accepted_count.sum()),
                               int(rejected_count.sum()), status if bool(finished.all()) else "max_steps_reached")
    return result, stats


def _initial_step(field, y0, f0, s0, s_end, order, controller, args):
    """Vectorised Hairer–Nørsett–Wanner starting step, one per member; the probe stays in range."""
    with torch.no_grad():
        scale = y0.abs() * controller.rtol + controller.atol
        d0 = _rms_per_sample(y0 / scale).to(torch.float64)
        d1 = _rms_per_sample(f0 / scale).to(torch.float64)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1.clamp_min(1e-300))
        h0 = torch.minimum(h0, s_end - s0).clamp(max=controller.max_step)
        view = (-1,) + (1,) * (y0.ndim - 1)
        f1 = field.per_sample(s0 + h0, y0 + h0.to(y0.dtype).view(view) * f0, args)
        d2 = _rms_per_sample((f1 - f0) / scale).to(torch.float64) / h0
        largest = torch.maximum(d1, d2)
        h1 = torch.where(
            largest <= 1e-15,
            torch.clamp(h0 * 1e-3, min=1e-6),
            (0.01 / largest.clamp_min(1e-300)) ** (1.0 / (order + 1)),
        )
        return torch.minimum(torch.minimum(100 * h0, h1), s_end - s0).clamp(max=controller.max_step)
