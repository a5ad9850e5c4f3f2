"""Sparse regression on pysindy's optimizers: a threshold sweep selected on held-out rows, SR3's
parameterisation, and bagging ensembles for coefficient uncertainty.

Thresholds are scale-free here.  Before regression every library column and the target are divided by
their Euclidean norms, so a coefficient ξ_j becomes ξ_j ‖Θ_j‖ / ‖u_t‖: the share of the time derivative
that the term carries on its own.  A threshold of 0.01 drops the terms carrying less than about 1 % of
u_t, whatever the units, grid size or number of rows.

Selection follows PDE-FIND's TrainSTRidge: the rows are split at random into a training part (default
80 %) and a held-out part; for each threshold of the sweep the model fitted on the training rows is scored
by its relative residual on the held-out rows plus ``l0_penalty`` per term, and the best threshold is kept.
A threshold sweep only visits the supports on its thresholding path, and a spurious term whose
normalised coefficient is as large as a true term's (common in the weak form, where the diffusion terms
are small) is dropped only together with that true term.  So the chosen support is then pruned greedily:
while removing one term lowers the same held-out score, the best such term is removed.  The final
coefficients are the least-squares fit of the retained terms on all rows (the held-out rows only chose
the support).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pysindy as ps

OPTIMIZERS = ("stlsq", "sr3")

#: Default sweep: 0 (least squares on the full library) then 41 thresholds from 1e-4 to 1e2.
DEFAULT_THRESHOLDS = np.concatenate([[0.0], np.geomspace(1e-4, 1e2, 41)])


def sr3_weight(threshold: float, relax_coefficient: float) -> float:
    """pysindy 2.x's L0 weight λ of SR3 equivalent to a hard threshold: λ = threshold² / (2 ν).

    pysindy 1.x took the threshold itself; passing that value as 2.x's ``reg_weight_lam`` silently
    gives an all-zero model (or a far too dense one), so physml always converts.

    Examples
    --------
    >>> sr3_weight(0.1, 1.0)
    0.005000000000000001
    """
    threshold = check_threshold(threshold)
    relax_coefficient = check_positive(relax_coefficient, "relax_coefficient")
    return threshold**2 / (2.0 * relax_coefficient)


def check_threshold(value, name: str = "threshold") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number in [0, inf), got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        meaning = " (a share of the time derivative, e.g. 0.01)" if "threshold" in name else ""
        raise ValueError(f"{name} must be a finite number in [0, inf){meaning}, got {value}")
    return value


def check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number in (0, inf), got {value}")
    return value


def make_optimizer(
    name: str,
    threshold: float,
    *,
    ridge: float = 1e-5,
    relax_coefficient: float = 1.0,
    max_iterations: int = 20,
):
    """A pysindy optimizer for normalised columns: ``"stlsq"`` (sequentially thresholded ridge, PDE-FIND's
    STRidge) or ``"sr3"`` (L0-relaxed regression, threshold converted by :func:`sr3_weight`).  Both
    refit the selected support without regularisation (``unbias``)."""
    if name == "stlsq":
        return ps.STLSQ(
            threshold=threshold, alpha=ridge, max_iter=max_iterations, normalize_columns=False, unbias=True
        )
    if name == "sr3":
        return ps.SR3(
            reg_weight_lam=sr3_weight(threshold, relax_coefficient),
            regularizer="L0",
            relax_coeff_nu=relax_coefficient,
            max_iter=max(max_iterations, 30),
            unbias=True,
        )
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


@contextlib.contextmanager
def legacy_numpy_seed(seed: int):
    """Seed numpy's global legacy generator for the block and restore its state afterwards.

    pysindy 2.1 draws the weak-form subdomains and the bagging rows from ``np.random`` with no seed
    argument; this keeps those draws reproducible without leaving global state changed.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@dataclass
class ThresholdSweep:
    """The models of a threshold sweep for one equation and the one chosen on the held-out rows."""

    variable: str
    thresholds: np.ndarray
    validation_error: np.ndarray
    n_terms: np.ndarray
    score: np.ndarray
    chosen: int
    l0_penalty: float
    pruned: list[int] = field(default_factory=list)
    final_validation_error: float = math.nan

    @property
    def threshold(self) -> float:
        return float(self.thresholds[self.chosen])

    def as_dict(self) -> dict:
        return {
            "variable": self.variable,
            "threshold": self.threshold,
            "l0_penalty": self.l0_penalty,
            "thresholds": self.thresholds.tolist(),
            "validation_error": self.validation_error.tolist(),
            "n_terms": self.n_terms.tolist(),
            "score": self.score.tolist(),
            "pruned": list(self.pruned),
            "final_validation_error": self.final_validation_error,
        }


@dataclass
class RegressionResult:
    coefficients: np.ndarray  # (n_targets, n_features) in the library's units
    sweeps: list[ThresholdSweep]
    ensemble: np.ndarray | None = None  # (n_models, n_targets, n_features)
    notes: list[str] = field(default_factory=list)


class _NormalisedSystem:
    """Columns and target divided by their norms, then compressed to ``n_features`` rows by a QR
    factorisation: ‖Θw − y‖² = ‖Rw − Qᵀy‖² + const, so every least-squares, ridge or SR3 fit of the
    sweep costs O(n_features³) instead of O(n_rows n_features²) and gives the same coefficients."""

    def __init__(self, features: np.ndarray, target: np.ndarray):
        column_norms = np.linalg.norm(features, axis=0)
        # An all-zero column (a derivative of a constant field, say) carries nothing: keep it at zero.
        self.column_norms = np.where(column_norms > 0, column_norms, 1.0)
        target_norm = float(np.linalg.norm(target))
        self.target_norm = target_norm if target_norm > 0 else 1.0
        normalised = features / self.column_norms
        scaled_target = target / self.target_norm
        self.rows = normalised, scaled_target
        if features.shape[0] > features.shape[1]:
            q, r = np.linalg.qr(normalised, mode="reduced")
            self.compressed = r, q.T @ scaled_target
        else:
            self.compressed = self.rows

    def fit(self, optimizer_name: str, threshold: float, options: dict) -> np.ndarray:
        """Coefficients in the original units of the features for one threshold."""
        matrix, target = self.compressed
        optimizer = make_optimizer(optimizer_name, threshold, **options)
        with _quiet():
            optimizer.fit(matrix, target)
        return np.asarray(optimizer.coef_).reshape(-1) * self.target_norm / self.column_norms


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        # STLSQ warns when a threshold removes every term, SR3 when it stops at max_iter: in a sweep both
        # are expected.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            from sklearn.exceptions import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)
        except ImportError:  # pragma: no cover
            pass
        yield


def _relative_residual(features, target, coefficients) -> float:
    denominator = float(np.linalg.norm(target))
    return float(np.linalg.norm(features @ coefficients - target)) / (denominator if denominator > 0 else 1.0)


def _least_squares(system: _NormalisedSystem, support: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (original units) of the columns in ``support``, zero elsewhere."""
    matrix, target = system.compressed
    coefficients = np.zeros(matrix.shape[1])
    if support.size:
        coefficients[support] = np.linalg.lstsq(matrix[:, support], target, rcond=None)[0]
    return coefficients * system.target_norm / system.column_norms


def sparse_regression(
    features: np.ndarray,
    targets: np.ndarray,
    variables,
    *,
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
) -> RegressionResult:
    """Sparse coefficients of ``targets ≈ features @ coefficients.T``, one threshold sweep per target.

    Parameters
    ----------
    features : numpy.ndarray, shape (n_rows, n_features)
    targets : numpy.ndarray, shape (n_rows, n_targets)
    variables : sequence of str
        Names of the targets (for the sweep records).
    optimizer : {"stlsq", "sr3"}
    thresholds : float or sequence of float, optional
        Scale-free thresholds (see the module); one value skips the selection.
    validation_fraction : float
        Share of rows held out to choose the threshold, in (0, 0.5].
    l0_penalty : float
        Added to the held-out relative residual per retained term (PDE-FIND's ℓ0 penalty).
    prune : bool
        Greedy backward pruning of the chosen support on the held-out score (see the module).
    ridge, relax_coefficient, max_iterations
        STLSQ's ridge weight (on normalised columns), SR3's ν, iterations.
    ensemble_models : int
        When positive, refit that many bootstrap resamples of the rows, restricted to the selected terms,
        with the chosen optimizer and threshold (pysindy's :class:`~pysindy.EnsembleOptimizer` with
        bagging): the spread of the coefficients and how often each term survives.
    seed : int
        Seeds the row split and the bootstrap.

    Returns
    -------
    RegressionResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> features = rng.standard_normal((500, 6))
    >>> targets = features @ np.array([0.0, 2.0, 0.0, -0.5, 0.0, 0.0])
    >>> result = sparse_regression(features, targets, ["y"])
    >>> np.round(result.coefficients, 6).tolist()
    [[0.0, 2.0, 0.0, -0.5, 0.0, 0.0]]
    """
    features = np.asarray(features, dtype=float)
    targets = np.asarray(targets, dtype=float)
    if targets.ndim == 1:
        targets = targets[:, None]
    if features.ndim != 2 or targets.shape[0] != features.shape[0]:
        raise ValueError(
            f"features must be (n_rows, n_features) and targets (n_rows, n_targets) with the "
            f"same rows, got {features.shape} and {targets.shape}"
        )
    if len(variables) != targets.shape[1]:
        raise ValueError(f"variables must name the {targets.shape[1]} targets, got {list(variables)}")
    keep = np.all(np.isfinite(features), axis=1) & np.all(np.isfinite(targets), axis=1)
    features, targets = features[keep], targets[keep]
    n_rows = features.shape[0]
    if n_rows < 2 * features.shape[1]:
        raise ValueError(
            f"sparse regression needs at least twice as many rows as library terms; got "
            f"{n_rows} rows for {features.shape[1]} terms: use more data or a smaller library"
        )
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if isinstance(validation_fraction, bool) or not 0 < float(validation_fraction) <= 0.5:
        raise ValueError(f"validation_fraction must be in (0, 0.5], got {validation_fraction!r}")
    l0_penalty = check_threshold(l0_penalty, "l0_penalty")
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS
    thresholds = np.asarray(
        [check_threshold(value, "thresholds") for value in np.atleast_1d(thresholds)], dtype=float
    )
    if thresholds.size == 0:
        raise ValueError("thresholds must hold at least one value (or be None for the default sweep)")
    options = {"ridge": ridge, "relax_coefficient": relax_coefficient, "max_iterations": max_iterations}
    generator = np.random.default_rng(seed)
    order = generator.permutation(n_rows)
    n_validation = max(1, int(round(validation_fraction * n_rows)))
    validation_rows, training_rows = order[:n_validation], order[n_validation:]

    coefficients = np.zeros((targets.shape[1], features.shape[1]))
    sweeps, ensembles, notes = [], [], []
    for index, variable in enumerate(variables):
        target = targets[:, index]
        everything = _NormalisedSystem(features, target)
        if thresholds.size == 1:
            # One threshold: nothing to choose, so no rows are held out.
            fitted = everything.fit(optimizer, float(thresholds[0]), options)
            support = np.flatnonzero(fitted)
            sweep = ThresholdSweep(
                variable,
                thresholds,
                np.array([math.nan]),
                np.array([support.size]),
                np.array([math.nan]),
                0,
                l0_penalty,
            )
        else:
            training = _NormalisedSystem(features[training_rows], target[training_rows])
            validation_features, validation_target = features[validation_rows], target[validation_rows]
            errors, supports = [], []
            for threshold in thresholds:
                if supports and supports[-1].size == 0:  # larger thresholds keep the model empty
                    errors.append(errors[-1])
                    supports.append(supports[-1])
                    continue
                fitted = training.fit(optimizer, threshold, options)
                errors.append(_relative_residual(validation_features, validation_target, fitted))
                supports.append(np.flatnonzero(fitted))
            sizes = np.array([support.size for support in supports])
            score = np.asarray(errors) + l0_penalty * sizes
            chosen = int(np.argmin(score))
            support, best = supports[chosen], float(score[chosen])
            pruned = []
            while prune and support.size > 1:
                trials = []
                for position in range(support.size):
                    smaller = np.delete(support, position)
                    error = _relative_residual(
                        validation_features, validation_target, _least_squares(training, smaller)
                    )
                    trials.append(error + l0_penalty * smaller.size)
                position = int(np.argmin(trials))
                if trials[position] >= best:
                    break
                best = trials[position]
                pruned.append(int(support[position]))
                support = np.delete(support, position)
            final_error = _relative_residual(
                validation_features, validation_target, _least_squares(training, support)
            )
            sweep = ThresholdSweep(
                variable,
                thresholds,
                np.asarray(errors),
                sizes,
                score,
                chosen,
                l0_penalty,
                pruned,
                final_error,
            )
        sweeps.append(sweep)
        coefficients[index] = _least_squares(everything, support)
        if not np.any(coefficients[index]):
            notes.append(
                f"equation of {variable}: threshold {sweep.threshold:g} removed every term; "
                f"lower the threshold (thresholds are shares of the time derivative, e.g. 0.01)"
            )
            warnings.warn(notes[-1], stacklevel=2)
        if ensemble_models > 0 and support.size:
            normalised, scaled_target = everything.rows
            ensemble = ps.EnsembleOptimizer(
                make_optimizer(optimizer, sweep.threshold, **options),
                bagging=True,
                n_models=int(ensemble_models),
                replace=True,
            )
            with legacy_numpy_seed(int(generator.integers(2**31 - 1))), _quiet():
                ensemble.fit(normalised[:, support], scaled_target)
            models = np.zeros((int(ensemble_models), features.shape[1]))
            models[:, support] = np.asarray(ensemble.coef_list).reshape(int(ensemble_models), -1)
            ensembles.append(models * everything.target_norm / everything.column_norms)
        elif ensemble_models > 0:
            ensembles.append(np.zeros((int(ensemble_models), features.shape[1])))
    ensemble = np.stack(ensembles, axis=1) if ensembles else None
    return RegressionResult(coefficients, sweeps, ensemble, notes)
