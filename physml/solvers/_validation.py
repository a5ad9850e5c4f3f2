"""Input checks shared by the ODE and SDE entry points.

Every check raises a ``TypeError`` or ``ValueError`` that names the argument, the value received and
what was expected, before any integration work starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_state(y0, *, name: str = "y0") -> torch.Tensor:
    """Return ``y0`` after checking it is a finite floating-point tensor."""
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y0).__name__}")
    if not (y0.is_floating_point() or y0.is_complex()):
        raise TypeError(f"{name} must have a floating-point dtype (float32 or float64), got {y0.dtype}")
    if y0.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(y0.shape)}")
    if not torch.isfinite(y0).all():
        bad = int((~torch.isfinite(y0)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s) (NaN or inf)")
    return y0


def check_times(t, y0: torch.Tensor, *, name: str = "t") -> torch.Tensor:
    """Return the output times as a float64 1-D tensor on ``y0``'s device.

    The times must hold at least two finite values that are strictly increasing or strictly
    decreasing.
    """
    if isinstance(t, torch.Tensor):
        if t.is_complex() or not (t.is_floating_point() or t.dtype in _INTEGER_DTYPES):
            raise TypeError(f"{name} must be a real tensor, got dtype {t.dtype}")
        if t.device != y0.device:
            raise ValueError(
                f"{name} is on device {t.device} but y0 is on {y0.device}; put both on the same device"
            )
        times = t.detach().to(torch.float64)
    elif isinstance(t, Sequence):
        times = torch.as_tensor(list(t), dtype=torch.float64, device=y0.device)
    else:
        raise TypeError(f"{name} must be a 1-D tensor or sequence of times, got {type(t).__name__}")
    if times.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(times.shape)}")
    if times.numel() < 2:
        raise ValueError(f"{name} must hold at least 2 time points (start and end), got {times.numel()}")
    if not torch.isfinite(times).all():
        raise ValueError(f"{name} must be finite, got {times.tolist()}")
    steps = times[1:] - times[:-1]
    if not ((steps > 0).all() or (steps < 0).all()):
        raise ValueError(
            f"{name} must be strictly increasing or strictly decreasing, got {_preview(times)}"
        )
    return times


def check_method(method: str, known: Sequence[str], *, name: str = "method") -> str:
    """Return ``method`` if it is one of ``known``, else raise naming the known methods."""
    if not isinstance(method, str):
        raise TypeError(f"{name} must be a string, got {type(method).__name__}")
    if method not in known:
        raise ValueError(f"unknown {name} {method!r}; known methods are: {', '.join(sorted(known))}")
    return method


def check_tolerance(value, *, name: str) -> float:
    """Return a positive finite tolerance as a float."""
    try:
        tolerance = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}") from None
    if not tolerance > 0 or tolerance == float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return tolerance


def check_vector_field_output(output, y0: torch.Tensor, *, name: str = "func") -> None:
    """Check that a vector-field evaluation matches the state's shape, dtype and device."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"{name}(t, y0) must return a torch.Tensor, got {type(output).__name__}")
    if output.shape != y0.shape:
        raise ValueError(
            f"{name}(t, y0) returned shape {tuple(output.shape)}, expected the shape of y0 {tuple(y0.shape)}"
        )
    if output.device != y0.device:
        raise ValueError(f"{name}(t, y0) returned a tensor on {output.device}, but y0 is on {y0.device}")


def check_module_devices(func, y0: torch.Tensor, *, name: str = "func") -> None:
    """Raise if ``func`` is an ``nn.Module`` whose parameters live on another device than ``y0``."""
    if isinstance(func, torch.nn.Module):
        for parameter_name, parameter in func.named_parameters():
            if parameter.device != y0.device:
                raise ValueError(
                    f"{name} parameter {parameter_name!r} is on {parameter.device} but y0 is on {y0.device}; "
                    "move the module with .to(y0.device)"
                )


def check_positive_int(value, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def _preview(times: torch.Tensor, limit: int = 8) -> str:
    values = times.tolist()
    text = ", ".join(f"{v:g}" for v in values[:limit])
    return f"[{text}{', ...' if len(values) > limit else ''}]"


_INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
