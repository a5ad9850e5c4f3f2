"""Trajectory rollouts with restarts from the ground truth, and the restart-probability schedule.

LEADS and CoDA stabilise early training by restarting the integration from the observed state at random
time points: each interior observation time is a restart point with probability ε, and ε decays
geometrically during training until the rollouts run freely from the first state (always the case at
evaluation).
"""

from __future__ import annotations

import torch

__all__ = ["draw_restart_mask", "restart_probability", "rollout"]


def restart_probability(iteration: int, initial: float, decay: float = 1.0, every: int = 1,
                        minimum: float = 0.0) -> float:
    """ε after ``iteration`` iterations: ``initial · decay^(iteration // every)``, 0 below ``minimum``.

    LEADS: ``initial=0.99, decay=0.99, every=10``; CoDA: ``every=30`` (15 for Navier–Stokes) and
    ``minimum=1e-3``.

    Examples
    --------
    >>> restart_probability(0, 0.99, 0.99, every=10), round(restart_probability(25, 0.99, 0.99, every=10), 6)
    (0.99, 0.970299)
    >>> restart_probability(10_000, 0.99, 0.99, every=10, minimum=1e-3)
    0.0
    """
    if not 0.0 <= initial <= 1.0:
        raise ValueError(f"initial restart probability must be in [0, 1], got {initial!r}")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"restart decay must be in (0, 1], got {decay!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    value = initial * decay ** (iteration // every)
    return 0.0 if value < minimum or value == 0 else value


def draw_restart_mask(n_times: int, probability: float, generator: torch.Generator) -> torch.Tensor | None:
    """Restart points for one rollout: a boolean ``(n_times,)`` mask, or ``None`` when ε is 0.

    Time 0 is always a start and the last time never a restart (nothing would follow it), so only the
    interior entries are drawn.  One draw of ``n_times`` uniforms from ``generator`` whenever ε > 0.
    """
    if probability <= 0:
        return None
    mask = torch.rand(n_times, generator=generator) < probability
    mask[0] = False
    mask[-1] = False
    return mask


def rollout(model, states: torch.Tensor, times: torch.Tensor,
            restart_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Integrate ``model`` from the first observed state, restarting from the observations where asked.

    Parameters
    ----------
    model : physml.models.neural_ode.NeuralODE
        Any model with ``simulate(y0, times)`` and ``n_environments``.
    states : torch.Tensor
        Observed trajectories in the model's layout: ``(batch, n_times, *state)`` for an
        environment-agnostic model, ``(n_environments, batch, n_times, *state)`` otherwise.
    times : torch.Tensor
        ``(n_times,)`` observation times.
    restart_mask : torch.Tensor, optional
        Boolean ``(n_times,)``: at each ``True`` interior time the integration continues from the observed
        state instead of the predicted one (the prediction *at* that time is still the model's).

    Returns
    -------
    torch.Tensor
        Predictions shaped like ``states``; the first frame is the observed initial state.

    Examples
    --------
    >>> import torch
    >>> from physml.models.neural_ode import NeuralODE
    >>> model = NeuralODE(torch.nn.Linear(2, 2), method="rk4")
    >>> observed = torch.randn(3, 5, 2)
    >>> rollout(model, observed, torch.linspace(0, 1, 5)).shape
    torch.Size([3, 5, 2])
    """
    time_axis = 1 if getattr(model, "n_environments", None) is None else 2
    if states.ndim <= time_axis or states.shape[time_axis] != len(times):
        raise ValueError(
            f"states must have the {len(times)} observation times on axis {time_axis}, got shape "
            f"{tuple(states.shape)}"
        )
    restarts = [] if restart_mask is None else (torch.nonzero(restart_mask[1:-1]).flatten() + 1).tolist()
    starts = [0, *restarts]
    ends = [*restarts, len(times) - 1]
    # Prepared once for all segments (the parameters do not change during a rollout).
    prepared = getattr(model, "prepared_vector_field", None)
    adjoint = getattr(model, "uses_adjoint", lambda: False)()
    field = prepared() if prepared is not None and not adjoint else None
    pieces = []
    for start, end in zip(starts, ends, strict=True):
        initial = states.select(time_axis, start)
        # (segment times, *initial.shape)
        segment = model.simulate(initial, times[start: end + 1], vector_field=field)
        pieces.append(segment if not pieces else segment[1:])
    prediction = torch.cat(pieces, dim=0) if len(pieces) > 1 else pieces[0]
    return prediction.movedim(0, time_axis)

