"""Predictions on a whole :class:`TrajectorySet` and the metrics reported by the studies."""

from __future__ import annotations

import math

import torch

from .data import TrajectorySet
from .metrics import mean_absolute_percentage_error, per_sample_mse
from .rollout import rollout

__all__ = ["check_compatible", "evaluate", "model_layout", "predict"]


def _floating_reference(model: torch.nn.Module) -> torch.Tensor | None:
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor
    return None


def model_layout(model, states: torch.Tensor) -> torch.Tensor:
    """``(E, N, T, *state)`` trajectories in the layout ``model`` integrates.

    Multi-environment models take them as they are; environment-agnostic models see all environments'
    trajectories as one batch ``(E · N, T, *state)``.
    """
    if getattr(model, "n_environments", None) is None:
        return states.reshape(-1, *states.shape[2:])
    return states


def check_compatible(model, data: TrajectorySet, role: str = "data") -> None:
    """Raise a ``ValueError`` naming the mismatch if ``model`` cannot integrate ``data``.

    Checks the model's ``state_names`` against the dataset's variables, its number of environments
    against the data's, and that the vector field maps one observed state to a tensor of its shape.
    """
    if not isinstance(data, TrajectorySet):
        raise TypeError(f"{role} must be a TrajectorySet (see physml.training.load_trajectories), got "
                        f"{type(data).__name__}")
    state_names = getattr(model, "state_names", None)
    if state_names is not None and tuple(state_names) != data.variables:
        raise ValueError(
            f"{role} variables {list(data.variables)} do not match the model's state {list(state_names)}; "
            f"load the dataset with variables={list(state_names)} or fix the model"
        )
    n_environments = getattr(model, "n_environments", None)
    if n_environments is not None and n_environments != data.n_environments:
        raise ValueError(
            f"the model has {n_environments} environments but {role} holds {data.n_environments} "
            f"(environments {list(data.environments)})"
        )
    reference = _floating_reference(model)
    sample = data.states[:, :1, 0]  # one state per environment: (E, 1, *state)
    if reference is not None:
        sample = sample.to(dtype=reference.dtype, device=reference.device)
    if n_environments is None:
        sample = sample.reshape(-1, *data.state_shape)
    try:
        with torch.no_grad():
            derivative = model(torch.zeros((), dtype=sample.dtype, device=sample.device), sample)
    except (RuntimeError, ValueError, IndexError) as error:
        raise ValueError(
            f"the model cannot evaluate the states of {role} (state shape {data.state_shape}, variables "
            f"{list(data.variables)}): {error}"
        ) from error
    if derivative.shape != sample.shape:
        raise ValueError(
            f"the model maps states of {role} of shape {tuple(sample.shape)} to {tuple(derivative.shape)}; a "
            f"vector field must keep the state's shape (state {data.state_shape}, variables "
            f"{list(data.variables)})"
        )


@torch.no_grad()
def predict(model, data: TrajectorySet, *, batch_size: int | None = None) -> torch.Tensor:
    """Free rollouts from every trajectory's first state, shape ``(E, N, T, *state)`` like ``data.states``.

    The model runs in evaluation mode (restored afterwards) without gradients, ``batch_size``
    trajectories per environment at a time (all at once by default).
    """
    check_compatible(model, data)
    reference = _floating_reference(model)
    states = data.states
    if reference is not None:
        states = states.to(dtype=reference.dtype, device=reference.device)
    times = data.times.to(states.device)
    step = data.n_samples if batch_size is None else int(batch_size)
    if step < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    was_training = model.training
    model.eval()
    try:
        pieces = []
        for start in range(0, data.n_samples, step):
            chunk = states[:, start: start + step]
            prediction = rollout(model, model_layout(model, chunk), times)
            pieces.append(prediction.reshape(chunk.shape))
    finally:
        model.train(was_training)
    return torch.cat(pieces, dim=1)


def evaluate(model, data: TrajectorySet, *, batch_size: int | None = None) -> dict:
    """Forecast metrics of free rollouts over ``data``.

    Returns
    -------
    dict
        ``mse``, ``log10_mse``, ``mape`` (floats), ``mse_per_environment`` (list, one per environment,
        in ``data.environments`` order) and ``mse_per_sample`` (an ``(E, N)`` tensor).

    Examples
    --------
    >>> import torch
    >>> from physml.models.neural_ode import NeuralODE
    >>> from physml.training import TrajectorySet
    >>> times = torch.linspace(0, 1, 5)
    >>> data = TrajectorySet(torch.exp(-times).view(1, 1, 5, 1).expand(1, 2, 5, 1), times, ("u",), (0,))
    >>> decay = torch.nn.Linear(1, 1, bias=False)
    >>> _ = decay.weight.data.fill_(-1.0)
    >>> evaluate(NeuralODE(decay, method="rk4", step_size=0.01), data)["mse"] < 1e-12
    True
    """
    prediction = predict(model, data, batch_size=batch_size)
    target = data.states.to(dtype=prediction.dtype, device=prediction.device)
    per_sample = per_sample_mse(prediction, target).to(torch.float64).cpu()
    mse = float(per_sample.mean())
    return {
        "mse": mse,
        "log10_mse": math.log10(mse) if mse > 0 else -math.inf,
        "mape": mean_absolute_percentage_error(prediction, target),
        "mse_per_environment": per_sample.mean(dim=1).tolist(),
        "mse_per_sample": per_sample,
    }
