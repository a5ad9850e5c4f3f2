"""Library terms as data: parsing, canonical names, and their evaluation on torch fields.

A term is a product of factors; a factor is a field, possibly differentiated in space, raised to a power:
``u u_x`` is ``((u, (1,), 1), (u, (0,), 1))`` in 1-D.  The canonical form (factors sorted, powers merged)
makes ``"u_x u"``, ``"u*u_x"`` and pysindy's ``"x0x0_1"`` the same term, so identified equations can be
compared with the true ones whatever the spelling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True, order=True)
class Factor:
    """One factor of a term: ``variable`` differentiated ``derivative[i]`` times along spatial dim ``i``,
    raised to ``power``."""

    variable: str
    derivative: tuple[int, ...]
    power: int = 1

    @property
    def order(self) -> int:
        return sum(self.derivative)

    def name(self, spatial_dims: Sequence[str]) -> str:
        text = self.variable
        if self.order:
            text += "_" + "".join(
                dim * count for dim, count in zip(spatial_dims, self.derivative, strict=True)
            )
        return text + (f"^{self.power}" if self.power != 1 else "")


Term = tuple[Factor, ...]
"""A canonical term: factors sorted by (derivative order, derivative, variable); ``()`` is the constant 1."""


def canonical(factors: Sequence[Factor]) -> Term:
    """Merge repeated factors (adding powers) and sort them into the canonical order."""
    powers: dict[tuple[str, tuple[int, ...]], int] = {}
    for factor in factors:
        key = (factor.variable, factor.derivative)
        powers[key] = powers.get(key, 0) + factor.power
    merged = [
        Factor(variable, derivative, power) for (variable, derivative), power in powers.items() if power
    ]
    return tuple(sorted(merged, key=lambda f: (f.order, f.derivative, f.variable)))


def term_name(term: Term, spatial_dims: Sequence[str]) -> str:
    """Readable name: ``"1"``, ``"u"``, ``"u^2 v"``, ``"u u_x"``, ``"v_yy"``."""
    return "1" if not term else " ".join(factor.name(spatial_dims) for factor in term)


def term_degree(term: Term) -> int:
    return sum(factor.power for factor in term)


def term_derivative_order(term: Term) -> int:
    return max((factor.order for factor in term), default=0)


def parse_term(text: str, variables: Sequence[str], spatial_dims: Sequence[str]) -> Term:
    """Parse a user's term, e.g. ``"u u_x"``, ``"u*u_xx"``, ``"u^2 v"``, ``"1"``.

    Factors are separated by spaces or ``*``; a factor is a variable name, optionally ``_`` followed by
    spatial dim names (one letter each, repeated for higher orders: ``u_xxy``), optionally ``^power``.

    Examples
    --------
    >>> parse_term("u_x u", ["u"], ["x"]) == parse_term("u*u_x", ["u"], ["x"])
    True
    >>> term_name(parse_term("u*u*v_yy", ["u", "v"], ["y", "x"]), ["y", "x"])
    'u^2 v_yy'
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a term must be a non-empty string such as 'u u_x', got {text!r}")
    cleaned = text.strip()
    if cleaned == "1":
        return ()
    by_length = sorted(variables, key=len, reverse=True)
    factors = []
    for token in re.split(r"[\s*]+", cleaned):
        if not token:
            continue
        variable = next((name for name in by_length if token.startswith(name)), None)
        if variable is None:
            raise ValueError(
                f"term {text!r}: factor {token!r} does not start with a variable among {list(variables)}"
            )
        rest = token[len(variable) :]
        power = 1
        if "^" in rest:
            rest, _, exponent = rest.partition("^")
            if not exponent.isdigit() or int(exponent) < 1:
                raise ValueError(
                    f"term {text!r}: power {exponent!r} of factor {token!r} must be a positive integer"
                )
            power = int(exponent)
        derivative = [0] * len(spatial_dims)
        if rest:
            if not rest.startswith("_") or len(rest) < 2:
                raise ValueError(
                    f"term {text!r}: factor {token!r} must look like var, var_x, var_xx or var^2"
                )
            for letter in rest[1:]:
                if letter not in spatial_dims:
                    raise ValueError(
                        f"term {text!r}: derivative letter {letter!r} of factor {token!r} is not a "
                        f"spatial dim among {list(spatial_dims)}"
                    )
                derivative[list(spatial_dims).index(letter)] += 1
        factors.append(Factor(variable, tuple(derivative), power))
    return canonical(factors)


_PYSINDY_FACTOR = re.compile(r"x(\d+)(?:_(\d+))?(?:\^(\d+))?")


def parse_pysindy_name(name: str, variables: Sequence[str], n_spatial: int) -> Term:
    """Canonical term of a pysindy feature name built from inputs ``x0, x1, ...``.

    pysindy 2.1 writes polynomial terms as ``"x0 x1"`` / ``"x0^2"``, derivatives as ``"x0_12"`` (one digit
    per differentiation, the 1-based spatial axis) and mixed terms by concatenation (``"x0^2x1_11"``).
    """
    if name.strip() == "1":
        return ()
    compact = name.replace(" ", "")
    factors = []
    position = 0
    for match in _PYSINDY_FACTOR.finditer(compact):
        if match.start() != position:
            raise ValueError(f"cannot parse pysindy feature name {name!r}")
        position = match.end()
        index, axes, power = match.groups()
        derivative = [0] * n_spatial
        for digit in axes or "":
            derivative[int(digit) - 1] += 1
        factors.append(Factor(variables[int(index)], tuple(derivative), int(power or 1)))
    if position != len(compact) or not factors:
        raise ValueError(f"cannot parse pysindy feature name {name!r}")
    return canonical(factors)


def evaluate_terms(
    terms: Sequence[Term],
    fields: dict[str, torch.Tensor],
    derivative: Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor],
) -> list[torch.Tensor]:
    """Values of ``terms`` on ``fields`` (name -> tensor ``(..., *grid)``); ``derivative(field, orders)``
    differentiates in space.  Each distinct derivative is computed once."""
    cache: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def factor_value(factor: Factor) -> torch.Tensor:
        key = (factor.variable, factor.derivative)
        if key not in cache:
            field = fields[factor.variable]
            cache[key] = derivative(field, factor.derivative) if factor.order else field
        value = cache[key]
        return value if factor.power == 1 else value**factor.power

    reference = next(iter(fields.values()))
    values = []
    for term in terms:
        value = torch.ones_like(reference)
        for factor in term:
            value = value * factor_value(factor)
        values.append(value)
    return values
