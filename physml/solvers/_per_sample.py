"""Per-sample adaptive integration: every batch member has its own step size and accept/reject.

Members that reach the end of the interval are compacted out of the batch (rows removed), rather
than masked as torchode and ``jax.vmap``-ed diffrax do, so the cost of a loop iteration follows the
number of members still integrating.  The first dimension of the state is the batch; ``func``
receives one time per remaining member, ``t`` of shape ``(batch,)``, and per-sample ``args`` (if
given) are compacted together with the state.
"""

from __future__ import annotations

import torch

from ._explicit import IntegrationResult, landing_slack, StepSizeController
from ._tableaux import ButcherTableau
from ._vector_field import VectorField, weighted_sum


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

    def __call__(self, field, rows, theta, s, step, y, y_new, stages, args):
        view = (-1,) + (1,) * (y.ndim - 1)
        y_rows = y.index_select(0, rows)
        step_rows = step.index_select(0, rows)
        stage_rows = [stage.index_select(0, rows) for stage in stages]
        h = step_rows.to(y.dtype).view(view)
        theta = theta.to(y.dtype)
        if self.tableau.dense is not None:
            powers = torch.stack([theta ** (j + 1) for j in range(self.matrix.shape[1])], dim=1)
            weights = powers @ self.matrix.T  # (rows, stages)
            total = None
            for index, stage in enumerate(stage_rows):
                term = weights[:, index].view(view) * stage
                total = term if total is None else total + term
            return y_rows + h * total
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
    """Integrate each batch member with its own step-size control; see the module docstring."""
    if not tableau.fsal:
        raise ValueError(f"per_sample=True needs an FSAL adaptive method, got {tableau.name!r}")
    batch = y0.shape[0]
    device, dtype = y0.device, y0.dtype
    n_times = len(times)
    time_grid = torch.tensor(times, dtype=torch.float64, device=device)
    s_end = times[-1]
    view = (-1,) + (1,) * (y0.ndim - 1)
    exponent = 1.0 / (tableau.error_order + 1)
    dense = _PerSampleDense(tableau, dtype, device)

    member = torch.arange(batch, device=device)  # original index of each remaining row
    y = y0
    s = torch.full((batch,), times[0], dtype=torch.float64, device=device)
    f0 = field.per_sample(s, y, args)
    if first_step is None:
        step = _initial_step(field, y, f0, s, s_end, tableau.order, controller, args)
    else:
        step = torch.full_like(s, min(first_step, s_end - times[0]))
    next_output = torch.ones(batch, dtype=torch.long, device=device)
    accepted_count = torch.zeros(batch, dtype=torch.long, device=device)
    rejected_count = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    output_index = [member.clone()]  # flat index time * batch + member
    output_value = [y0]
    iterations = 0
    status = "success"

    while member.numel() > 0:
        if iterations >= max_steps:
            status = "max_steps_reached"
            break
        iterations += 1
        remaining = s_end - s
        step = step.clamp(max=controller.max_step)
        lands = step >= remaining - landing_slack(s_end)
        step = torch.where(lands, remaining, step)
        h = step.to(dtype).view(view)

        stages = [f0]
        state = y
        for c_i, a_i in zip(tableau.c[1:], tableau.a[1:]):
            state = torch.addcmul(y, h, weighted_sum(a_i, stages))
            stages.append(field.per_sample(s + c_i * step, state, args))
        y_new = state

        with torch.no_grad():
            scale = torch.maximum(y.abs(), y_new.abs()).mul_(controller.rtol).add_(controller.atol)
            error = weighted_sum(tableau.b_error, stages).mul_(h).div_(scale)
            if tableau.b_error_secondary is None:
                ratio = _rms_per_sample(error)
            else:
                secondary = weighted_sum(tableau.b_error_secondary, stages).mul_(h).div_(scale)
                err5 = error.abs().square().flatten(1).sum(1)
                err3 = secondary.abs().square().flatten(1).sum(1)
                denominator = ((err5 + 0.01 * err3) * error[0].numel()).sqrt()
                ratio = torch.where(denominator > 0, err5 / denominator.clamp_min(1e-300), 0.0)
            accept = ratio <= 1.0
            s_new = torch.where(lands, torch.full_like(s, s_end), s + step)

        # Dense output for accepted members whose next output time lies inside their step.
        while True:
            pending = accept & (time_grid[next_output.clamp(max=n_times - 1)] <= s_new) & (next_output < n_times)
            rows = pending.nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            out_index = next_output.index_select(0, rows)
            theta = (time_grid.index_select(0, out_index) - s.index_select(0, rows)) / step.index_select(0, rows)
            value = dense(field, rows, theta.clamp(0.0, 1.0), s, step, y, y_new, stages, args)
            output_index.append(out_index * batch + member.index_select(0, rows))
            output_value.append(value)
            next_output = next_output.index_add(0, rows, torch.ones_like(rows))

        with torch.no_grad():
            factor = controller.safety * ratio.clamp_min(1e-300) ** (-exponent)
            factor = torch.where(ratio == 0, controller.ifactor, factor)
            factor = factor.nan_to_num(nan=controller.dfactor).clamp(controller.dfactor, controller.ifactor)
            factor = torch.where(accept, factor, factor.clamp(max=1.0))
            step = step * factor
            accepted_count.index_add_(0, member, accept.long())
            rejected_count.index_add_(0, member, (~accept).long())
        accept_view = accept.view(view)
        y = torch.where(accept_view, y_new, y)
        f0 = torch.where(accept_view, stages[-1], f0)
        s = torch.where(accept, s_new, s)

        done = accept & lands
        if bool(done.any()):
            finished[member[done]] = True
            keep = (~done).nonzero().squeeze(1)
            member, y, f0, s, step, next_output = (
                member.index_select(0, keep), y.index_select(0, keep), f0.index_select(0, keep),
                s.index_select(0, keep), step.index_select(0, keep), next_output.index_select(0, keep),
            )
            args = select_rows(args, keep)

    flat = torch.full((n_times * batch, *y0.shape[1:]), float("nan"), dtype=dtype, device=device)
    flat = flat.index_copy(0, torch.cat(output_index), torch.cat(output_value))
    outputs = list(flat.view(n_times, *y0.shape).unbind(0))
    attempts = accepted_count + rejected_count
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
