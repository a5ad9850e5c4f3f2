"""Equation discovery from data: SINDy and PDE-FIND (strong and weak form) on pysindy 2.1.

- :func:`from_dataset`: a physml dataset (xarray) laid out for pysindy (:class:`DiscoveryData`: fields as
  ``(sample, *space, time, variable)``, the time grid, spatial and space-time grids, periodicity);
  :func:`add_noise` adds PDE-FIND's Gaussian noise (a fraction of each field's standard deviation);
- :class:`PDEFind`: PDE-FIND in strong form (finite-difference, polynomial-fit or spectral derivatives)
  or weak form (:class:`pysindy.WeakPDELibrary`); :class:`SINDyODE` for ODE data;
- :func:`sparse_regression`: STLSQ or SR3 on scale-free thresholds, the threshold chosen on held-out
  rows (PDE-FIND's TrainSTRidge), optional bagging ensemble; :func:`sr3_weight` converts a threshold to
  pysindy 2.x's SR3 weight λ = t²/(2ν) so a threshold never silently gives an all-zero model;
- :class:`IdentifiedEquation`: the readable equation, :meth:`~IdentifiedEquation.compare` against the
  true terms (relative error per term, spurious and missing terms), and
  :meth:`~IdentifiedEquation.simulate` / :meth:`~IdentifiedEquation.forecast_error` with physml.solvers.

Example
-------
>>> import numpy as np, xarray as xr
>>> from physml.discovery import PDEFind
>>> x = np.linspace(0, 2 * np.pi, 64, endpoint=False)
>>> t = np.linspace(0, 1, 41)
>>> # the heat equation u_t = 0.5 u_xx, exactly
>>> u = np.exp(-0.5 * t)[:, None] * np.sin(x) + np.exp(-4.5 * t)[:, None] * np.sin(3 * x)
>>> dataset = xr.Dataset({"u": (("sample", "time", "x"), u[None])}, coords={"time": t, "x": x},
...                      attrs={"physml_bc_x": "periodic"})
>>> model = PDEFind(library_degree=2, derivative_order=2, differentiation="spectral",
...                 finite_difference_order=4).fit(dataset)
>>> model.equation_.compare({"u": {"u_xx": 0.5}}).metrics()["terms_correct"]
1
"""

try:
    import pysindy as _pysindy
except ImportError as _error:  # pragma: no cover - depends on the installation
    raise ImportError("physml.discovery needs pysindy 2.1: pip install 'physml[sindy]'") from _error
if not str(getattr(_pysindy, "__version__", "2.1")).startswith("2.1"):  # pragma: no cover
    # 2.x changed the SR3 parameterisation, fit() and the weak form between minor releases.
    raise ImportError(f"physml.discovery is written for pysindy 2.1.x, found {_pysindy.__version__}: "
                      f"pip install 'pysindy>=2.1,<2.2'")

from ._adapter import DiscoveryData as DiscoveryData
from ._adapter import add_noise as add_noise
from ._adapter import from_dataset as from_dataset
from ._differentiation import PolynomialFitDerivative as PolynomialFitDerivative
from ._equation import EquationComparison as EquationComparison
from ._equation import IdentifiedEquation as IdentifiedEquation
from ._equation import TermComparison as TermComparison
from ._estimators import PDEFind as PDEFind
from ._estimators import SINDyODE as SINDyODE
from ._regression import ThresholdSweep as ThresholdSweep
from ._regression import sparse_regression as sparse_regression
from ._regression import sr3_weight as sr3_weight
from ._terms import Factor as Factor
from ._terms import parse_term as parse_term
from ._terms import term_name as term_name
