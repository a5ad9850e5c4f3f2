"""PDE-FIND's derivatives of noisy data, local polynomial fits, as a pysindy differentiation method.

pysindy 2.1's :class:`~pysindy.SmoothedFiniteDifference` smooths then takes finite differences, which
amplifies the remaining noise in every derivative order; PDE-FIND (Rudy et al. 2017) instead fits a
polynomial of degree ``polyorder`` on a window around each point and differentiates the polynomial.  On a
uniform grid that least-squares fit is the Savitzky–Golay filter with ``deriv=d``.
"""

from __future__ import annotations

import numpy as np
from pysindy.differentiation import BaseDifferentiation
from scipy.signal import savgol_filter

from ._adapter import UNIFORM_TOLERANCE, _spacing_deviation


class PolynomialFitDerivative(BaseDifferentiation):
    """Derivative of order ``d`` from a least-squares polynomial fit on a sliding window.

    Used by :class:`pysindy.PDELibrary` as ``differentiation_method`` (it calls the class with ``d`` and
    ``axis``) and for time derivatives.

    Parameters
    ----------
    d : int
        Derivative order, ``1 <= d <= polyorder``.
    axis : int
        Axis to differentiate along.
    window_length : int
        Odd number of points of the fitting window (PDE-FIND's ``2 * width + 1``).
    polyorder : int
        Degree of the fitted polynomial, below ``window_length``.
    periodic : bool
        Wrap the window around the ends (periodic grids); otherwise the end windows are fitted once and
        evaluated off-centre.

    Examples
    --------
    >>> x = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    >>> derivative = PolynomialFitDerivative(d=2, window_length=9, polyorder=4, periodic=True)
    >>> bool(np.abs(derivative(np.sin(x), x) + np.sin(x)).max() < 1e-4)
    True
    """

    def __init__(
        self, d: int = 1, axis: int = 0, window_length: int = 11, polyorder: int = 4, periodic: bool = False
    ):
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ValueError(f"d must be a positive integer derivative order, got {d!r}")
        if (
            isinstance(window_length, bool)
            or not isinstance(window_length, int | np.integer)
            or window_length < 3
            or window_length % 2 == 0
        ):
            raise ValueError(f"window_length must be an odd integer >= 3, got {window_length!r}")
        if (
            isinstance(polyorder, bool)
            or not isinstance(polyorder, int | np.integer)
            or not d <= polyorder < window_length
        ):
            raise ValueError(
                f"polyorder must be an integer with d = {d} <= polyorder < window_length = "
                f"{window_length}, got {polyorder!r}"
            )
        self.d = int(d)
        self.axis = axis
        self.window_length = int(window_length)
        self.polyorder = int(polyorder)
        self.periodic = bool(periodic)

    def _differentiate(self, x, t=1.0):
        values = np.asarray(x)
        if np.isscalar(t):
            step = float(t)
        else:
            grid = np.asarray(t, dtype=float).reshape(-1)
            if _spacing_deviation(grid) > UNIFORM_TOLERANCE:
                raise ValueError(
                    "PolynomialFitDerivative needs a uniform grid; the grid given has spacings "
                    f"from {np.diff(grid).min():.6g} to {np.diff(grid).max():.6g}"
                )
            step = float(np.mean(np.diff(grid)))
        if not step > 0:
            raise ValueError(f"the grid step must be positive, got {step}")
        length = values.shape[self.axis]
        if length < self.window_length:
            raise ValueError(
                f"PolynomialFitDerivative needs at least window_length = {self.window_length} "
                f"points along the axis, got {length}"
            )
        derivative = savgol_filter(
            values,
            self.window_length,
            self.polyorder,
            deriv=self.d,
            delta=step,
            axis=self.axis,
            mode="wrap" if self.periodic else "interp",
        )
        self.smoothed_x_ = x
        return derivative
