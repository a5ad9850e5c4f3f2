"""An identified equation: readable form, comparison with the true equation, and simulation.

The simulation integrates the identified right-hand side with :mod:`physml.solvers`: ETDRK4 on periodic
grids (the identified linear constant-coefficient terms form the exact-in-time diagonal part, as the
simulators do, so identified stiff equations such as Kuramoto–Sivashinsky stay integrable), any
:func:`physml.solve_ode` method otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..operators import dealias_mask, spectral_derivative, wavenumbers
from ..solvers import ODESolution, solve_ode
from ..solvers.exponential import solve_etdrk4
from ._adapter import DiscoveryData
from ._regression import ThresholdSweep
from ._terms import Factor, Term, evaluate_terms, parse_term, term_name


@dataclass
class TermComparison:
    """One term of the true or identified equation of ``variable``."""

    variable: str
    term: str
    true: float
    identified: float
    status: str  # "correct" (in both), "spurious" (identified only) or "missing" (true only)

    @property
    def relative_error(self) -> float:
        """|identified − true| / |true| for true terms (1 for a missing term); NaN for spurious ones."""
        if self.status == "spurious":
            return math.nan
        return abs(self.identified - self.true) / abs(self.true)


@dataclass
class EquationComparison:
    """Identified against true terms and coefficients, term by term.

    ``coef_rel_error_mean`` / ``coef_rel_error_max`` are over the true terms (a missing term counts as a
    100 % error); ``n_spurious_terms`` counts identified terms the true equation lacks; ``terms_correct``
    is 1 when the identified and true term sets agree exactly, else 0.
    """

    rows: list[TermComparison]

    @property
    def spurious_terms(self) -> list[str]:
        return [f"{row.variable}_t: {row.term}" for row in self.rows if row.status == "spurious"]

    @property
    def missing_terms(self) -> list[str]:
        return [f"{row.variable}_t: {row.term}" for row in self.rows if row.status == "missing"]

    def metrics(self) -> dict[str, float]:
        errors = [row.relative_error for row in self.rows if row.status != "spurious"]
        spurious = len(self.spurious_terms)
        missing = len(self.missing_terms)
        return {
            "coef_rel_error_mean": float(np.mean(errors)) if errors else math.nan,
            "coef_rel_error_max": float(np.max(errors)) if errors else math.nan,
            "n_spurious_terms": spurious,
            "n_missing_terms": missing,
            "terms_correct": int(spurious == 0 and missing == 0),
        }

    def to_markdown(self, precision: int = 4) -> str:
        lines = [
            "| equation | term | true | identified | relative error | status |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            error = row.relative_error
            lines.append(
                f"| {row.variable}_t | {row.term} | {row.true:.{precision}g} | "
                f"{row.identified:.{precision}g} | {'–' if math.isnan(error) else f'{error:.2%}'} | "
                f"{row.status} |"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


@dataclass
class IdentifiedEquation:
    """Sparse coefficients over a library of terms, for each field's time derivative.

    Attributes
    ----------
    variables, spatial_dims : tuple of str
    terms : tuple of Term
        The library, canonical (see :mod:`physml.discovery._terms`).
    coefficients : numpy.ndarray, shape (n_variables, n_terms)
    coefficient_std, inclusion_probability : numpy.ndarray or None
        Spread and share of non-zero values over the bagging ensemble, when one was fitted.
    form : str
        ``"strong"``, ``"weak"`` or ``"ode"``.
    sweeps : list of ThresholdSweep
        The threshold selection of each equation.
    lengths, periodic : tuple
        Domain lengths and periodicity of the spatial grid the equation was identified on.
    """

    variables: tuple[str, ...]
    spatial_dims: tuple[str, ...]
    terms: tuple[Term, ...]
    coefficients: np.ndarray
    form: str
    sweeps: list[ThresholdSweep] = field(default_factory=list)
    coefficient_std: np.ndarray | None = None
    inclusion_probability: np.ndarray | None = None
    lengths: tuple[float, ...] = ()
    periodic: tuple[bool, ...] = ()

    # ------------------------------------------------------------------ reading
    @property
    def term_names(self) -> list[str]:
        return [term_name(term, self.spatial_dims) for term in self.terms]

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{variable: {term name: coefficient}}`` with the non-zero terms only (JSON-able)."""
        names = self.term_names
        return {
            variable: {names[j]: float(self.coefficients[i, j]) for j in np.flatnonzero(self.coefficients[i])}
            for i, variable in enumerate(self.variables)
        }

    def equations(self, precision: int = 4) -> list[str]:
        """One line per field, e.g. ``"u_t = -1.0010 u u_x + 0.1002 u_xx"`` (± std with an ensemble)."""
        names = self.term_names
        lines = []
        for i, variable in enumerate(self.variables):
            parts = []
            for j in np.flatnonzero(self.coefficients[i]):
                value = self.coefficients[i, j]
                text = f"{abs(value):.{precision}f}"
                if self.coefficient_std is not None:
                    text = f"({abs(value):.{precision}f} ± {self.coefficient_std[i, j]:.{precision}f})"
                sign = "-" if value < 0 else "+"
                parts.append((sign, f"{text} {names[j]}" if names[j] != "1" else text))
            if not parts:
                body = "0"
            else:
                first_sign, first = parts[0]
                body = ("-" if first_sign == "-" else "") + first
                body += "".join(f" {sign} {text}" for sign, text in parts[1:])
            lines.append(f"{variable}_t = {body}")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.equations())

    # ------------------------------------------------------------------ comparison
    def compare(self, truth: Mapping[str, Mapping[str, float]]) -> EquationComparison:
        """Compare with the true equation ``{variable: {term: coefficient}}``.

        Terms are parsed, so spellings need not match the library's (``"u*u_x"``, ``"u_x u"``); keys may
        be ``"u"`` or ``"u_t"``.  Every field of the identified equation must appear in ``truth``.

        Examples
        --------
        >>> from physml.discovery._terms import parse_term
        >>> terms = tuple(parse_term(name, ["u"], ["x"]) for name in ["u u_x", "u_xx", "u"])
        >>> equation = IdentifiedEquation(("u",), ("x",), terms, np.array([[-0.99, 0.1, 0.001]]), "strong")
        >>> comparison = equation.compare({"u_t": {"u*u_x": -1.0, "u_xx": 0.1}})
        >>> comparison.metrics()["n_spurious_terms"], round(comparison.metrics()["coef_rel_error_max"], 3)
        (1, 0.01)
        """
        if not isinstance(truth, Mapping):
            raise TypeError(
                f"truth must be a mapping {{variable: {{term: coefficient}}}}, got {type(truth).__name__}"
            )
        normalised = {}
        for key, terms in truth.items():
            variable = (
                key[:-2]
                if isinstance(key, str) and key.endswith("_t") and key[:-2] in self.variables
                else key
            )
            if variable not in self.variables:
                raise ValueError(
                    f"truth names field {key!r}; the identified equation has fields {list(self.variables)}"
                )
            parsed = {}
            for text, value in terms.items():
                value = float(value)
                if value == 0 or not math.isfinite(value):
                    raise ValueError(
                        f"true coefficient of {text!r} in the {key} equation must be finite and "
                        f"non-zero, got {value}"
                    )
                parsed[parse_term(text, self.variables, self.spatial_dims)] = value
            normalised[variable] = parsed
        missing_fields = [variable for variable in self.variables if variable not in normalised]
        if missing_fields:
            raise ValueError(
                f"truth lacks the equation(s) of {missing_fields}; give every field's true terms"
            )
        rows = []
        index = {term: j for j, term in enumerate(self.terms)}
        for i, variable in enumerate(self.variables):
            true_terms = normalised[variable]
            for term, value in true_terms.items():
                identified = float(self.coefficients[i, index[term]]) if term in index else 0.0
                rows.append(
                    TermComparison(
                        variable,
                        term_name(term, self.spatial_dims),
                        value,
                        identified,
                        "correct" if identified != 0 else "missing",
                    )
                )
            for j in np.flatnonzero(self.coefficients[i]):
                if self.terms[j] not in true_terms:
                    rows.append(
                        TermComparison(
                            variable,
                            term_name(self.terms[j], self.spatial_dims),
                            0.0,
                            float(self.coefficients[i, j]),
                            "spurious",
                        )
                    )
        return EquationComparison(rows)

    # ------------------------------------------------------------------ simulation
    def _grid_shape(self, state: torch.Tensor) -> tuple[int, ...]:
        ndim = len(self.spatial_dims)
        return tuple(state.shape[-ndim:]) if ndim else ()

    def _derivative(self, shape: Sequence[int]):
        if all(self.periodic):

            def derivative(field, orders):
                return spectral_derivative(field, self.lengths, orders)

            return derivative
        spacings = [length / (n - 1) for length, n in zip(self.lengths, shape, strict=True)]

        def derivative(field, orders):  # second-order finite differences on non-periodic grids
            value = field
            ndim = len(orders)
            for axis, order in enumerate(orders):
                for _ in range(order):
                    value = torch.gradient(
                        value, spacing=spacings[axis], dim=value.ndim - ndim + axis, edge_order=2
                    )[0]
            return value

        return derivative

    def _split(self):
        """(linear, nonlinear) term indices per variable: linear = one factor of the variable itself."""
        linear, nonlinear = [], []
        for i, variable in enumerate(self.variables):
            lin, non = [], []
            for j in np.flatnonzero(self.coefficients[i]):
                term = self.terms[j]
                if len(term) == 1 and term[0].variable == variable and term[0].power == 1:
                    lin.append(j)
                else:
                    non.append(j)
            linear.append(lin)
            nonlinear.append(non)
        return linear, nonlinear

    def right_hand_side(self, state: torch.Tensor) -> torch.Tensor:
        """The identified time derivative of ``state`` (``(batch, n_variables, *grid)``, or
        ``(batch, n_variables)`` for ODEs); dtype and device follow ``state``."""
        state = self._check_state(state)
        fields = {variable: state[:, i] for i, variable in enumerate(self.variables)}
        derivative = self._derivative(self._grid_shape(state)) if self.spatial_dims else None
        active = sorted({j for i in range(len(self.variables)) for j in np.flatnonzero(self.coefficients[i])})
        values = dict(
            zip(active, evaluate_terms([self.terms[j] for j in active], fields, derivative), strict=True)
        )
        coefficients = torch.as_tensor(self.coefficients, dtype=state.dtype, device=state.device)
        rates = []
        for i in range(len(self.variables)):
            rate = torch.zeros_like(state[:, i])
            for j in np.flatnonzero(self.coefficients[i]):
                rate = rate + coefficients[i, j] * values[j]
            rates.append(rate)
        return torch.stack(rates, dim=1)

    def _check_state(self, state) -> torch.Tensor:
        if not isinstance(state, torch.Tensor) or not state.is_floating_point():
            raise TypeError(
                f"initial_state must be a real floating-point torch.Tensor, got {type(state).__name__}"
            )
        expected = 2 + len(self.spatial_dims)
        if state.ndim != expected or state.shape[1] != len(self.variables):
            layout = ", ".join(["batch", "n_variables", *self.spatial_dims])
            raise ValueError(
                f"initial_state must have shape ({layout}) with n_variables = "
                f"{len(self.variables)}, got {tuple(state.shape)}"
            )
        return state

    def _linear_symbol(self, shape, dtype, device, linear):
        ndim = len(shape)
        vectors_odd, vectors_even = [], []
        for axis, (n, length) in enumerate(zip(shape, self.lengths, strict=True)):
            last = axis == ndim - 1
            odd = wavenumbers(n, length, real=last, dtype=dtype, device=device)
            frequencies = (torch.fft.rfftfreq if last else torch.fft.fftfreq)(n, d=1.0 / n)
            even = 2 * math.pi * frequencies.to(dtype=dtype, device=device) / length
            view = [1] * ndim
            view[axis] = -1
            vectors_odd.append(odd.view(view))
            vectors_even.append(even.view(view))
        spectrum_shape = [*shape[:-1], shape[-1] // 2 + 1]
        symbols = []
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        for i in range(len(self.variables)):
            symbol = torch.zeros(spectrum_shape, dtype=complex_dtype, device=device)
            for j in linear[i]:
                factor: Factor = self.terms[j][0]
                part = torch.ones(spectrum_shape, dtype=complex_dtype, device=device)
                for axis, order in enumerate(factor.derivative):
                    k = (vectors_odd if order % 2 else vectors_even)[axis]
                    part = part * (1j * k) ** order
                symbol = symbol + float(self.coefficients[i, j]) * part
            symbols.append(symbol)
        symbol = torch.stack(symbols)  # (n_variables, *spectrum_shape)
        return symbol.real if bool((symbol.imag == 0).all()) else symbol

    def simulate(
        self,
        initial_state: torch.Tensor,
        times,
        *,
        method: str = "auto",
        step_size: float | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-8,
    ) -> ODESolution:
        """Integrate the identified equation from ``initial_state`` and return the states at ``times``.

        Parameters
        ----------
        initial_state : torch.Tensor
            ``(batch, n_variables, *grid)`` (PDE) or ``(batch, n_variables)`` (ODE).
        times : sequence of float or torch.Tensor
            Output times, strictly increasing.
        method : str
            ``"auto"``: ETDRK4 on periodic grids, ``"dopri5"`` otherwise; ``"etdrk4"`` or any
            :func:`physml.solve_ode` method.
        step_size : float, optional
            ETDRK4's step (default: a tenth of the smallest output interval); fixed-step methods too.
        rtol, atol : float
            Tolerances of adaptive :func:`physml.solve_ode` methods.

        Returns
        -------
        physml.solvers.ODESolution
            ``ys`` of shape ``(len(times), *initial_state.shape)``.
        """
        state = self._check_state(initial_state)
        periodic = bool(self.spatial_dims) and all(self.periodic)
        if method == "auto":
            method = "etdrk4" if periodic else "dopri5"
        times_tensor = torch.as_tensor(
            np.array(times, dtype=np.float64) if not isinstance(times, torch.Tensor) else times,
            dtype=torch.float64,
        )
        if method == "etdrk4":
            if not periodic:
                raise ValueError(
                    "method 'etdrk4' needs a periodic grid in every spatial dim; this equation "
                    f"was identified with periodic = {self.periodic}: use e.g. method='dopri5'"
                )
            if step_size is None:
                step_size = float(torch.diff(times_tensor).min()) / 10
            shape = self._grid_shape(state)
            linear, nonlinear = self._split()
            symbol = self._linear_symbol(shape, state.dtype, state.device, linear)
            dims = tuple(range(-len(shape), 0))
            mask = dealias_mask(shape, real=True, device=state.device)
            derivative = self._derivative(shape)
            coefficients = torch.as_tensor(self.coefficients, dtype=state.dtype, device=state.device)
            active = sorted({j for group in nonlinear for j in group})
            terms = [self.terms[j] for j in active]

            def nonlinear_part(t, spectrum):
                # 2/3-rule truncation before and after the products, as the simulators do.
                field_values = torch.fft.irfftn(spectrum * mask, s=shape, dim=dims)
                fields = {variable: field_values[:, i] for i, variable in enumerate(self.variables)}
                values = dict(zip(active, evaluate_terms(terms, fields, derivative), strict=True))
                rates = []
                for i in range(len(self.variables)):
                    rate = torch.zeros_like(field_values[:, i])
                    for j in nonlinear[i]:
                        rate = rate + coefficients[i, j] * values[j]
                    rates.append(rate)
                return torch.fft.rfftn(torch.stack(rates, 1), dim=dims) * mask

            spectrum = torch.fft.rfftn(state, dim=dims)
            solution = solve_etdrk4(symbol, nonlinear_part, spectrum, times_tensor, step_size=step_size)
            solution.ys = torch.fft.irfftn(solution.ys, s=shape, dim=dims)
            return solution
        options = {"step_size": step_size} if step_size is not None else None
        return solve_ode(
            lambda t, y: self.right_hand_side(y),
            state,
            times_tensor.to(state.dtype),
            method=method,
            rtol=rtol,
            atol=atol,
            options=options,
        )

    def forecast_error(
        self, data: DiscoveryData, *, sample: int = 0, frames: int | None = None, **simulate_options
    ) -> float:
        """Relative L2 error of a simulation of the identified equation from a trajectory's first frame.

        Parameters
        ----------
        data : DiscoveryData
            The reference trajectories (see :func:`physml.discovery.from_dataset`).
        sample : int
            Which trajectory.
        frames : int, optional
            Number of frames to forecast (default all); the error is ‖û − u‖ / ‖u‖ over frames 1..frames−1.
        **simulate_options
            Passed to :meth:`simulate`.

        Returns
        -------
        float
            The relative error; ``inf`` if the simulation diverged.
        """
        if not 0 <= sample < data.n_samples:
            raise ValueError(f"sample must be in [0, {data.n_samples - 1}], got {sample}")
        frames = data.n_times if frames is None else int(frames)
        if not 2 <= frames <= data.n_times:
            raise ValueError(
                f"frames must be in [2, {data.n_times}] (the dataset's time points), got {frames}"
            )
        trajectory = np.moveaxis(data.fields[sample][..., :frames, :], (-2, -1), (0, 1))  # (time, var, *grid)
        reference = torch.as_tensor(np.ascontiguousarray(trajectory))
        solution = self.simulate(reference[0][None], data.times[:frames], **simulate_options)
        predicted = solution.ys[:, 0]
        if not bool(torch.isfinite(predicted).all()):
            return math.inf
        error = torch.linalg.vector_norm(predicted[1:] - reference[1:]) / torch.linalg.vector_norm(
            reference[1:]
        )
        return float(error)
