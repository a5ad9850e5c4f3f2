"""Forecasting and identification metrics: MSE, log10 MSE, MAPE and relative parameter error."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = [
    "log10_mse",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "per_sample_mse",
    "relative_parameter_error",
]


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target must have the same shape, got {tuple(prediction.shape)} and "
                         f"{tuple(target.shape)}")


def mean_squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over every entry of ``(prediction - target)²`` (a 0-dim tensor, differentiable).

    Examples
    --------
    >>> import torch
    >>> float(mean_squared_error(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 1.0])))
    2.0
    """
    _check_pair(prediction, target)
    return torch.mean((prediction - target) ** 2)


def per_sample_mse(prediction: torch.Tensor, target: torch.Tensor, sample_dims: int = 2) -> torch.Tensor:
    """MSE of each sample: the mean over all but the leading ``sample_dims`` dimensions.

    With trajectories ``(n_environments, n_samples, n_times, *state)`` the default gives an
    ``(n_environments, n_samples)`` table, from which means and spreads over any grouping follow (LEADS
    reports the spread over test batches of one trajectory per environment).

    Examples
    --------
    >>> import torch
    >>> per_sample_mse(torch.ones(2, 3, 4, 2), torch.zeros(2, 3, 4, 2)).shape
    torch.Size([2, 3])
    """
    _check_pair(prediction, target)
    squared = (prediction - target) ** 2
    return squared.reshape(*squared.shape[:sample_dims], -1).mean(dim=-1)


def log10_mse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """log₁₀ of the MSE (``-inf`` for a perfect prediction).

    Examples
    --------
    >>> import torch
    >>> round(log10_mse(torch.tensor([0.1]), torch.tensor([0.0])), 6)
    -2.0
    """
    value = float(mean_squared_error(prediction, target))
    return math.log10(value) if value > 0 else -math.inf


def mean_absolute_percentage_error(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean of ``|prediction - target| / |target|`` over the entries where the ratio is finite.

    CoDA's relative error ("MAPE").  Entries with a zero target give NaN (0/0) or infinity and are left
    out, so the metric stays defined on fields that vanish somewhere; it is NaN if nothing is left.

    Examples
    --------
    >>> import torch
    >>> round(mean_absolute_percentage_error(torch.tensor([1.1, 2.0, 0.0]), torch.tensor([1.0, 2.5, 0.0])), 6)
    0.15
    """
    _check_pair(prediction, target)
    ratio = ((prediction - target).abs() / target.abs()).to(torch.float64)
    finite = ratio[torch.isfinite(ratio)]
    return float(finite.mean()) if finite.numel() else math.nan


def relative_parameter_error(estimated: Mapping[str, float | torch.Tensor],
                             true: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """``|estimated - true| / |true|`` for every estimated parameter, by name.

    Multi-valued parameters (one value per environment, say) give the mean relative error over their
    entries.  Studies report the largest value over the identified parameters as ``param_rel_error`` and
    the mean as ``param_rel_error_mean``.

    Examples
    --------
    >>> relative_parameter_error({"omega0_squared": 1.0}, {"omega0_squared": 1.25, "alpha": 0.2})
    {'omega0_squared': 0.2}
    """
    missing = [name for name in estimated if name not in true]
    if missing:
        raise ValueError(f"true values are missing for estimated parameters {missing}; given {sorted(true)}")
    errors = {}
    for name, value in estimated.items():
        value = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
        reference = torch.as_tensor(true[name], dtype=torch.float64).detach().cpu()
        if torch.any(reference == 0):
            raise ValueError(f"relative error is undefined for parameter {name!r}: its true value is 0")
        errors[name] = float(((value - reference).abs() / reference.abs()).mean())
    return errors
