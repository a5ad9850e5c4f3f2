"""Continuous adjoint: gradients of an ODE solve with memory independent of the number of steps.

The forward solve runs without recording a graph and keeps only the outputs.  The backward pass
integrates, from each output time to the previous one, the augmented system

    dy/dt = f(t, y),   da/dt = -aᵀ ∂f/∂y,   dg/dt = -aᵀ ∂f/∂θ,

restarting ``y`` from the stored output and adding the incoming gradient to ``a`` at every output
time (as torchdiffeq does).  ``a(t0)`` is the gradient with respect to ``y0`` and ``g(t0)`` the one
with respect to the parameters θ.
"""

from __future__ import annotations

import torch

from ._explicit import rms_norm
from ._validation import check_state, check_times


class _AdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings, y0, *params):
        from .ode import solve_ode

        with torch.no_grad():
            solution = solve_ode(
                settings["func"], y0, settings["times"], method=settings["method"], rtol=settings["rtol"],
                atol=settings["atol"], options=settings["options"], max_steps=settings["max_steps"],
                args=settings["args"],
            )
        settings["forward_solution"] = solution
        ctx.settings = settings
        ctx.save_for_backward(solution.ys, *params)
        return solution.ys

    @staticmethod
    def backward(ctx, grad_ys):
        from .ode import solve_ode

        settings = ctx.settings
        ys, *params = ctx.saved_tensors
        func, times, args = settings["func"], settings["times"], settings["args"]
        shape, numel = ys.shape[1:], ys[0].numel()
        dtype = ys.dtype
        param_sizes = [p.numel() for p in params]

        def augmented(t, state):
            y = state[:numel].view(shape)
            adjoint = state[numel: 2 * numel].view(shape)
            with torch.enable_grad():
                y_leaf = y.detach().requires_grad_(True)
                value = func(t, y_leaf) if args is None else func(t, y_leaf, args)
                grads = torch.autograd.grad(value, (y_leaf, *params), -adjoint, allow_unused=True)
            pieces = [value.reshape(-1), grads[0].reshape(-1) if grads[0] is not None else torch.zeros_like(y).reshape(-1)]
            for grad, param, size in zip(grads[1:], params, param_sizes):
                pieces.append(torch.zeros(size, dtype=dtype, device=state.device) if grad is None
                              else grad.reshape(-1).to(dtype))
            return torch.cat(pieces)

        adjoint_options = dict(settings["adjoint_options"] or {})
        if adjoint_options.get("norm") == "seminorm":
            # Error control on the state and adjoint only, not on the parameter-gradient integrals.
            adjoint_options["norm"] = lambda error: rms_norm(error[: 2 * numel])

        adjoint_state = grad_ys[-1].reshape(-1)
        param_grad = torch.zeros(sum(param_sizes), dtype=dtype, device=ys.device)
        nfe = 0
        for index in range(len(times) - 1, 0, -1):
            state = torch.cat([ys[index].reshape(-1), adjoint_state, param_grad])
            segment = solve_ode(
                augmented, state, times[index - 1: index + 1].flip(0), method=settings["adjoint_method"],
                rtol=settings["adjoint_rtol"], atol=settings["adjoint_atol"], options=adjoint_options,
                max_steps=settings["max_steps"],
            )
            nfe += segment.stats["nfe"]
            if not segment.success:
                raise RuntimeError(f"adjoint solve stopped early with status {segment.status!r}")
            end = segment.ys[-1]
            adjoint_state = end[numel: 2 * numel] + grad_ys[index - 1].reshape(-1)
            param_grad = end[2 * numel:]
        settings["forward_solution"].stats["nfe_adjoint"] = nfe

        grads, offset = [], 0
        for param, size in zip(params, param_sizes):
            grads.append(param_grad[offset: offset + size].view_as(param).to(param.dtype))
            offset += size
        return (None, adjoint_state.view(shape), *grads)


def solve_with_adjoint(func, y0, t, *, method, rtol, atol, options, max_steps, args, adjoint_params,
                       adjoint_method, adjoint_rtol, adjoint_atol, adjoint_options):
    """Run :func:`physml.solve_ode` forward and differentiate it with the continuous adjoint."""
    y0 = check_state(y0)
    times = check_times(t, y0)
    if adjoint_params is None:
        if not isinstance(func, torch.nn.Module):
            raise TypeError(
                "adjoint solves need func to be an nn.Module or adjoint_params to list the tensors to "
                f"differentiate; got func of type {type(func).__name__} and adjoint_params=None"
            )
        adjoint_params = tuple(func.parameters())
    params = tuple(p for p in adjoint_params if isinstance(p, torch.Tensor) and p.requires_grad)
    if adjoint_options is not None and not isinstance(adjoint_options, dict):
        raise TypeError(f"adjoint_options must be a dict, got {type(adjoint_options).__name__}")
    settings = {
        "func": func, "times": times, "method": method, "rtol": rtol, "atol": atol, "options": options,
        "max_steps": max_steps, "args": args, "adjoint_method": adjoint_method or method,
        "adjoint_rtol": adjoint_rtol if adjoint_rtol is not None else rtol,
        "adjoint_atol": adjoint_atol if adjoint_atol is not None else atol,
        "adjoint_options": adjoint_options,
    }
    ys = _AdjointFunction.apply(settings, y0, *params)
    solution = settings["forward_solution"]
    solution.ys = ys
    return solution
