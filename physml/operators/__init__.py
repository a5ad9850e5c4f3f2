"""Spatial operators shared by simulators, PDE-Net and physical priors.

Everything acts on the trailing ``ndim`` dimensions of a tensor (fields are ``(batch, channels, *grid)``),
follows the input's dtype and device, and is differentiable.

- :mod:`physml.operators.spectral`: wavenumbers, spectral derivatives and Laplacians on periodic grids,
  2/3-rule dealiasing, velocity from vorticity.
- :mod:`physml.operators.finite_difference`: stencils (2nd- and 4th-order Laplacians, the 9-point isotropic
  Laplacian, central/upwind gradients) with periodic, Dirichlet (zero) or Neumann (zero-flux) boundaries.
"""

from .finite_difference import gradient as gradient
from .finite_difference import laplacian as laplacian
from .finite_difference import pad as pad
from .spectral import dealias_mask as dealias_mask
from .spectral import spectral_derivative as spectral_derivative
from .spectral import spectral_laplacian as spectral_laplacian
from .spectral import velocity_from_vorticity as velocity_from_vorticity
from .spectral import wavenumbers as wavenumbers
