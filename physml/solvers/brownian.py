"""Seeded, reconstructible Brownian motion sampled on a fixed time grid.

:class:`BrownianPath` draws every increment of its grid (and, on request, every space-time Lévy area)
in one vectorised call when it is built, so an SDE solve pays no per-step cost for its noise. A query
spanning several grid steps is answered by summing the fine steps it covers, so a coarse increment is
*exactly* the sum of the fine increments: solving on grids of several step sizes with one
path sees the same Brownian motion, as strong-order tests need.

Queries must land on grid points (up to rounding). Off-grid times raise a ``ValueError`` rather than
being filled in by a Brownian bridge: a bridge would need extra, lazily drawn randomness whose
reproducibility depends on the order of the queries, and no solver in :mod:`physml.solvers` needs it
because :func:`physml.sdeint` builds its path on its own step grid.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from itertools import pairwise

import torch

__all__ = ["BrownianPath"]


class BrownianPath:
    r"""Brownian motion on a fixed grid, drawn at once from a seed or a ``torch.Generator``.

    Parameters
    ----------
    t0, t1 : float
        Ends of the time interval. Either order is accepted; the path lives on
        ``[min(t0, t1), max(t0, t1)]`` and the increments are drawn from the earlier time onward.
    shape : tuple of int
        Shape of one increment ``W(tb) - W(ta)``; for :func:`physml.sdeint` this is ``y0.shape`` for
        diagonal noise and ``(batch, m)`` (or ``(m,)`` for a 1-D state) otherwise.
    dt : float, optional
        Grid spacing: the interval is split into ``ceil(|t1 - t0| / dt - 1e-9)`` equal steps. Give
        exactly one of ``dt`` and ``grid``.
    grid : sequence of float or 1-D tensor, optional
        Explicit, strictly monotone grid running from ``t0`` to ``t1``.
    dtype : torch.dtype, optional
        Floating-point dtype of the increments (default: ``torch.get_default_dtype()``).
    device : torch.device or str, optional
        Device of the increments (default: CPU).
    generator : torch.Generator, optional
        Source of randomness (on ``device``). Mutually exclusive with ``seed``.
    seed : int, optional
        Seed for a private generator; the same seed, grid, shape, dtype and device always give the same
        path. When neither ``seed`` nor ``generator`` is given, a fresh seed is drawn from the operating
        system and stored in :attr:`seed`, so any path can be rebuilt.
    levy_area : bool, default False
        Also draw the space-time Lévy area of every grid interval (needed by the ``"srk"`` method).
        The increments do not depend on this flag: the Lévy-area normals are drawn after them.

    Notes
    -----
    ``bm(ta, tb)`` returns ``W(tb) - W(ta)`` for any grid-aligned ``ta``, ``tb`` in the interval,
    including ``ta > tb`` (the increment of the reversed interval, ``-(W(ta) - W(tb))``).
    ``bm(ta, tb, return_levy_area=True)`` also returns the oriented time integral
    :math:`\Delta Z = \int_{t_a}^{t_b} (W(s) - W(t_a))\,ds` (torchsde's ``U``); the normalised space-time
    Lévy area is :math:`H = \Delta Z / (t_b - t_a) - \Delta W / 2`. On one grid interval of length
    ``h``, ``H`` is drawn as an independent ``N(0, h / 12)`` variable, which reproduces the exact joint
    law of ``(ΔW, ΔZ)``; coarser intervals aggregate the fine values exactly.

    Memory is ``num_steps * prod(shape)`` values (twice that with ``levy_area=True``); a query that
    does not follow the grid step by step sums the fine steps it covers (a temporary of that size).

    Examples
    --------
    >>> import torch
    >>> from physml.solvers.brownian import BrownianPath
    >>> bm = BrownianPath(0.0, 1.0, (4, 2), dt=0.01, seed=0, dtype=torch.float64)
    >>> coarse = bm(0.0, 0.5)
    >>> fine = sum(bm(k / 100, (k + 1) / 100) for k in range(50))
    >>> bool(torch.allclose(coarse, fine))
    True
    >>> bool(torch.equal(bm(0.5, 0.0), -coarse))
    True
    """

    def __init__(
        self,
        t0: float,
        t1: float,
        shape,
        *,
        dt: float | None = None,
        grid=None,
        dtype: torch.dtype | None = None,
        device=None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        levy_area: bool = False,
    ):
        t0 = _finite_float(t0, "t0")
        t1 = _finite_float(t1, "t1")
        if t0 == t1:
            raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}")
        self.shape = _check_shape(shape)
        self.dtype = torch.get_default_dtype() if dtype is None else dtype
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.t0, self.t1 = t0, t1
        self.start, self.end = min(t0, t1), max(t0, t1)

        grid_times = _build_grid(t0, t1, dt, grid)
        if grid_times[0] > grid_times[-1]:
            grid_times = grid_times[::-1]
        # Grid kept as Python floats (for bisect on single queries) and a float64 CPU tensor (for
        # vectorised look-ups of a whole solver grid).
        self._grid = grid_times
        self._grid_tensor = torch.tensor(grid_times, dtype=torch.float64)
        step_sizes = self._grid_tensor[1:] - self._grid_tensor[:-1]
        self._min_step = float(step_sizes.min())
        # Solver grids are computed independently of this grid; allow for rounding, never for real gaps.
        self._tolerance = max(1e-6 * self._min_step, 8 * 2.0**-52 * max(abs(self.start), abs(self.end)))

        generator, self.seed = _make_generator(generator, seed, self.device)
        self.has_levy_area = bool(levy_area)
        num_steps = len(grid_times) - 1
        broadcast = (num_steps,) + (1,) * len(self.shape)
        step_column = step_sizes.to(dtype=self.dtype, device=self.device).reshape(broadcast)
        self._step_column = step_column
        noise = torch.randn(
            (num_steps, *self.shape), generator=generator, dtype=self.dtype, device=self.device
        )
        self._increments = noise.mul_(step_column.sqrt())
        self._levy_areas = None
        if self.has_levy_area:
            # ΔZ = h (ΔW / 2 + H) with H ~ N(0, h / 12) independent of ΔW: exact joint law on one step.
            normalised_area = torch.randn(
                (num_steps, *self.shape), generator=generator, dtype=self.dtype, device=self.device
            )
            normalised_area.mul_((step_column / 12).sqrt())
            self._levy_areas = (normalised_area + 0.5 * self._increments).mul_(step_column)

    # ------------------------------------------------------------------ properties

    @property
    def grid(self) -> torch.Tensor:
        """The grid times, increasing, as a float64 CPU tensor (a copy)."""
        return self._grid_tensor.clone()

    @property
    def num_steps(self) -> int:
        return len(self._grid) - 1

    def __repr__(self) -> str:
        return (
            f"BrownianPath(t0={self.t0}, t1={self.t1}, shape={tuple(self.shape)}, "
            f"num_steps={self.num_steps}, dtype={self.dtype}, device={self.device}, seed={self.seed}, "
            f"levy_area={self.has_levy_area})"
        )

    # ------------------------------------------------------------------ queries

    def __call__(self, ta, tb=None, *, return_levy_area: bool = False):
        """Return ``W(tb) - W(ta)`` (and ΔZ when ``return_levy_area``); ``bm(t)`` is ``W(t) - W(start)``."""
        if tb is None:
            ta, tb = self.start, ta
        ta = _finite_float(ta, "ta")
        tb = _finite_float(tb, "tb")
        index_a = self._index_of(ta, "ta")
        index_b = self._index_of(tb, "tb")
        indices = torch.tensor([index_a, index_b])
        increment = self._increments_between(indices)[0]
        if not return_levy_area:
            return increment
        return increment, self._levy_areas_between(indices)[0]

    def increments_along(self, times) -> torch.Tensor:
        """All increments ``W(times[k+1]) - W(times[k])`` in one call, shape ``(len(times) - 1, *shape)``.

        ``times`` must be grid-aligned and may run in either direction (or zigzag). When they walk the
        grid one step at a time the stored increments are returned without copying (forward) or with a
        single flip (backward).
        """
        return self._increments_between(self._indices_of(times))

    def levy_areas_along(self, times) -> torch.Tensor:
        """All oriented integrals ``∫_{times[k]}^{times[k+1]} (W(s) - W(times[k])) ds``, like
        :meth:`increments_along`. Requires ``levy_area=True`` at construction."""
        return self._levy_areas_between(self._indices_of(times))

    # ------------------------------------------------------------------ internals

    def _index_of(self, time: float, name: str) -> int:
        if time < self.start - self._tolerance or time > self.end + self._tolerance:
            raise ValueError(
                f"{name}={time!r} lies outside the Brownian path's interval [{self.start}, {self.end}]"
            )
        position = bisect.bisect_left(self._grid, time)
        candidates = [i for i in (position - 1, position) if 0 <= i < len(self._grid)]
        nearest = min(candidates, key=lambda i: abs(self._grid[i] - time))
        if abs(self._grid[nearest] - time) > self._tolerance:
            raise self._off_grid_error(name, time)
        return nearest

    def _indices_of(self, times) -> torch.Tensor:
        if isinstance(times, torch.Tensor):
            times = times.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        else:
            times = torch.as_tensor(list(times), dtype=torch.float64)
        if times.numel() < 2:
            raise ValueError(f"times must hold at least 2 points, got {times.numel()}")
        bad = (times < self.start - self._tolerance) | (times > self.end + self._tolerance)
        if bad.any():
            time = float(times[bad][0])
            raise ValueError(
                f"time {time!r} lies outside the Brownian path's interval [{self.start}, {self.end}]"
            )
        position = torch.searchsorted(self._grid_tensor, times).clamp_(1, len(self._grid) - 1)
        below, above = self._grid_tensor[position - 1], self._grid_tensor[position]
        indices = torch.where((times - below).abs() <= (above - times).abs(), position - 1, position)
        distance = (self._grid_tensor[indices] - times).abs()
        if (distance > self._tolerance).any():
            time = float(times[distance > self._tolerance][0])
            raise self._off_grid_error("time", time)
        return indices

    def _off_grid_error(self, name: str, time: float) -> ValueError:
        return ValueError(
            f"{name}={time!r} is not on the grid of this BrownianPath "
            f"(smallest grid step {self._min_step:g}); "
            "BrownianPath answers only grid-aligned queries: build it with a dt that divides the solver's "
            "step, or pass the solver's grid as grid=..."
        )

    def _walk_direction(self, indices: torch.Tensor) -> int:
        """+1 / -1 when the indices walk the grid one step at a time, else 0."""
        steps = indices[1:] - indices[:-1]
        if bool((steps == 1).all()):
            return 1
        if bool((steps == -1).all()):
            return -1
        return 0

    def _increments_between(self, indices: torch.Tensor) -> torch.Tensor:
        direction = self._walk_direction(indices)
        first, last = int(indices[0]), int(indices[-1])
        if direction == 1:
            return self._increments[first:last]
        if direction == -1:
            return self._increments[last:first].flip(0).neg_()  # flip copies; negate that copy in place
        fine_steps, segment_of_step, forward = self._fine_steps_of_segments(indices)
        summed = self._segment_sum(
            self._select(self._increments, fine_steps), segment_of_step, len(indices) - 1
        )
        sign = torch.where(forward, 1.0, -1.0).to(dtype=self.dtype, device=self.device)
        return summed.mul_(sign.reshape((-1,) + (1,) * len(self.shape)))

    def _levy_areas_between(self, indices: torch.Tensor) -> torch.Tensor:
        if self._levy_areas is None:
            raise ValueError(
                "this BrownianPath was built without Lévy areas; build it with levy_area=True "
                "(the 'srk' method needs them)"
            )
        direction = self._walk_direction(indices)
        first, last = int(indices[0]), int(indices[-1])
        if direction == 1:
            return self._levy_areas[first:last]
        if direction == -1:
            # Reversed single step [τ_{i+1} → τ_i]: ∫ (W(s) - W(τ_{i+1})) ds oriented = h ΔW_i - ΔZ_i.
            steps = slice(last, first)
            reversed_areas = self._step_column[steps] * self._increments[steps] - self._levy_areas[steps]
            return reversed_areas.flip(0)
        fine_steps, segment_of_step, forward = self._fine_steps_of_segments(indices)
        # For a segment [τ_lo, τ_hi] covering fine steps j, with W measured from the segment's start:
        #   forward  (ta = τ_lo): ΔZ = Σ_j [ΔW_j (τ_hi - τ_{j+1}) + ΔZ_j]
        #   backward (ta = τ_hi): ΔZ = Σ_j [ΔW_j (τ_{j+1} - τ_lo) - ΔZ_j]
        starts, stops = indices[:-1], indices[1:]
        low, high = torch.minimum(starts, stops), torch.maximum(starts, stops)
        step_forward = forward[segment_of_step]
        step_end = self._grid_tensor[fine_steps + 1]
        increment_weight = torch.where(
            step_forward,
            self._grid_tensor[high[segment_of_step]] - step_end,
            step_end - self._grid_tensor[low[segment_of_step]],
        )
        area_sign = torch.where(step_forward, 1.0, -1.0).to(torch.float64)
        column = (-1,) + (1,) * len(self.shape)
        values = self._select(self._levy_areas, fine_steps) * area_sign.to(
            device=self.device, dtype=self.dtype
        ).reshape(column)
        values.addcmul_(
            self._select(self._increments, fine_steps),
            increment_weight.to(device=self.device, dtype=self.dtype).reshape(column),
        )
        return self._segment_sum(values, segment_of_step, len(indices) - 1)

    def _fine_steps_of_segments(self, indices: torch.Tensor):
        """Grid steps covered by each query segment, sorted by step, with their segment numbers.

        Exact sums over the covered fine steps replace cumulative sums: no float64 copy of the whole path,
        and no loss of precision from differencing large running totals.
        """
        starts, stops = indices[:-1], indices[1:]
        low, high = torch.minimum(starts, stops), torch.maximum(starts, stops)
        lengths = high - low
        segment_of_step = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        offsets = torch.cumsum(lengths, 0) - lengths
        fine_steps = low[segment_of_step] + torch.arange(int(lengths.sum())) - offsets[segment_of_step]
        order = torch.argsort(fine_steps, stable=True)
        return fine_steps[order], segment_of_step[order], stops >= starts

    @staticmethod
    def _select(values: torch.Tensor, fine_steps: torch.Tensor) -> torch.Tensor:
        """Rows ``fine_steps`` of ``values``: a view when they are one contiguous run (monotone queries)."""
        if fine_steps.numel() > 0 and int(fine_steps[-1] - fine_steps[0]) + 1 == fine_steps.numel():
            if fine_steps.numel() == 1 or bool((fine_steps[1:] > fine_steps[:-1]).all()):
                return values[int(fine_steps[0]) : int(fine_steps[-1]) + 1]
        return values.index_select(0, fine_steps.to(values.device))

    def _segment_sum(self, values: torch.Tensor, segment_of_step: torch.Tensor, count: int) -> torch.Tensor:
        total = torch.zeros((count, *self.shape), dtype=self.dtype, device=self.device)
        return total.index_add_(0, segment_of_step.to(self.device), values)


# ---------------------------------------------------------------------- helpers


def _finite_float(value, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar time, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def _check_shape(shape) -> torch.Size:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape
    ):
        raise TypeError(f"shape must be a tuple of positive integers, got {shape!r}")
    return torch.Size(shape)


def _build_grid(t0: float, t1: float, dt, grid) -> list[float]:
    if (dt is None) == (grid is None):
        raise ValueError("give exactly one of dt (uniform grid) and grid (explicit times)")
    if dt is not None:
        try:
            step = float(dt)
        except (TypeError, ValueError):
            raise TypeError(f"dt must be a positive number, got {dt!r}") from None
        if not (step > 0 and math.isfinite(step)):
            raise ValueError(f"dt must be a positive finite number, got {dt!r}")
        count = max(1, math.ceil(abs(t1 - t0) / step - 1e-9))
        return [t0 + (t1 - t0) * k / count for k in range(count)] + [t1]
    if isinstance(grid, torch.Tensor):
        times = grid.detach().to(device="cpu", dtype=torch.float64).reshape(-1).tolist()
    else:
        try:
            times = [float(time) for time in grid]
        except (TypeError, ValueError):
            raise TypeError(f"grid must be a sequence of times, got {grid!r}") from None
    if len(times) < 2 or not all(math.isfinite(time) for time in times):
        raise ValueError(f"grid must hold at least 2 finite times, got {len(times)}")
    if times[0] != t0 or times[-1] != t1:
        raise ValueError(f"grid must run from t0={t0} to t1={t1}, got [{times[0]}, ..., {times[-1]}]")
    differences = [b - a for a, b in pairwise(times)]
    if not (all(d > 0 for d in differences) or all(d < 0 for d in differences)):
        raise ValueError("grid must be strictly increasing or strictly decreasing")
    return times


def _make_generator(generator, seed, device: torch.device):
    if generator is not None and seed is not None:
        raise ValueError("give at most one of generator and seed")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != device.type:
            raise ValueError(
                f"generator is on device {generator.device} but the path is drawn on {device}; "
                "create it with torch.Generator(device=...)"
            )
        return generator, None
    if seed is None:
        # A fresh, recorded seed keeps even unseeded paths reconstructible.
        seed = torch.Generator().seed()
    elif isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    private = torch.Generator(device=device)
    private.manual_seed(seed)
    return private, seed
