"""Input checks shared by the generative models.

Every check raises a ``TypeError`` or ``ValueError`` naming the argument, the value received and what
was expected, before any training or sampling work starts.
"""

from __future__ import annotations

import torch


def check_samples(data, *, name: str = "data", min_ndim: int = 2) -> torch.Tensor:
    """Return ``data`` after checking it is a finite floating-point tensor with a leading batch axis."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n_samples, ...), got {type(data).__name__}")
    if not data.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype (float32 or float64), got {data.dtype}")
    if data.ndim < min_ndim:
        raise ValueError(
            f"{name} must have shape (n_samples, dim{', ...' if min_ndim == 2 else ''}) with at least "
            f"{min_ndim} dimensions, got shape {tuple(data.shape)}"
        )
    if data.shape[0] == 0 or data.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        bad = int((~torch.isfinite(data)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s) (NaN or inf)")
    return data


def check_labels(labels, data: torch.Tensor, num_classes: int | None, *, name: str = "labels"):
    """Return class labels as a long tensor of shape ``(len(data),)``, or ``None``."""
    if labels is None:
        if num_classes is not None:
            raise ValueError(f"{name} is required: the model was configured with num_classes={num_classes}")
        return None
    if num_classes is None:
        raise ValueError(f"{name} were given but the model was configured without num_classes")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer class labels, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{name} must have shape ({data.shape[0]},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}], got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.to(device=data.device, dtype=torch.long)


def check_time_in_window(value, *, name: str, allow_one: bool = True) -> float:
    """Return a time in (0, 1] (or (0, 1) with ``allow_one=False``) as a float."""
    try:
        time = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in (0, 1], got {value!r}") from None
    upper_ok = time <= 1.0 if allow_one else time < 1.0
    if not (time > 0.0 and upper_ok):
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return time


def check_time_schedule(times, *, name: str = "times", device=None) -> torch.Tensor:
    """Return a strictly decreasing schedule inside (0, 1] as a float64 tensor."""
    if isinstance(times, torch.Tensor):
        if times.is_complex() or not (times.is_floating_point() or times.dtype == torch.long):
            raise TypeError(f"{name} must be a real tensor of times, got dtype {times.dtype}")
        schedule = times.detach().to(dtype=torch.float64, device=device)
    else:
        try:
            schedule = torch.as_tensor(list(times), dtype=torch.float64, device=device)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a 1-D tensor or sequence of times, got {type(times).__name__}"
            ) from None
    if schedule.ndim != 1 or schedule.numel() < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 times, got shape {tuple(schedule.shape)}")
    if not torch.isfinite(schedule).all() or schedule.min() <= 0.0 or schedule.max() > 1.0:
        raise ValueError(
            f"{name} must lie in the diffusion time window (0, 1], got values in "
            f"[{float(schedule.min()):g}, {float(schedule.max()):g}]"
        )
    if not (schedule[1:] < schedule[:-1]).all():
        raise ValueError(f"{name} must be strictly decreasing (from the prior towards the data)")
    return schedule


def check_positive_int(value, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def check_nonnegative_int(value, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return value


def check_positive_float(value, *, name: str, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if number != number or number == float("inf") or number < 0 or (number == 0 and not allow_zero):
        expected = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {expected} finite number, got {value!r}")
    return number


def check_probability(value, *, name: str) -> float:
    number = check_positive_float(value, name=name, allow_zero=True)
    if number >= 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return number


def check_ema_decay(value) -> float | None:
    """``None`` (no weight averaging) or a decay in (0, 1)."""
    if value is None:
        return None
    number = check_probability(value, name="ema_decay")
    if number == 0.0:
        raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {value!r}")
    return number


def check_choice(value, choices, *, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(map(repr, choices))}; got {value!r}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_network_output(output, x: torch.Tensor, *, name: str = "network") -> torch.Tensor:
    """Check that a network returned a tensor shaped like its input state."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"{name}(t, x) must return a torch.Tensor, got {type(output).__name__}")
    if output.shape != x.shape:
        raise ValueError(
            f"{name}(t, x) returned shape {tuple(output.shape)}, expected the shape of x {tuple(x.shape)}"
        )
    return output


def resolve_generator(generator, device) -> torch.Generator:
    """Return ``generator`` (checked) or a fresh, OS-seeded one on ``device`` — never the global RNG."""
    device = torch.device(device)
    if generator is None:
        fresh = torch.Generator(device=device)
        fresh.seed()
        return fresh
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(f"generator is on device {generator.device} but the tensors are on {device}")
    return generator
