r"""Minibatch couplings for flow matching: exact optimal transport and entropic (Sinkhorn) plans.

Both use uniform weights and the squared Euclidean cost :math:`C_{ij} = \|x_0^i - x_1^j\|^2` (on the
flattened samples), computed with POT (``pip install POT``), which is imported only when a plan is
needed so that physml imports without it.

The exact plan (``ot.emd``) of two equal-size minibatches with uniform weights is a permutation matrix
divided by ``n`` (Birkhoff: an extreme point of the transport polytope); the entropic plan
(``ot.sinkhorn`` in the log domain, stable for small regularisation) is the static Schrödinger bridge
with noise :math:`\sigma` when the regularisation is :math:`2\sigma^2` (Tong et al. 2024).
"""

from __future__ import annotations

import torch

__all__ = ["exact_transport_plan", "entropic_transport_plan", "sample_from_plan", "squared_euclidean_cost"]


def _import_pot():
    try:
        import ot
    except ImportError as error:  # pragma: no cover - exercised only without POT
        raise ImportError(
            "optimal-transport couplings and the Wasserstein metric need POT: pip install POT "
            "(or pip install 'physml[ot]')"
        ) from error
    return ot


def squared_euclidean_cost(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Cost matrix :math:`\\|x_0^i - x_1^j\\|^2` in float64, samples flattened."""
    first = x0.detach().reshape(x0.shape[0], -1).to(torch.float64)
    second = x1.detach().reshape(x1.shape[0], -1).to(torch.float64)
    # From differences, not the matrix-product shortcut: exact for coincident points.
    return torch.cdist(first, second, compute_mode="donot_use_mm_for_euclid_dist").square()


def exact_transport_plan(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Optimal transport plan between two empirical measures with uniform weights (POT ``ot.emd``).

    Returns
    -------
    torch.Tensor
        Plan ``(len(x0), len(x1))`` in float64 on ``x0``'s device; rows sum to ``1/len(x0)``.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.optimal_transport import exact_transport_plan
    >>> x0 = torch.tensor([[0.0], [1.0]])
    >>> exact_transport_plan(x0, x0 + 0.1)
    tensor([[0.5000, 0.0000],
            [0.0000, 0.5000]], dtype=torch.float64)
    """
    ot = _import_pot()
    cost = squared_euclidean_cost(x0, x1).cpu().numpy()
    first = torch.full((x0.shape[0],), 1.0 / x0.shape[0], dtype=torch.float64).numpy()
    second = torch.full((x1.shape[0],), 1.0 / x1.shape[0], dtype=torch.float64).numpy()
    plan = ot.emd(first, second, cost, numItermax=10_000_000)
    return torch.as_tensor(plan, dtype=torch.float64, device=x0.device)


def entropic_transport_plan(x0: torch.Tensor, x1: torch.Tensor, regularisation: float) -> torch.Tensor:
    r"""Entropy-regularised transport plan (POT ``ot.sinkhorn``; log-domain if the scalings overflow).

    At most 1 000 Sinkhorn iterations (POT's and torchcfm's default): for very small regularisation
    the marginals may then be met only approximately (relative error ~1e-3 at 0.05 for unit-scale data).

    Parameters
    ----------
    regularisation : float
        Entropic regularisation :math:`\varepsilon` (in the units of the squared cost); the
        Schrödinger-bridge CFM uses :math:`2\sigma^2`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.optimal_transport import entropic_transport_plan
    >>> plan = entropic_transport_plan(torch.zeros(3, 2), torch.ones(3, 2), 1.0)
    >>> round(float(plan.sum()), 6)
    1.0
    """
    ot = _import_pot()
    regularisation = float(regularisation)
    if not regularisation > 0:
        raise ValueError(f"regularisation must be positive, got {regularisation!r}")
    cost = squared_euclidean_cost(x0, x1).cpu().numpy()
    first = torch.full((x0.shape[0],), 1.0 / x0.shape[0], dtype=torch.float64).numpy()
    second = torch.full((x1.shape[0],), 1.0 / x1.shape[0], dtype=torch.float64).numpy()
    # POT's default scaling iterations (1 000, as torchcfm); they are 10-50x faster than the log-domain
    # ones, which are used only when the scalings under- or overflow (small regularisation).
    plan = torch.as_tensor(
        ot.sinkhorn(first, second, cost, regularisation, numItermax=1000, warn=False),
        dtype=torch.float64,
        device=x0.device,
    )
    if not torch.isfinite(plan).all() or plan.sum() <= 0:
        plan = torch.as_tensor(
            ot.sinkhorn(
                first, second, cost, regularisation, method="sinkhorn_log", numItermax=1000, warn=False
            ),
            dtype=torch.float64,
            device=x0.device,
        )
    if not torch.isfinite(plan).all() or plan.sum() <= 0:
        raise FloatingPointError(
            f"the Sinkhorn plan is not finite for regularisation={regularisation:g}; increase sigma "
            "(the regularisation is 2 sigma^2) or rescale the data"
        )
    return plan


def sample_from_plan(plan: torch.Tensor, count: int, *, generator: torch.Generator):
    """Draw ``count`` index pairs ``(i, j)`` with probability ∝ ``plan[i, j]``, with replacement.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.optimal_transport import sample_from_plan
    >>> rows, columns = sample_from_plan(torch.eye(3) / 3, 5, generator=torch.Generator().manual_seed(0))
    >>> bool((rows == columns).all())
    True
    """
    weights = plan.reshape(-1).clamp_min(0.0)
    flat = torch.multinomial(weights.to(generator.device), count, replacement=True, generator=generator)
    flat = flat.to(plan.device)
    return flat // plan.shape[1], flat % plan.shape[1]
