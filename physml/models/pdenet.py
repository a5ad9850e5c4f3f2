"""PDE-Net 2.0 (Long, Lu, Dong, J. Comput. Phys. 2019): moment-constrained filters and a symbolic network.

The model learns u_t = F(u, ∂u) on a grid and steps forward Euler, û_{k+1} = û_k + δt F(û_k):

- spatial derivatives up to ``max_order`` come from moment-constrained convolution filters
  (:class:`physml.nn.moment_filters.MomentFilterBank`: the low moments fixed to the target derivative and
  order of accuracy, the higher moments learned, with a Huber-L1 moment sparsity penalty);
- F is one :class:`SymNet` per field: each hidden layer appends the product of two learned linear
  combinations of its inputs, so F is a polynomial in the fields and their derivatives whose
  coefficients :meth:`PDENet2.expression` reads out (Huber-L1 symbolic sparsity);
- convection terms are pseudo-upwind: each first derivative is taken point by point with the learned
  filter or its mirror image, by the sign of ∂F/∂u_x (the filters learn to lean one way);
- :func:`train_pdenet` fits δt-blocks of growing length one after the other, each on fresh data and
  warm-started from the previous one, with full-batch L-BFGS in float64, as the paper's BFGS does.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..nn.moment_filters import MomentFilterBank, huber_l1

#: PDE-Net 2.0's δt-block schedule for 2-D Burgers: block lengths after the one-step warm-up.
PAPER_BLOCKS = (1, 2, 3, 4, 5, 6, 9, 12, 15, 18, 21, 24, 27, 30, 35, 40)


def derivative_name(variable: str, derivative: Sequence[int], spatial_dims: Sequence[str]) -> str:
    """``u``, ``u_x``, ``u_yy``, ``u_yx``: letters in grid dim order, as physml.discovery writes them."""
    if not any(derivative):
        return variable
    return variable + "_" + "".join(dim * order for dim, order in zip(spatial_dims, derivative, strict=True))


# ============================================================================ SymNet


class _TruncatedPolynomials:
    """Dense polynomials in ``n`` variables truncated at total degree ``max_degree``.

    Truncation is exact for the kept monomials: the degree-d coefficient of a product depends only on
    the factors' coefficients of degree at most d.
    """

    def __init__(self, n_variables: int, max_degree: int):
        monomials = []
        for degree in range(max_degree + 1):
            for combination in itertools.combinations_with_replacement(range(n_variables), degree):
                exponents = [0] * n_variables
                for variable in combination:
                    exponents[variable] += 1
                monomials.append(tuple(exponents))
        self.monomials = monomials
        self.size = len(monomials)
        exponents = np.array(monomials, dtype=np.int64).reshape(self.size, n_variables)
        self.exponents = exponents
        # Monomials as integers in base (max_degree + 1): sums of exponents map to sums of codes.
        base = (max_degree + 1) ** np.arange(n_variables, dtype=np.int64)
        codes = exponents @ base
        order = np.argsort(codes)
        degrees = exponents.sum(axis=1)
        left, right, result = [], [], []
        for i in range(self.size):
            partners = np.flatnonzero(degrees <= max_degree - degrees[i])
            left.append(np.full(partners.size, i))
            right.append(partners)
            result.append(order[np.searchsorted(codes, codes[i] + codes[partners], sorter=order)])
        self.left, self.right, self.result = (
            np.concatenate(left),
            np.concatenate(right),
            np.concatenate(result),
        )
        # Each monomial of degree >= 1 is a lower one times one variable (for evaluation).
        self.parent = np.zeros(self.size, dtype=np.int64)
        self.factor = np.zeros(self.size, dtype=np.int64)
        for position in range(1, self.size):
            variable = int(np.flatnonzero(exponents[position])[0])
            self.factor[position] = variable
            self.parent[position] = order[
                np.searchsorted(codes, codes[position] - base[variable], sorter=order)
            ]

    def variable(self, position: int) -> np.ndarray:
        vector = np.zeros(self.size)
        vector[1 + position] = 1.0  # degree-1 monomials follow the constant, in variable order
        return vector

    def constant(self, value: float) -> np.ndarray:
        vector = np.zeros(self.size)
        vector[0] = value
        return vector

    def multiply(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.bincount(self.result, weights=first[self.left] * second[self.right], minlength=self.size)

    def evaluate(self, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Values at ``points`` ``(m, n)`` of the polynomial with these coefficients."""
        values = np.empty((points.shape[0], self.size))
        values[:, 0] = 1.0
        for position in range(1, self.size):
            values[:, position] = values[:, self.parent[position]] * points[:, self.factor[position]]
        return values @ coefficients


@functools.lru_cache(maxsize=8)
def _algebra(n_variables: int, max_degree: int) -> _TruncatedPolynomials:
    return _TruncatedPolynomials(n_variables, max_degree)


class SymNet(nn.Module):
    """PDE-Net 2.0's symbolic network: a polynomial of its inputs built from products of linear maps.

    h_0 = inputs; layer i appends (a_i · h_i + b_i)(c_i · h_i + d_i) to h_i; the output is w · h_L + e.

    Parameters
    ----------
    input_names : sequence of str
        One name per input feature (for the expression).
    hidden_layers : int
        Number of product layers (PDE-Net 2.0: 5).
    dtype, device
        Of the parameters.
    generator : torch.Generator, optional
        Seeds the initial weights (N(0, 0.1²) for the product layers; the output layer starts at zero, so
        the initial model is F = 0).

    Examples
    --------
    >>> net = SymNet(["u", "u_x"], hidden_layers=1)
    >>> with torch.no_grad():
    ...     _ = net.layers[0].weight.copy_(torch.eye(2, dtype=torch.float64))   # (u)(u_x)
    ...     _ = net.layers[0].bias.zero_()
    ...     _ = net.output.weight.copy_(torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64))
    >>> net.expression()                      # -u u_x, Burgers' convection
    {'u u_x': -1.0}
    """

    def __init__(
        self,
        input_names: Sequence[str],
        hidden_layers: int = 5,
        *,
        dtype=torch.float64,
        device=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(hidden_layers, bool) or not isinstance(hidden_layers, int) or hidden_layers < 0:
            raise ValueError(f"hidden_layers must be a non-negative integer, got {hidden_layers!r}")
        self.input_names = list(input_names)
        n = len(self.input_names)
        if n == 0:
            raise ValueError("input_names must name at least one input")
        self.layers = nn.ModuleList(
            nn.Linear(n + i, 2, dtype=dtype, device=device) for i in range(hidden_layers)
        )
        self.output = nn.Linear(n + hidden_layers, 1, dtype=dtype, device=device)
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.copy_(
                    0.1 * torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64)
                )
                layer.bias.copy_(
                    0.1 * torch.randn(layer.bias.shape, generator=generator, dtype=torch.float64)
                )
            self.output.weight.zero_()
            self.output.bias.zero_()

    def _input_weights(self):
        """Every layer's weights on the inputs stacked, ``(2 L, n)``, and biases ``(2 L,)``."""
        n = len(self.input_names)
        weights = torch.cat([layer.weight[:, :n] for layer in self.layers])
        biases = torch.cat([layer.bias for layer in self.layers])
        return weights, biases

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` ``(..., n_inputs)`` -> ``(...)``.

        Evaluated without concatenating the growing hidden vector: one matrix product gives every layer's
        input part, then each layer adds the earlier products (the network is small and wide in points,
        so this saves most of the memory traffic).
        """
        n = len(self.input_names)
        output_weight = self.output.weight[0]
        result = features @ output_weight[:n] + self.output.bias[0]
        if not self.layers:
            return result
        weights, biases = self._input_weights()
        base = features @ weights.T + biases  # (..., 2 L)
        products = []
        for index, layer in enumerate(self.layers):
            pair = base[..., 2 * index : 2 * index + 2]
            for earlier, product in enumerate(products):
                pair = pair + product.unsqueeze(-1) * layer.weight[:, n + earlier]
            products.append(pair[..., 0] * pair[..., 1])
            result = result + products[-1] * output_weight[n + index]
        return result

    def slopes(self, features: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """∂F/∂(input ``p``) for each ``p`` in ``positions``, ``(..., len(positions))``, by forward-mode
        differentiation of the products (no autograd graph)."""
        n = len(self.input_names)
        positions = list(positions)
        with torch.no_grad():
            output_weight = self.output.weight[0]
            slope = output_weight[positions].expand(*features.shape[:-1], len(positions)).clone()
            if not self.layers:
                return slope
            weights, biases = self._input_weights()
            base = features @ weights.T + biases
            products, tangents = [], []
            for index, layer in enumerate(self.layers):
                pair = base[..., 2 * index : 2 * index + 2]
                tangent = weights[2 * index : 2 * index + 2, positions].T.expand(
                    *features.shape[:-1], len(positions), 2
                )
                for earlier, (product, product_tangent) in enumerate(zip(products, tangents, strict=True)):
                    pair = pair + product.unsqueeze(-1) * layer.weight[:, n + earlier]
                    tangent = tangent + product_tangent.unsqueeze(-1) * layer.weight[:, n + earlier]
                products.append(pair[..., 0] * pair[..., 1])
                tangents.append(tangent[..., 0] * pair[..., 1:2] + pair[..., 0:1] * tangent[..., 1])
                slope = slope + tangents[-1] * output_weight[n + index]
            return slope

    def sparsity_penalty(self, scale: float = 1e-3) -> torch.Tensor:
        """Huber-L1 of every weight and bias (PDE-Net 2.0's symbolic sparsity, s = 1e-3)."""
        return sum(huber_l1(parameter, scale) for parameter in self.parameters())

    def coefficient_vector(self, max_degree: int = 4) -> tuple[_TruncatedPolynomials, np.ndarray]:
        """The truncated polynomial algebra and F's coefficients over its monomials (exact up to
        ``max_degree``)."""
        algebra = _algebra(len(self.input_names), max_degree)
        hidden = [algebra.variable(position) for position in range(len(self.input_names))]
        with torch.no_grad():
            for layer in self.layers:
                weight = layer.weight.double().cpu().numpy()
                bias = layer.bias.double().cpu().numpy()
                first = sum(weight[0, j] * hidden[j] for j in range(len(hidden))) + algebra.constant(bias[0])
                second = sum(weight[1, j] * hidden[j] for j in range(len(hidden))) + algebra.constant(bias[1])
                hidden.append(algebra.multiply(first, second))
            weight = self.output.weight.double().cpu().numpy()[0]
            bias = float(self.output.bias.double())
            result = sum(weight[j] * hidden[j] for j in range(len(hidden))) + algebra.constant(bias)
        return algebra, result

    def polynomial(self, max_degree: int = 4) -> dict[tuple[int, ...], float]:
        """Exact coefficients of every monomial of total degree ≤ ``max_degree`` (exponents per input)."""
        algebra, result = self.coefficient_vector(max_degree)
        return {
            monomial: float(value)
            for monomial, value in zip(algebra.monomials, result, strict=True)
            if value != 0
        }

    def expression(self, max_degree: int = 4, threshold: float = 0.0, order=None) -> dict[str, float]:
        """``{monomial name: coefficient}`` with |coefficient| > ``threshold`` (names join input names,
        in ``order`` — a key function on input positions — or input order)."""
        terms = {}
        for monomial, value in self.polynomial(max_degree).items():
            if abs(value) <= threshold:
                continue
            positions = [position for position, power in enumerate(monomial) if power]
            positions.sort(key=order or (lambda position: position))
            name = " ".join(
                self.input_names[p] + (f"^{monomial[p]}" if monomial[p] > 1 else "") for p in positions
            )
            terms[name or "1"] = value
        return terms


# ============================================================================ PDE-Net 2.0


class PDENet2(nn.Module):
    """PDE-Net 2.0 for fields ``(batch, n_variables, *grid)`` on a uniform grid (1-D or 2-D).

    Parameters
    ----------
    variables : sequence of str
        Field names, e.g. ``("u", "v")``.
    spatial_dims : sequence of str
        Grid dim names in array order, e.g. ``("y", "x")``.
    spacing : sequence of float
        Grid spacing per dim.
    time_step : float
        δt of the forward-Euler steps (PDE-Net 2.0: 0.01).
    kernel_size : int
        Filter width (5).
    max_order : int
        Highest derivative fed to SymNet (2).
    accuracy : int or "frozen"
        Moment constraint of the filters (PDE-Net 2.0's ``constraint = 2``) or fixed stencils.
    hidden_layers : int
        SymNet product layers (5).
    scheme : {"upwind", "central"}
        Pseudo-upwind first derivatives in F, or the moment-constrained filters throughout.
    boundary : str
        Boundary of every dim for the padding (``"periodic"``).
    dtype, device
        Of the parameters (float64 by default, as the paper trains).
    generator : torch.Generator, optional
        Seeds SymNet's initial weights.

    Examples
    --------
    >>> model = PDENet2(("u", "v"), ("y", "x"), spacing=(0.2, 0.2))
    >>> model.input_names[:6]
    ['u', 'u_x', 'u_y', 'u_xx', 'u_yx', 'u_yy']
    >>> model(torch.zeros(3, 2, 16, 16, dtype=torch.float64), steps=4).shape
    torch.Size([5, 3, 2, 16, 16])
    """

    def __init__(
        self,
        variables: Sequence[str],
        spatial_dims: Sequence[str],
        spacing: Sequence[float],
        *,
        time_step: float = 0.01,
        kernel_size: int = 5,
        max_order: int = 2,
        accuracy: int | str = 2,
        hidden_layers: int = 5,
        scheme: str = "upwind",
        boundary: str = "periodic",
        dtype=torch.float64,
        device=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.variables = tuple(variables)
        self.spatial_dims = tuple(spatial_dims)
        ndim = len(self.spatial_dims)
        if len(spacing) != ndim:
            raise ValueError(
                f"spacing must have one entry per spatial dim {self.spatial_dims}, got {list(spacing)}"
            )
        if not self.variables:
            raise ValueError("variables must name at least one field")
        if not (isinstance(time_step, int | float) and time_step > 0 and math.isfinite(time_step)):
            raise ValueError(f"time_step must be a positive number, got {time_step!r}")
        if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
            raise ValueError(f"max_order must be a positive integer, got {max_order!r}")
        if scheme not in ("upwind", "central"):
            raise ValueError(f"scheme must be 'upwind' or 'central', got {scheme!r}")
        self.time_step = float(time_step)
        self.scheme = scheme
        self.kernel_size = kernel_size
        self.boundary = [boundary] * ndim
        # The field itself (through a learned smoothing filter, as in PDE-Net 2.0), then x-derivatives
        # first on a (y, x) grid: u, u_x, u_y, u_xx, u_yx, u_yy.
        orders = [(0,) * ndim] + [
            derivative
            for total in range(1, max_order + 1)
            for derivative in sorted(_multi_indices(ndim, total), key=lambda d: d[::-1], reverse=True)
        ]
        self.derivatives = orders
        self.filters = MomentFilterBank(
            orders,
            spacing,
            kernel_size=kernel_size,
            accuracy=accuracy,
            boundary=boundary,
            dtype=dtype,
            device=device,
        )
        self.input_names = [
            derivative_name(variable, derivative, self.spatial_dims)
            for variable in self.variables
            for derivative in orders
        ]
        self._input_keys = [(derivative, variable) for variable in self.variables for derivative in orders]
        self.symnets = nn.ModuleList(
            SymNet(self.input_names, hidden_layers, dtype=dtype, device=device, generator=generator)
            for _ in self.variables
        )
        # Positions of the first derivatives among the filters, per spatial axis.
        self._first = [orders.index(tuple(int(axis == dim) for dim in range(ndim))) for axis in range(ndim)]

    # ------------------------------------------------------------------ pieces
    def set_filters_trainable(self, trainable: bool) -> None:
        """Freeze (the warm-up block) or free the learned moments."""
        self.filters.free_moments.requires_grad_(trainable)

    def features(self, state: torch.Tensor) -> torch.Tensor:
        """SymNet inputs ``(batch, *grid, n_variables * n_filters)`` from the filters."""
        return self.filters(state).flatten(1, 2).movedim(1, -1)

    def rate(self, state: torch.Tensor) -> torch.Tensor:
        """F(u): the learned time derivative of ``state`` ``(batch, n_variables, *grid)``.

        With ``scheme="upwind"`` each first derivative in each equation is taken, point by point, with the
        learned filter where ∂F/∂(u_x) > 0 and with its mirror image elsewhere (PDE-Net 2.0's
        pseudo-upwind).  A symmetric filter equals its mirror, so frozen (central) filters give the
        central scheme; learning the free moments makes the two differ.
        """
        if state.ndim != 2 + len(self.spatial_dims) or state.shape[1] != len(self.variables):
            layout = ", ".join(["batch", "n_variables", *self.spatial_dims])
            raise ValueError(
                f"state must have shape ({layout}) with n_variables = {len(self.variables)}, got "
                f"{tuple(state.shape)}"
            )
        features = self.features(state)
        if self.scheme == "central":
            return torch.stack([symnet(features) for symnet in self.symnets], dim=1)
        mirrored = self.filters.apply(state, self.filters.mirrored_first_derivatives())  # (b, c, ndim, *grid)
        per_variable = len(self.derivatives)
        slots = [
            (channel * per_variable + self._first[axis], channel, axis)
            for channel in range(len(self.variables))
            for axis in range(len(self.spatial_dims))
        ]
        positions = [slot for slot, _, _ in slots]
        rates = []
        for symnet in self.symnets:
            # The side follows the sign of ∂F/∂(u_x) at the learned filter's estimate; the choice is
            # discrete, so it carries no gradient.
            slope = symnet.slopes(features.detach(), positions)
            columns = list(features.unbind(-1))
            for index, (slot, channel, axis) in enumerate(slots):
                columns[slot] = torch.where(slope[..., index] > 0, columns[slot], mirrored[:, channel, axis])
            rates.append(symnet(torch.stack(columns, dim=-1)))
        return torch.stack(rates, dim=1)

    def step(self, state: torch.Tensor) -> torch.Tensor:
        """One forward-Euler δt-step."""
        return state + self.time_step * self.rate(state)

    def forward(self, state: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """Roll out ``steps`` δt-steps: ``(steps + 1, *state.shape)`` starting with ``state``."""
        states = [state]
        for _ in range(int(steps)):
            states.append(self.step(states[-1]))
        return torch.stack(states)

    # ------------------------------------------------------------------ regularisers
    def symbolic_penalty(self, scale: float = 1e-3) -> torch.Tensor:
        return sum(symnet.sparsity_penalty(scale) for symnet in self.symnets)

    def moment_penalty(self, scale: float = 1e-2) -> torch.Tensor:
        return self.filters.moment_penalty(scale)

    # ------------------------------------------------------------------ expression
    def _name_order(self, position: int):
        derivative, variable = self._input_keys[position]
        return sum(derivative), tuple(derivative), variable

    def expression(self, max_degree: int = 4, threshold: float = 0.0) -> dict[str, dict[str, float]]:
        """``{variable: {term: coefficient}}`` of the learned F, exact for terms of degree ≤ ``max_degree``;
        terms are named like ``"u u_x"``, ``"v u_y"``, ``"u_xx"`` (non-derivative factors first)."""
        return {
            variable: symnet.expression(max_degree, threshold, order=self._name_order)
            for variable, symnet in zip(self.variables, self.symnets, strict=True)
        }

    def equations(self, precision: int = 4, threshold: float = 1e-4, max_degree: int = 4) -> list[str]:
        """Printed equations with coefficients, largest first, e.g.
        ``"u_t = -0.9861 u u_x - 0.9853 v u_y + 0.0502 u_xx ..."``; terms with |coefficient| ≤ ``threshold``
        are left out."""
        lines = []
        for variable, terms in self.expression(max_degree, threshold).items():
            ordered = sorted(terms.items(), key=lambda item: -abs(item[1]))
            body = ""
            for position, (name, value) in enumerate(ordered):
                text = f"{abs(value):.{precision}f}" + ("" if name == "1" else f" {name}")
                body += (
                    ("-" if value < 0 else "") + text
                    if position == 0
                    else f" {'-' if value < 0 else '+'} {text}"
                )
            lines.append(f"{variable}_t = {body or '0'}")
        return lines

    def expression_residual(self, state: torch.Tensor, max_degree: int = 4) -> float:
        """Relative RMS gap between F and its degree-``max_degree`` expansion on ``state`` (central features):
        what the printed expression leaves out."""
        with torch.no_grad():
            features = self.features(state)
            exact = torch.stack([symnet(features) for symnet in self.symnets], dim=1)
            truncated = torch.zeros_like(exact)
            flat = features.reshape(-1, features.shape[-1]).double().cpu().numpy()
            for index, symnet in enumerate(self.symnets):
                algebra, coefficients = symnet.coefficient_vector(max_degree)
                values = algebra.evaluate(coefficients, flat)
                truncated[:, index] = torch.as_tensor(values, dtype=exact.dtype).reshape(
                    truncated[:, index].shape
                )
            return float(
                torch.linalg.vector_norm(exact - truncated)
                / torch.linalg.vector_norm(exact).clamp_min(1e-300)
            )


def _multi_indices(ndim: int, total: int) -> list[tuple[int, ...]]:
    return [index for index in itertools.product(range(total + 1), repeat=ndim) if sum(index) == total]


# ============================================================================ training and evaluation


#: Loss reported for a trial point whose roll-out diverged, as a multiple of the best loss seen: large
#: and finite, so the strong-Wolfe line search backs off instead of propagating NaN.
DIVERGED_LOSS_FACTOR = 1e6


@dataclass
class BlockRecord:
    """One δt-block of :func:`train_pdenet`."""

    block: int
    steps: int
    loss: float
    data_loss: float
    iterations: int
    seconds: float
    filters_trainable: bool
    rejected_evaluations: int = 0


def block_loss(
    model: PDENet2,
    observations: torch.Tensor,
    *,
    sparsity: float,
    moment_sparsity: float,
    regularise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PDE-Net 2.0's loss of one block: Σ_k mean(((û_k − u_k)/δt)²) + n (sparsity L_sym + moment L_mom).

    ``observations`` is ``(n + 1, batch, n_variables, *grid)``; the roll-out starts from its first frame.
    Returns ``(total, data term)``.
    """
    steps = observations.shape[0] - 1
    predicted = model(observations[0], steps)
    data = sum(
        torch.mean(((predicted[k] - observations[k]) / model.time_step) ** 2) for k in range(1, steps + 1)
    )
    total = data
    if regularise:
        total = total + steps * sparsity * model.symbolic_penalty()
        if model.filters.free_moments.requires_grad and model.filters.free_moments.numel():
            total = total + steps * moment_sparsity * model.moment_penalty()
    return total, data


def train_pdenet(
    model: PDENet2,
    sample_block: Callable[[int, int], torch.Tensor],
    blocks: Sequence[int] = PAPER_BLOCKS,
    *,
    warmup: bool = True,
    max_iterations: int = 2000,
    sparsity: float = 0.005,
    moment_sparsity: float = 1e-3,
    history_size: int = 100,
    progress: bool | None = None,
    callback: Callable[[BlockRecord], None] | None = None,
) -> list[BlockRecord]:
    """Train PDE-Net 2.0 block by block with full-batch L-BFGS on fresh data per block.

    A trial point of the line search whose roll-out diverges (a NaN or infinite loss) is reported to
    L-BFGS as a large finite loss with zero gradient, so the line search backs off (the official code
    maps NaN to infinity for scipy's line search likewise); such evaluations are counted in the
    :class:`BlockRecord`, and a block never ends on non-finite parameters (the best point seen is
    restored).

    Parameters
    ----------
    model : PDENet2
    sample_block : callable
        ``sample_block(block_index, steps)`` returns fresh observations ``(steps + 1, batch, n_variables,
        *grid)`` in the model's dtype (noise included) for that block.
    blocks : sequence of int
        Block lengths in δt-steps after the warm-up (default: the paper's 1–6, 9, 12, ..., 40).
    warmup : bool
        Start with PDE-Net 2.0's warm-up block: one step, filters frozen, no regularisers.
    max_iterations : int
        L-BFGS iterations per block (the paper's BFGS: 2000).
    sparsity, moment_sparsity : float
        Weights of the SymNet and moment penalties (0.005 and 0.001).
    history_size : int
        L-BFGS memory.
    progress : bool, optional
        tqdm bar over blocks (default: only on a terminal).
    callback : callable, optional
        Called with each finished :class:`BlockRecord` (e.g. to checkpoint).

    Returns
    -------
    list of BlockRecord

    Examples
    --------
    A one-field model learns from data made by a known heat equation (u_t = 0.1 u_xx, forward Euler):

    >>> teacher = PDENet2(("u",), ("x",), spacing=(0.25,), hidden_layers=0, accuracy="frozen")
    >>> with torch.no_grad():
    ...     _ = teacher.symnets[0].output.weight[0, 2].fill_(0.1)   # inputs: u, u_x, u_xx
    >>> x = torch.arange(32, dtype=torch.float64) * 0.25
    >>> def sample_block(block, steps):
    ...     weights = torch.tensor([[[0.5]], [[2.0]]], dtype=torch.float64)
    ...     start = torch.sin(torch.pi * x / 4) + weights * torch.cos(3 * torch.pi * x / 4)
    ...     return teacher(start, steps).detach()
    >>> student = PDENet2(("u",), ("x",), spacing=(0.25,), hidden_layers=0, accuracy="frozen")
    >>> records = train_pdenet(student, sample_block, [2], max_iterations=50, sparsity=0.0, progress=False)
    >>> round(student.expression(threshold=1e-6)["u"]["u_xx"], 6)
    0.1
    """
    from tqdm.auto import tqdm

    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    for name, value in (("sparsity", sparsity), ("moment_sparsity", moment_sparsity)):
        if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    schedule = ([(0, 1, False)] if warmup else []) + [
        (index + 1, int(steps), True) for index, steps in enumerate(blocks)
    ]
    if any(steps < 1 for _, steps, _ in schedule):
        raise ValueError(f"blocks must be positive step counts, got {list(blocks)}")
    records = []
    for block, steps, regular in tqdm(
        schedule, desc="PDE-Net blocks", unit="block", disable=None if progress is None else not progress
    ):
        started = time.perf_counter()
        model.set_filters_trainable(regular)
        observations = sample_block(block, steps)
        if observations.shape[0] != steps + 1:
            raise ValueError(
                f"sample_block({block}, {steps}) must return {steps + 1} frames, got {observations.shape[0]}"
            )
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        snapshot = [parameter.detach().clone() for parameter in parameters]
        best = {"loss": math.inf, "values": snapshot, "rejected": 0}

        def closure(observations=observations, regular=regular, parameters=parameters, best=best):
            for parameter in parameters:
                parameter.grad = None
            total, _ = block_loss(
                model, observations, sparsity=sparsity, moment_sparsity=moment_sparsity, regularise=regular
            )
            if not bool(torch.isfinite(total)):
                best["rejected"] += 1
                return torch.tensor(DIVERGED_LOSS_FACTOR * max(1.0, best["loss"]), dtype=total.dtype)
            value = float(total.detach())
            if value < best["loss"]:
                best["loss"] = value
                best["values"] = [parameter.detach().clone() for parameter in parameters]
            total.backward()
            return total

        optimizer = torch.optim.LBFGS(
            parameters,
            lr=1.0,
            max_iter=max_iterations,
            history_size=history_size,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
        )
        optimizer.step(closure)
        iterations = int(optimizer.state[parameters[0]].get("n_iter", 0))
        with torch.no_grad():
            total, data = block_loss(
                model, observations, sparsity=sparsity, moment_sparsity=moment_sparsity, regularise=regular
            )
            if not bool(torch.isfinite(total)) or (best["rejected"] and float(total) > best["loss"]):
                # Never end a block on a diverged point: go back to the best parameters seen.
                for parameter, value in zip(parameters, best["values"], strict=True):
                    parameter.copy_(value)
                total, data = block_loss(
                    model, observations, sparsity=sparsity, moment_sparsity=moment_sparsity,
                    regularise=regular,
                )
        seconds = time.perf_counter() - started
        record = BlockRecord(
            block, steps, float(total), float(data), iterations, seconds, regular, best["rejected"]
        )
        records.append(record)
        if callback is not None:
            callback(record)
    model.set_filters_trainable(True)
    return records


def prediction_error(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """PDE-Net 2.0's variance-normalised error per time and sample.

    error(t) = Σ_channels mean_grid((û − u)²) / Σ_channels Var_grid(u), for ``(time, batch, channels, *grid)``
    inputs; returns ``(time, batch)``.

    Examples
    --------
    >>> reference = torch.randn(3, 2, 2, 8, 8, dtype=torch.float64)
    >>> prediction_error(reference, reference).shape, float(prediction_error(reference, reference).max())
    (torch.Size([3, 2]), 0.0)
    """
    if predicted.shape != reference.shape:
        raise ValueError(
            f"predicted and reference must have the same shape, got {tuple(predicted.shape)} and "
            f"{tuple(reference.shape)}"
        )
    grid_dims = tuple(range(3, reference.ndim))
    squared = ((predicted - reference) ** 2).mean(dim=grid_dims).sum(dim=2)
    variance = reference.var(dim=grid_dims, unbiased=False).sum(dim=2)
    return squared / variance
