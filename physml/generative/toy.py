r"""Two-dimensional toy distributions at the scalings the reference projects use.

``moons`` and ``eight_gaussians`` follow torchcfm's ``sample_moons`` / ``sample_8gaussians`` formula for
formula, so numbers measured with torchcfm (W2, NLL) compare with ours; ``checkerboard``, ``rings`` and
``swissroll`` follow FFJORD's ``lib/toy_data.py``.  NLLs and W2 values are only comparable at identical
scalings — FFJORD's own ``moons`` and ``8gaussians`` differ from torchcfm's and are not reproduced here.

Every generator draws from an explicit ``torch.Generator`` (none: a fresh OS-seeded one; never the global
RNG) and returns a tensor of shape ``(n, 2)``.
"""

from __future__ import annotations

import math

import torch

from ._validation import check_positive_int, resolve_generator

__all__ = [
    "moons",
    "eight_gaussians",
    "checkerboard",
    "rings",
    "swissroll",
    "TOY_DISTRIBUTIONS",
    "sample_toy",
]

#: Centres of ``eight_gaussians`` on the unit circle, in torchcfm's order (multiplied by ``scale``).
EIGHT_GAUSSIAN_DIRECTIONS = (
    (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0),
    (1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0)), (1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0)),
    (-1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0)), (-1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0)),
)  # fmt: skip


def _setup(n, generator, device):
    n = check_positive_int(n, name="n")
    device = torch.device("cpu") if device is None else torch.device(device)
    return n, resolve_generator(generator, device), device


def moons(n: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    r"""torchcfm's ``sample_moons``: torchdyn's two moons with ``noise=0.2``, then ``3 x - 1``.

    torchdyn's moons are *not* scikit-learn's: the ``n // 2`` outer-arc points (first rows) and the
    remaining inner-arc points sit at evenly spaced angles ``linspace(0, π)`` (no random angle, no
    shuffle), and the noise is one uniform draw ``u ~ U[0, 0.2)`` per point added to *both*
    coordinates.  So every row is ``3 (arc point + (u, u)) - 1``.

    Parameters
    ----------
    n : int
        Number of points.
    generator : torch.Generator, optional
        Source of the uniform noise.
    dtype, device : optional
        Output dtype (default float32, as torchcfm) and device.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import moons
    >>> moons(4, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
    """
    n, generator, device = _setup(n, generator, device)
    outer, inner = n // 2, n - n // 2
    outer_angles = torch.linspace(0.0, math.pi, outer, dtype=torch.float64, device=device)
    inner_angles = torch.linspace(0.0, math.pi, inner, dtype=torch.float64, device=device)
    x = torch.cat([torch.cos(outer_angles), 1.0 - torch.cos(inner_angles)])
    y = torch.cat([torch.sin(outer_angles), 0.5 - torch.sin(inner_angles)])
    shift = 0.2 * torch.rand(n, 1, generator=generator, dtype=torch.float64, device=device)
    points = torch.stack([x, y], dim=1) + shift
    return (3.0 * points - 1.0).to(dtype)


def eight_gaussians(
    n: int,
    *,
    scale: float = 5.0,
    generator=None,
    dtype=torch.float32,
    device=None,
    return_labels: bool = False,
):
    r"""torchcfm's ``sample_8gaussians``: a uniform mixture of 8 Gaussians on a circle of radius 5.

    torchcfm builds the components as ``MultivariateNormal(0, sqrt(var) * I)`` with ``var = 0.1``, so the
    *covariance* is :math:`\sqrt{0.1}\,I` and each component's standard deviation is
    :math:`0.1^{1/4} \approx 0.562` (not :math:`\sqrt{0.1}`).  The component of each point is drawn
    uniformly; the centres are ``scale * (cos θ, sin θ)`` for the 8 angles that are multiples of 45°.

    Parameters
    ----------
    n : int
        Number of points.
    scale : float
        Radius of the circle of centres (torchcfm: 5).
    generator : torch.Generator, optional
        Source of the component labels and the Gaussian noise.
    dtype, device : optional
        Output dtype (default float32, as torchcfm's ``.float()``) and device.
    return_labels : bool
        Also return the component index (0-7, in torchcfm's centre order) of every point.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import eight_gaussians
    >>> points, labels = eight_gaussians(5, generator=torch.Generator().manual_seed(0), return_labels=True)
    >>> points.shape, labels.shape
    (torch.Size([5, 2]), torch.Size([5]))
    """
    n, generator, device = _setup(n, generator, device)
    centres = scale * torch.tensor(EIGHT_GAUSSIAN_DIRECTIONS, dtype=torch.float64, device=device)
    labels = torch.randint(0, 8, (n,), generator=generator, device=device)
    standard_deviation = 0.1**0.25
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64, device=device)
    points = (centres[labels] + standard_deviation * noise).to(dtype)
    return (points, labels) if return_labels else points


def checkerboard(n: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    r"""FFJORD's checkerboard: uniform on the 8 "black" squares of side 2 in :math:`[-4, 4)^2`.

    A point is black when ``floor(x / 2) + floor(y / 2)`` is even.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import checkerboard
    >>> points = checkerboard(100, generator=torch.Generator().manual_seed(0))
    >>> bool(((torch.floor(points[:, 0] / 2) + torch.floor(points[:, 1] / 2)) % 2 == 0).all())
    True
    """
    n, generator, device = _setup(n, generator, device)
    options = {"generator": generator, "dtype": torch.float64, "device": device}
    first = 4.0 * torch.rand(n, **options) - 2.0
    lower_half = 2.0 * torch.randint(0, 2, (n,), generator=generator, device=device).to(torch.float64)
    second = torch.rand(n, **options) - lower_half + torch.remainder(torch.floor(first), 2.0)
    return (2.0 * torch.stack([first, second], dim=1)).to(dtype)


def rings(n: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    r"""FFJORD's rings: four concentric circles of radii 3, 2.25, 1.5 and 0.75 plus N(0, 0.08²) noise.

    The three outer rings get ``n // 4`` points each and the innermost ring the rest; angles are evenly
    spaced (``endpoint=False``) as in FFJORD, and the rows are shuffled.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import rings
    >>> rings(10, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([10, 2])
    """
    n, generator, device = _setup(n, generator, device)
    quarter = n // 4
    counts = (quarter, quarter, quarter, n - 3 * quarter)
    pieces = []
    for radius, count in zip((1.0, 0.75, 0.5, 0.25), counts, strict=True):
        angles = 2.0 * math.pi * torch.arange(count, dtype=torch.float64, device=device) / max(count, 1)
        pieces.append(3.0 * radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1))
    points = torch.cat(pieces)[torch.randperm(n, generator=generator, device=device)]
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64, device=device)
    return (points + 0.08 * noise).to(dtype)


def swissroll(n: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    r"""FFJORD's swiss roll: scikit-learn's ``make_swiss_roll(noise=1.0)`` in the (x, z) plane, divided by 5.

    With :math:`s = 1.5\pi(1 + 2u)`, :math:`u \sim U[0, 1)`, a point is
    :math:`(s\cos s + \xi_1,\; s\sin s + \xi_2) / 5` with standard normal :math:`\xi`.

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import swissroll
    >>> swissroll(10, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([10, 2])
    """
    n, generator, device = _setup(n, generator, device)
    angle = (
        1.5 * math.pi * (1.0 + 2.0 * torch.rand(n, generator=generator, dtype=torch.float64, device=device))
    )
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64, device=device)
    points = torch.stack([angle * torch.cos(angle), angle * torch.sin(angle)], dim=1) + noise
    return (points / 5.0).to(dtype)


#: Name -> generator, for scripts that select a toy distribution by name.
TOY_DISTRIBUTIONS = {
    "moons": moons,
    "eight_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "rings": rings,
    "swissroll": swissroll,
}


def sample_toy(name: str, n: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    """Draw ``n`` points from the toy distribution called ``name`` (a key of :data:`TOY_DISTRIBUTIONS`).

    Examples
    --------
    >>> import torch
    >>> from physml.generative.toy import sample_toy
    >>> sample_toy("rings", 8, generator=torch.Generator().manual_seed(1)).shape
    torch.Size([8, 2])
    """
    if name not in TOY_DISTRIBUTIONS:
        raise ValueError(f"unknown toy distribution {name!r}; expected one of {sorted(TOY_DISTRIBUTIONS)}")
    return TOY_DISTRIBUTIONS[name](n, generator=generator, dtype=dtype, device=device)
