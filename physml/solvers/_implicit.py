"""Adaptive ESDIRK integration for stiff problems, with exact gradients through the Newton solves.

Each implicit stage ``z = base + h γ f(t_i, z)`` is solved by simplified Newton iterations with the
matrix ``I - h γ J`` (J the dense Jacobian of the flattened state at the step start, LU-factored
once per step size).  Gradients do not flow through the iterations: once ``z*`` has converged, one
differentiable Newton step with the exact Jacobian at ``z*``,

    z = z* - (I - h γ J(z*))⁻¹ (z* - base - h γ f(t_i, z*)),

has value z* and, by the implicit-function theorem, exactly the derivative of the stage solution
with respect to ``base`` and the parameters of ``f``.  The dense Jacobian suits the small stiff
systems of chemistry and reduced models; its cost grows as the square of the state size.
"""

from __future__ import annotations

import torch

from ._explicit import IntegrationResult, landing_slack, StepInterpolant, StepSizeController, initial_step_size, rms_norm
from ._tableaux import ButcherTableau
from ._vector_field import VectorField, linear_combination, weighted_sum


def dense_jacobian(field: VectorField, s: float, y: torch.Tensor) -> torch.Tensor:
    """Jacobian of the flattened right-hand side with respect to the flattened state, detached."""
    shape = y.shape
    time = field.time_tensor(min(max(s, field.start), field.end))

    def flat_rhs(flat):
        out = field.func(time, flat.view(shape)) if field.args is None else field.func(time, flat.view(shape), field.args)
        return (out if field.direction > 0 else -out).reshape(-1)

    flat_state = y.detach().reshape(-1)
    with torch.no_grad():
        try:
            return torch.func.jacrev(flat_rhs)(flat_state).detach()
        except (RuntimeError, NotImplementedError, TypeError):
            pass
    # Fallback for vector fields torch.func cannot transform: one vector-Jacobian product per row.
    with torch.enable_grad():
        state = flat_state.clone().requires_grad_(True)
        out = flat_rhs(state)
        rows = []
        for i in range(out.numel()):
            row = torch.autograd.grad(out[i], state, retain_graph=True, allow_unused=True)[0]
            rows.append(torch.zeros_like(state) if row is None else row)
    return torch.stack(rows).detach()


class _NewtonFailure(Exception):
    pass


class ImplicitStepper:
    """One ESDIRK step with simplified Newton iterations; see the module docstring."""

    def __init__(self, field, tableau, controller, newton_tolerance, newton_max_iterations, needs_grad):
        self.needs_grad = needs_grad
        self.field, self.tableau, self.controller = field, tableau, controller
        self.newton_tolerance = newton_tolerance
        self.newton_max_iterations = newton_max_iterations
        self.n_jacobians = 0
        self.n_newton_iterations = 0
        self.slowest_stage_iterations = 0  # most Newton iterations any stage of the last step needed

    def jacobian(self, s, y):
        self.n_jacobians += 1
        return dense_jacobian(self.field, s, y)

    def step(self, s, y, f0, step, jacobian, s_limit):
        tableau, gamma = self.tableau, self.tableau.diagonal
        shape = y.shape
        identity = torch.eye(jacobian.shape[0], dtype=jacobian.dtype, device=jacobian.device)
        lu = torch.linalg.lu_factor(identity - (step * gamma) * jacobian)
        with torch.no_grad():
            scale = (y.abs() * self.controller.rtol + self.controller.atol).reshape(-1)
        stages = [f0]
        self.slowest_stage_iterations = 0
        for c_i, a_i in zip(tableau.c[1:], tableau.a[1:]):
            s_i = min(s + c_i * step, s_limit)
            base = linear_combination(y, step, a_i, stages)
            z = self._solve_stage(s_i, base, step * gamma, stages[-1], lu, scale, shape)
            stages.append((z - base) / (step * gamma))
        y_new = z  # stiffly accurate: the last stage value is the solution
        with torch.no_grad():
            error = weighted_sum(tableau.b_error, stages) * step
            # Shampine's filter (I - hγJ)⁻¹ err keeps the estimate bounded on stiff components.
            filtered = torch.linalg.lu_solve(*lu, error.reshape(-1, 1)).reshape(-1)
            full_scale = torch.maximum(scale, (y_new.abs() * self.controller.rtol + self.controller.atol).reshape(-1))
            ratio = float((self.controller.norm or rms_norm)(filtered / full_scale))
        return stages, y_new, ratio

    def _solve_stage(self, s_i, base, h_gamma, previous_stage, lu, scale, shape):
        field = self.field
        with torch.no_grad():
            z = (base + h_gamma * previous_stage).detach()
            base_detached = base.detach()
            previous_norm = None
            for iteration in range(1, self.newton_max_iterations + 1):
                self.n_newton_iterations += 1
                self.slowest_stage_iterations = max(self.slowest_stage_iterations, iteration)
                residual = z - base_detached - h_gamma * field(s_i, z)
                delta = torch.linalg.lu_solve(*lu, residual.reshape(-1, 1)).reshape(shape)
                z = z - delta
                if not torch.isfinite(z).all():
                    raise _NewtonFailure
                norm = float(rms_norm(delta.reshape(-1) / scale))
                if norm <= self.newton_tolerance:
                    break
                if previous_norm is not None and norm > previous_norm:
                    raise _NewtonFailure
                previous_norm = norm
            else:
                raise _NewtonFailure
        # Differentiable refinement (see the module docstring); skipped when nothing needs gradients.
        if not (self.needs_grad or base.requires_grad):
            return z
        value = field(s_i, z)
        exact = self.jacobian(s_i, z)
        identity = torch.eye(exact.shape[0], dtype=exact.dtype, device=exact.device)
        exact_lu = torch.linalg.lu_factor(identity - h_gamma * exact)
        residual = z - base - h_gamma * value
        return z - torch.linalg.lu_solve(*exact_lu, residual.reshape(-1, 1)).reshape(shape)


def integrate_implicit(
    field: VectorField,
    y0: torch.Tensor,
    times: list[float],
    tableau: ButcherTableau,
    controller: StepSizeController,
    *,
    first_step: float | None,
    max_steps: int,
    newton_tolerance: float = 1e-3,
    newton_max_iterations: int = 10,
    jacobian_refresh_iterations: int = 3,
) -> tuple[IntegrationResult, dict]:
    """Adaptive ESDIRK integration with dense (Hermite) output at the requested times."""
    exponent = 1.0 / (tableau.error_order + 1)
    s_end = times[-1]
    y, s = y0, times[0]
    f0 = field(s, y)
    # Gradients are needed when the state or the vector field's parameters carry them.
    needs_grad = torch.is_grad_enabled() and (f0.requires_grad or y0.requires_grad)
    stepper = ImplicitStepper(field, tableau, controller, newton_tolerance, newton_max_iterations, needs_grad)
    step = first_step if first_step is not None else initial_step_size(
        field, y, f0, s, s_end, tableau.order, controller
    )
    outputs = [y0]
    next_output = 1
    n_accepted = n_rejected = 0
    status = "success"
    jacobian = stepper.jacobian(s, y)
    while next_output < len(times):
        if n_accepted + n_rejected >= max_steps:
            status = "max_steps_reached"
            break
        step = min(step, controller.max_step)
        lands = step >= s_end - s - landing_slack(s_end)
        if lands:
            step = s_end - s
        try:
            stages, y_new, ratio = stepper.step(s, y, f0, step, jacobian, s_end)
        except _NewtonFailure:
            n_rejected += 1
            step *= 0.25
            jacobian = stepper.jacobian(s, y)
            if step < 1e-14 * max(1.0, abs(s)):
                status = "step_size_underflow"
                break
            continue
        if ratio <= 1.0:
            n_accepted += 1
            s_new = s_end if lands else s + step
            if times[next_output] <= s_new:
                interpolant = StepInterpolant(field, tableau, s, step, y, y_new, stages)
                while next_output < len(times) and times[next_output] <= s_new:
                    outputs.append(interpolant(times[next_output]))
                    next_output += 1
            s, y, f0 = s_new, y_new, stages[-1]
            # Keep the Jacobian while Newton converges quickly with it (as Hairer's RADAU5 does).
            if next_output < len(times) and stepper.slowest_stage_iterations > jacobian_refresh_iterations:
                jacobian = stepper.jacobian(s, y)
        else:
            n_rejected += 1
            if stepper.slowest_stage_iterations > jacobian_refresh_iterations:
                jacobian = stepper.jacobian(s, y)
        step *= controller.factor(ratio, exponent, ratio <= 1.0)
        if step < 1e-14 * max(1.0, abs(s)):
            status = "step_size_underflow"
            break
    outputs.extend([None] * (len(times) - len(outputs)))
    extra = {"n_jacobians": stepper.n_jacobians, "n_newton_iterations": stepper.n_newton_iterations}
    return IntegrationResult(outputs, n_accepted + n_rejected, n_accepted, n_rejected, status), extra
