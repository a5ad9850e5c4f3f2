"""Estimators: PDE-FIND in strong and weak form (:class:`PDEFind`) and SINDy for ODE data (:class:`SINDyODE`).

Both build pysindy 2.1 libraries (:class:`~pysindy.PDELibrary`, :class:`~pysindy.WeakPDELibrary`,
:class:`~pysindy.PolynomialLibrary`) and differentiation methods on the arrays of
:func:`physml.discovery.from_dataset`, then regress with :func:`physml.discovery.sparse_regression` (a
threshold sweep chosen on held-out rows, optional bagging ensemble) and return an
:class:`~physml.discovery.IdentifiedEquation`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pysindy as ps
from pysindy.utils import AxesArray, comprehend_axes
from tqdm.auto import tqdm

from ._adapter import DiscoveryData, from_dataset
from ._differentiation import PolynomialFitDerivative
from ._equation import IdentifiedEquation
from ._regression import OPTIMIZERS, check_positive, check_threshold, legacy_numpy_seed, sparse_regression
from ._terms import parse_pysindy_name

DIFFERENTIATIONS = ("finite_difference", "polynomial", "spectral")
FORMS = ("strong", "weak")
#: Library values per chunk of frames (bounds the memory of 2-D libraries).
CHUNK_VALUES = 20_000_000


def _integer(value, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be an integer {bound}, got {value}")
    return value


def _optional_integer(value, name: str, minimum: int):
    return None if value is None else _integer(value, name, minimum)


def _as_data(data, variables) -> DiscoveryData:
    if isinstance(data, DiscoveryData):
        if variables is not None:
            raise ValueError("variables is for xarray datasets; a DiscoveryData already chose its fields")
        return data
    return from_dataset(data, variables)


def _finite_difference_stencil(derivative_order: int, accuracy: int) -> int:
    """Points of pysindy's centred finite-difference stencil for this derivative and accuracy order."""
    return 2 * ((derivative_order + 1) // 2) - 1 + accuracy


class _SparseDiscovery:
    """Shared configuration checks and regression plumbing."""

    def _check_regression_options(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.thresholds is not None:
            values = np.atleast_1d(np.asarray(self.thresholds, dtype=object))
            if values.size == 0:
                raise ValueError("thresholds must hold at least one value (or be None for the default sweep)")
            for value in values:
                check_threshold(value, "thresholds")
        if (
            isinstance(self.validation_fraction, bool)
            or not isinstance(self.validation_fraction, int | float)
            or not 0 < float(self.validation_fraction) <= 0.5
        ):
            raise ValueError(f"validation_fraction must be in (0, 0.5], got {self.validation_fraction!r}")
        check_threshold(self.l0_penalty, "l0_penalty")
        check_threshold(self.ridge, "ridge")
        check_positive(self.relax_coefficient, "relax_coefficient")
        _integer(self.max_iterations, "max_iterations", 1)
        _integer(self.ensemble_models, "ensemble_models", 0)
        _integer(self.seed, "seed", 0)

    def _regress(self, features, targets, data: DiscoveryData, names, form) -> IdentifiedEquation:
        result = sparse_regression(
            features,
            targets,
            data.variables,
            optimizer=self.optimizer,
            thresholds=self.thresholds,
            validation_fraction=float(self.validation_fraction),
            l0_penalty=float(self.l0_penalty),
            prune=self.prune,
            ridge=float(self.ridge),
            relax_coefficient=float(self.relax_coefficient),
            max_iterations=self.max_iterations,
            ensemble_models=self.ensemble_models,
            seed=self.seed,
        )
        terms = tuple(parse_pysindy_name(name, data.variables, len(data.spatial_dims)) for name in names)
        std = inclusion = None
        if result.ensemble is not None:
            std = result.ensemble.std(axis=0)
            inclusion = (result.ensemble != 0).mean(axis=0)
        self.regression_ = result
        return IdentifiedEquation(
            data.variables,
            data.spatial_dims,
            terms,
            result.coefficients,
            form,
            result.sweeps,
            std,
            inclusion,
            data.lengths,
            data.periodic,
        )

    # sklearn-like surface
    def simulate(self, initial_state, times, **options):
        """Integrate the identified equation (see :meth:`IdentifiedEquation.simulate`)."""
        return self._fitted().simulate(initial_state, times, **options)

    def _fitted(self) -> IdentifiedEquation:
        if not hasattr(self, "equation_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(dataset) first")
        return self.equation_

    def __str__(self) -> str:
        return str(self.equation_) if hasattr(self, "equation_") else f"{type(self).__name__}(unfitted)"


class PDEFind(_SparseDiscovery):
    """PDE-FIND (Rudy et al. 2017) on pysindy 2.1: sparse regression of u_t on a library of candidate terms.

    ``form="strong"`` differentiates the data (finite differences for clean data, local polynomial fits
    for noisy data, or spectral derivatives on periodic grids) and regresses point-wise;
    ``form="weak"`` integrates against test functions on random space-time subdomains
    (:class:`pysindy.WeakPDELibrary`), which tolerates noise far better.  The threshold is chosen on
    held-out rows (TrainSTRidge); see :func:`physml.discovery.sparse_regression`.

    Parameters
    ----------
    form : {"strong", "weak"}
    library_degree : int
        Degree of the polynomial in the fields (PDE-FIND's P).
    derivative_order : int
        Highest spatial derivative (PDE-FIND's D).
    include_bias : bool
        Include the constant term.
    differentiation : {"finite_difference", "polynomial", "spectral"}
        Strong form: how spatial derivatives are taken.  Time derivatives use finite differences, or
        polynomial fits when ``differentiation="polynomial"``.
    finite_difference_order : int
        Accuracy order of the finite differences (pysindy's ``order``).
    polynomial_window, polynomial_degree : int
        Window (odd number of points) and degree of the spatial polynomial fits.
    time_polynomial_window, time_polynomial_degree : int, optional
        The same for the time derivative (default: the spatial ones).
    optimizer : {"stlsq", "sr3"}
        Sequentially thresholded ridge (STRidge) or SR3 with an L0 penalty; both take the same
        thresholds (SR3's weight is converted, λ = threshold² / (2ν)).
    thresholds : float or sequence of float, optional
        Scale-free thresholds: shares of the time derivative a term must carry (default sweep 0 and
        1e-4 ... 1e2); one value skips the selection.
    validation_fraction : float
        Rows held out to choose the threshold, in (0, 0.5].
    l0_penalty : float
        Penalty per term added to the held-out relative residual.
    prune : bool
        Greedy backward pruning of the selected terms on the same held-out score.
    ridge, relax_coefficient, max_iterations
        STLSQ ridge weight, SR3's ν, iterations.
    ensemble_models : int
        Bootstrap models for coefficient uncertainty (0: none).
    spatial_subsample : int, optional
        Strong form: keep this many random grid points (the same ones every frame), as PDE-FIND does for
        2-D data; default all.
    time_subsample : int, optional
        Strong form: keep this many evenly spaced frames; default all.
    weak_subdomains : int
        Weak form: number of random space-time subdomains (pysindy's K).
    weak_half_width : float or sequence of float, optional
        Weak form: subdomain half-widths per space-time axis (default pysindy's 1/20 of each extent).
    weak_test_degree : int
        Weak form: polynomial degree of the test functions (pysindy's p).
    weak_tiles : int
        Weak form: split each spatial dim into this many tiles and draw ``weak_subdomains / tiles``
        subdomains inside each.  pysindy 2.1 evaluates every library term on the whole space-time grid,
        so memory grows as points × terms (about 12 GB for PDE-FIND's 256² reaction–diffusion data with
        110 terms); tiles bound it.  The subdomain size is set from the whole domain, so results do not
        depend on tiling beyond the random draw.
    seed : int
        Seeds the held-out split, the subsamples, the weak subdomains and the bootstrap.
    progress : bool, optional
        tqdm bar over the library's chunks of frames or weak-form tiles (default: only on a terminal).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    >>> t = np.linspace(0, 1, 41)
    >>> # the heat equation u_t = 0.5 u_xx, exactly
    >>> u = np.exp(-0.5 * t)[:, None] * np.sin(x) + np.exp(-4.5 * t)[:, None] * np.sin(3 * x)
    >>> dataset = xr.Dataset({"u": (("sample", "time", "x"), u[None])}, coords={"time": t, "x": x},
    ...                      attrs={"physml_bc_x": "periodic"})
    >>> model = PDEFind(library_degree=2, derivative_order=2, differentiation="spectral",
    ...                 finite_difference_order=4).fit(dataset)
    >>> print(model.equation_.equations(precision=3)[0])
    u_t = 0.500 u_xx
    """

    def __init__(
        self,
        *,
        form: str = "strong",
        library_degree: int = 3,
        derivative_order: int = 3,
        include_bias: bool = True,
        differentiation: str = "finite_difference",
        finite_difference_order: int = 2,
        polynomial_window: int = 21,
        polynomial_degree: int = 4,
        time_polynomial_window: int | None = None,
        time_polynomial_degree: int | None = None,
        optimizer: str = "stlsq",
        thresholds=None,
        validation_fraction: float = 0.2,
        l0_penalty: float = 1e-3,
        prune: bool = True,
        ridge: float = 1e-5,
        relax_coefficient: float = 1.0,
        max_iterations: int = 20,
        ensemble_models: int = 0,
        spatial_subsample: int | None = None,
        time_subsample: int | None = None,
        weak_subdomains: int = 200,
        weak_half_width=None,
        weak_test_degree: int = 4,
        weak_tiles: int = 1,
        seed: int = 0,
        progress: bool | None = None,
    ):
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if differentiation not in DIFFERENTIATIONS:
            raise ValueError(f"differentiation must be one of {DIFFERENTIATIONS}, got {differentiation!r}")
        self.form = form
        self.library_degree = _integer(library_degree, "library_degree", 1, 8)
        self.derivative_order = _integer(derivative_order, "derivative_order", 1, 6)
        self.include_bias = bool(include_bias)
        self.differentiation = differentiation
        self.finite_difference_order = _integer(finite_difference_order, "finite_difference_order", 1, 8)
        self.polynomial_window = _integer(polynomial_window, "polynomial_window", 3)
        self.polynomial_degree = _integer(polynomial_degree, "polynomial_degree", 1)
        self.time_polynomial_window = _optional_integer(time_polynomial_window, "time_polynomial_window", 3)
        self.time_polynomial_degree = _optional_integer(time_polynomial_degree, "time_polynomial_degree", 1)
        if differentiation == "polynomial":
            # Constructing the derivative checks window parity and degree against the derivative order.
            PolynomialFitDerivative(
                d=self.derivative_order,
                window_length=self.polynomial_window,
                polyorder=self.polynomial_degree,
            )
            PolynomialFitDerivative(d=1, window_length=self._time_window, polyorder=self._time_degree)
        self.optimizer = optimizer
        self.thresholds = thresholds
        self.validation_fraction = validation_fraction
        self.l0_penalty = l0_penalty
        self.prune = bool(prune)
        self.ridge = ridge
        self.relax_coefficient = relax_coefficient
        self.max_iterations = max_iterations
        self.ensemble_models = ensemble_models
        self.spatial_subsample = _optional_integer(spatial_subsample, "spatial_subsample", 1)
        self.time_subsample = _optional_integer(time_subsample, "time_subsample", 1)
        self.weak_subdomains = _integer(weak_subdomains, "weak_subdomains", 1)
        self.weak_half_width = weak_half_width
        self.weak_test_degree = _integer(weak_test_degree, "weak_test_degree", 1)
        self.weak_tiles = _integer(weak_tiles, "weak_tiles", 1)
        self.progress = progress
        self.seed = seed
        self._check_regression_options()

    @property
    def _time_window(self) -> int:
        return self.time_polynomial_window or self.polynomial_window

    @property
    def _time_degree(self) -> int:
        return self.time_polynomial_degree or self.polynomial_degree

    # ------------------------------------------------------------------ checks
    def _check_data(self, data: DiscoveryData) -> None:
        if not data.is_pde:
            raise ValueError("PDEFind needs a dataset with spatial dims; for ODE data use SINDyODE")
        if self.form == "strong":
            if self.differentiation == "finite_difference":
                needed_time = self.finite_difference_order + 1
                reason = (
                    f"a first time derivative by finite differences of order {self.finite_difference_order}"
                )
                needed_space = _finite_difference_stencil(self.derivative_order, self.finite_difference_order)
            elif self.differentiation == "polynomial":
                needed_time = self._time_window
                reason = f"a time derivative by polynomial fits on windows of {self._time_window} points"
                needed_space = self.polynomial_window
            else:
                needed_time = self.finite_difference_order + 1
                reason = (
                    f"a first time derivative by finite differences of order {self.finite_difference_order}"
                )
                needed_space = 2 * self.derivative_order + 1
            if data.n_times < needed_time:
                raise ValueError(
                    f"the dataset has {data.n_times} time points; {reason} needs at least {needed_time}"
                )
            short = [
                (dim, n)
                for dim, n in zip(data.spatial_dims, data.spatial_shape, strict=True)
                if n < needed_space
            ]
            if short:
                raise ValueError(
                    f"spatial derivatives up to order {self.derivative_order} with "
                    f"differentiation={self.differentiation!r} need at least {needed_space} points "
                    f"per spatial dim; the dataset has {dict(short)}"
                )
            if self.differentiation in ("polynomial", "spectral") and not data.space_is_uniform():
                raise ValueError(
                    f"differentiation={self.differentiation!r} needs a uniform spatial grid; the "
                    f"dataset's spacings vary by more than a relative 1e-5"
                )
            if self.differentiation == "polynomial" and not data.time_is_uniform():
                raise ValueError(
                    "differentiation='polynomial' needs a uniform time grid; the dataset's time "
                    "steps vary by more than a relative 1e-5 (use 'finite_difference')"
                )
            if self.differentiation == "spectral" and not all(data.periodic):
                raise ValueError(
                    f"differentiation='spectral' needs periodic spatial dims; the dataset has "
                    f"periodic = {dict(zip(data.spatial_dims, data.periodic, strict=True))}"
                )
        else:
            needed = max(2 * (self.weak_test_degree + 1), 5)
            if data.n_times < needed:
                raise ValueError(
                    f"the dataset has {data.n_times} time points; the weak form with test functions "
                    f"of degree {self.weak_test_degree} needs at least {needed}"
                )

    # ------------------------------------------------------------------ libraries
    def _function_library(self):
        return ps.PolynomialLibrary(degree=self.library_degree, include_bias=False)

    def _spatial_differentiation(self, data: DiscoveryData):
        periodic = all(data.periodic)
        if self.differentiation == "finite_difference":
            return ps.FiniteDifference, {"order": self.finite_difference_order, "periodic": periodic}
        if self.differentiation == "polynomial":
            return PolynomialFitDerivative, {
                "window_length": self.polynomial_window,
                "polyorder": self.polynomial_degree,
                "periodic": periodic,
            }
        return ps.SpectralDerivative, {}

    def _time_differentiation(self):
        if self.differentiation == "polynomial":
            return PolynomialFitDerivative(
                d=1, axis=-2, window_length=self._time_window, polyorder=self._time_degree
            ), self._time_window // 2
        return ps.FiniteDifference(order=self.finite_difference_order, axis=-2), max(
            1, self.finite_difference_order // 2
        )

    def _spatial_trim(self, data: DiscoveryData) -> int:
        """Points dropped at each end of non-periodic dims, where the derivatives are one-sided."""
        if all(data.periodic):
            return 0
        if self.differentiation == "polynomial":
            return self.polynomial_window // 2
        return _finite_difference_stencil(self.derivative_order, self.finite_difference_order) // 2

    def strong_system(self, data: DiscoveryData):
        """Library matrix, time derivatives and feature names of the strong form.

        Returns
        -------
        features : numpy.ndarray, shape (n_rows, n_terms)
        targets : numpy.ndarray, shape (n_rows, n_variables)
        names : list of str
            pysindy's feature names (inputs ``x0, x1, ...``).
        """
        method, options = self._spatial_differentiation(data)
        library = ps.PDELibrary(
            function_library=self._function_library(),
            derivative_order=self.derivative_order,
            spatial_grid=data.spatial_grid(),
            include_bias=self.include_bias,
            differentiation_method=method,
            diff_kwargs=options,
        )
        time_derivative, time_trim = self._time_differentiation()
        generator = np.random.default_rng([self.seed, 1])
        trim = self._spatial_trim(data)
        interior = tuple(slice(trim, n - trim) if trim else slice(None) for n in data.spatial_shape)
        interior_shape = tuple(len(range(n)[s]) for n, s in zip(data.spatial_shape, interior, strict=True))
        n_points = int(np.prod(interior_shape))
        if any(n <= 0 for n in interior_shape):
            raise ValueError(
                f"the spatial grid {data.spatial_shape} is too small for derivative stencils that drop "
                f"{trim} points at each non-periodic end"
            )
        points = None
        if self.spatial_subsample is not None and self.spatial_subsample < n_points:
            points = np.sort(generator.choice(n_points, self.spatial_subsample, replace=False))
        frames = np.arange(time_trim, data.n_times - time_trim)
        if len(frames) == 0:
            raise ValueError(
                f"the dataset has {data.n_times} time points: none is left after dropping the "
                f"{time_trim} at each end where the time derivative is one-sided"
            )
        if self.time_subsample is not None and self.time_subsample < len(frames):
            frames = frames[
                np.unique(np.linspace(0, len(frames) - 1, self.time_subsample).round().astype(int))
            ]
        library.fit([AxesArray(data.fields[0][..., :1, :], comprehend_axes(data.fields[0][..., :1, :]))])
        names = library.get_feature_names([f"x{i}" for i in range(len(data.variables))])
        n_features = len(names)
        chunk = max(1, CHUNK_VALUES // max(1, int(np.prod(data.spatial_shape)) * n_features))
        feature_rows, target_rows = [], []
        bar = tqdm(
            total=data.n_samples * math.ceil(len(frames) / chunk),
            desc="PDE-FIND library",
            unit="chunk",
            disable=None if self.progress is None else not self.progress,
        )
        for trajectory in data.trajectories():
            rates = np.asarray(time_derivative(trajectory, data.times))
            for start in range(0, len(frames), chunk):
                bar.update()
                selected = frames[start : start + chunk]
                block = trajectory[..., selected, :]
                values = np.asarray(library.transform([AxesArray(block, comprehend_axes(block))])[0])
                values = values[interior].reshape(n_points, len(selected), n_features)
                target = rates[..., selected, :][interior].reshape(n_points, len(selected), -1)
                if points is not None:
                    values, target = values[points], target[points]
                feature_rows.append(values.reshape(-1, n_features))
                target_rows.append(target.reshape(-1, target.shape[-1]))
        bar.close()
        return np.concatenate(feature_rows), np.concatenate(target_rows), names

    def weak_system(self, data: DiscoveryData):
        """Weak-form library integrals, time-derivative integrals and feature names (see strong_system)."""
        extents = np.array([*(c[-1] - c[0] for c in data.coordinates), data.times[-1] - data.times[0]])
        if self.weak_half_width is None:
            half_width = extents / 20.0  # pysindy's default, fixed from the whole domain for every tile
        else:
            half_width = np.atleast_1d(np.asarray(self.weak_half_width, dtype=float))
            if half_width.size == 1:
                half_width = np.repeat(half_width, extents.size)
            if half_width.size != extents.size or not np.all((half_width > 0) & (half_width < extents / 2)):
                raise ValueError(
                    f"weak_half_width must be positive and below half the extent of each space-time "
                    f"axis {extents.tolist()}, got {half_width.tolist()}"
                )
        spacings = np.array([*(np.diff(c).max() for c in data.coordinates), np.diff(data.times).max()])
        if np.any(half_width <= 1.01 * spacings):
            raise ValueError(f"weak_half_width {half_width.tolist()} must exceed the grid spacing "
                             f"{spacings.tolist()} along every space-time axis (each subdomain needs at "
                             f"least 2 grid points per axis); give a larger weak_half_width")
        tiles = []
        for n in data.spatial_shape:
            edges = np.linspace(0, n, self.weak_tiles + 1).round().astype(int)
            tiles.append([slice(start, stop) for start, stop in zip(edges[:-1], edges[1:], strict=True)])
        boxes = list(itertools.product(*tiles))
        per_box = math.ceil(self.weak_subdomains / len(boxes))
        names = None
        feature_blocks, target_blocks = [], []
        for index, box in enumerate(tqdm(boxes, desc="weak-form tiles", unit="tile",
                                         disable=None if self.progress is None else not self.progress)):
            tile = data.crop(box) if len(boxes) > 1 else data
            tile_extents = np.array([c[-1] - c[0] for c in tile.coordinates])
            if np.any(half_width[:-1] >= tile_extents / 2):
                raise ValueError(
                    f"weak_tiles = {self.weak_tiles} makes tiles of extent {tile_extents.tolist()}, too "
                    f"small for subdomains of half-width {half_width[:-1].tolist()}: use fewer tiles or "
                    f"a smaller weak_half_width"
                )
            with legacy_numpy_seed(self.seed * 7919 + index):  # pysindy draws the subdomains from np.random
                library = ps.WeakPDELibrary(
                    function_library=self._function_library(),
                    derivative_order=self.derivative_order,
                    spatiotemporal_grid=tile.spatiotemporal_grid(),
                    include_bias=self.include_bias,
                    K=per_box,
                    H_xt=half_width.copy(),
                    p=self.weak_test_degree,
                )
            trajectories = [
                AxesArray(trajectory, comprehend_axes(trajectory)) for trajectory in tile.trajectories()
            ]
            library.fit(trajectories)
            feature_blocks += [np.asarray(values) for values in library.transform(trajectories)]
            target_blocks += [
                np.asarray(library.convert_u_dot_integral(trajectory)) for trajectory in trajectories
            ]
            names = library.get_feature_names([f"x{i}" for i in range(len(data.variables))])
        return np.concatenate(feature_blocks), np.concatenate(target_blocks), names

    # ------------------------------------------------------------------ fit / score
    def fit(self, data, variables=None) -> PDEFind:
        """Identify the equation of ``data`` (an xarray dataset of the physml schema, or DiscoveryData).

        Sets ``equation_`` (:class:`IdentifiedEquation`), ``regression_`` (sweeps, ensemble) and
        ``n_rows_`` (regression rows) and returns ``self``.
        """
        data = _as_data(data, variables)
        self._check_data(data)
        system = self.strong_system(data) if self.form == "strong" else self.weak_system(data)
        features, targets, names = system
        self.n_rows_ = features.shape[0]
        self.equation_ = self._regress(features, targets, data, names, self.form)
        self.data_ = data
        return self

    def score(self, data, variables=None) -> float:
        """R² of the identified model on the regression targets of ``data`` (time derivatives, or their
        weak integrals), over all fields."""
        equation = self._fitted()
        data = _as_data(data, variables)
        self._check_data(data)
        features, targets, _ = self.strong_system(data) if self.form == "strong" else self.weak_system(data)
        prediction = features @ equation.coefficients.T
        keep = np.all(np.isfinite(features), axis=1)
        residual = float(np.sum((prediction[keep] - targets[keep]) ** 2))
        total = float(np.sum((targets[keep] - targets[keep].mean(axis=0)) ** 2))
        return 1.0 - residual / total if total > 0 else math.nan


class SINDyODE(_SparseDiscovery):
    """SINDy for ODE datasets (dims ``sample, time``; one data variable per state).

    A polynomial library of the states, time derivatives by finite differences (or polynomial fits for
    noisy data), and the same threshold selection and ensembling as :class:`PDEFind`.

    Parameters
    ----------
    library_degree : int
        Degree of the polynomial library.
    include_bias : bool
    differentiation : {"finite_difference", "polynomial"}
    finite_difference_order : int
    polynomial_window, polynomial_degree : int
        Polynomial fits of the time derivative when ``differentiation="polynomial"``.
    optimizer, thresholds, validation_fraction, l0_penalty, prune, ridge, relax_coefficient,
    max_iterations, ensemble_models, seed
        As in :class:`PDEFind`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.linspace(0, 2, 201)
    >>> x, y = np.exp(-t), 2 * np.exp(-3 * t)             # x' = -x, y' = -3 y
    >>> dataset = xr.Dataset({"x": (("sample", "time"), x[None]), "y": (("sample", "time"), y[None])},
    ...                      coords={"time": t})
    >>> model = SINDyODE(library_degree=2, finite_difference_order=4).fit(dataset)
    >>> print("\\n".join(model.equation_.equations(precision=3)))
    x_t = -1.000 x
    y_t = -3.000 y
    """

    def __init__(
        self,
        *,
        library_degree: int = 2,
        include_bias: bool = True,
        differentiation: str = "finite_difference",
        finite_difference_order: int = 2,
        polynomial_window: int = 9,
        polynomial_degree: int = 3,
        optimizer: str = "stlsq",
        thresholds=None,
        validation_fraction: float = 0.2,
        l0_penalty: float = 1e-3,
        prune: bool = True,
        ridge: float = 1e-5,
        relax_coefficient: float = 1.0,
        max_iterations: int = 20,
        ensemble_models: int = 0,
        seed: int = 0,
    ):
        if differentiation not in ("finite_difference", "polynomial"):
            raise ValueError(
                f"differentiation must be 'finite_difference' or 'polynomial', got {differentiation!r}"
            )
        self.library_degree = _integer(library_degree, "library_degree", 1, 8)
        self.include_bias = bool(include_bias)
        self.differentiation = differentiation
        self.finite_difference_order = _integer(finite_difference_order, "finite_difference_order", 1, 8)
        self.polynomial_window = _integer(polynomial_window, "polynomial_window", 3)
        self.polynomial_degree = _integer(polynomial_degree, "polynomial_degree", 1)
        if differentiation == "polynomial":
            PolynomialFitDerivative(
                d=1, window_length=self.polynomial_window, polyorder=self.polynomial_degree
            )
        self.optimizer = optimizer
        self.thresholds = thresholds
        self.validation_fraction = validation_fraction
        self.l0_penalty = l0_penalty
        self.prune = bool(prune)
        self.ridge = ridge
        self.relax_coefficient = relax_coefficient
        self.max_iterations = max_iterations
        self.ensemble_models = ensemble_models
        self.seed = seed
        self._check_regression_options()

    def _time_differentiation(self):
        if self.differentiation == "polynomial":
            return PolynomialFitDerivative(
                d=1, axis=0, window_length=self.polynomial_window, polyorder=self.polynomial_degree
            ), self.polynomial_window
        return ps.FiniteDifference(
            order=self.finite_difference_order, axis=0
        ), self.finite_difference_order + 1

    def system(self, data: DiscoveryData):
        """Library matrix, time derivatives and feature names (rows: samples × times)."""
        if data.is_pde:
            raise ValueError(
                f"SINDyODE needs ODE data (dims sample, time); this dataset has spatial dims "
                f"{data.spatial_dims}: use PDEFind"
            )
        derivative, needed = self._time_differentiation()
        if data.n_times < needed:
            raise ValueError(
                f"the dataset has {data.n_times} time points; the time derivative by "
                f"{self.differentiation.replace('_', ' ')} needs at least {needed}"
            )
        library = ps.PolynomialLibrary(degree=self.library_degree, include_bias=self.include_bias)
        trajectories = data.trajectories()  # each (time, variable)
        library.fit(trajectories[0])
        names = library.get_feature_names([f"x{i}" for i in range(len(data.variables))])
        features = np.concatenate([np.asarray(library.transform(trajectory)) for trajectory in trajectories])
        targets = np.concatenate(
            [np.asarray(derivative(trajectory, data.times)) for trajectory in trajectories]
        )
        return features, targets, names

    def fit(self, data, variables=None) -> SINDyODE:
        """Identify the ODE of ``data``; sets ``equation_`` and ``regression_`` and returns ``self``."""
        data = _as_data(data, variables)
        features, targets, names = self.system(data)
        self.n_rows_ = features.shape[0]
        self.equation_ = self._regress(features, targets, data, names, "ode")
        self.data_ = data
        return self

    def score(self, data, variables=None) -> float:
        """R² of the identified right-hand side against the differentiated ``data``."""
        equation = self._fitted()
        features, targets, _ = self.system(_as_data(data, variables))
        prediction = features @ equation.coefficients.T
        residual = float(np.sum((prediction - targets) ** 2))
        total = float(np.sum((targets - targets.mean(axis=0)) ** 2))
        return 1.0 - residual / total if total > 0 else math.nan
