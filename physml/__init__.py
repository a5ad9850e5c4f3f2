"""physml: scientific machine learning centred on dynamics.

The solver layer is re-exported at the top level so that ``import physml; physml.odeint(...)``
works like torchdiffeq's ``odeint``.
"""

from .solvers import METHODS as METHODS
from .solvers import ODESolution as ODESolution
from .solvers import odeint as odeint
from .solvers import odeint_adjoint as odeint_adjoint
from .solvers import solve_ode as solve_ode

from .solvers import SDE_METHODS as SDE_METHODS
from .solvers import BrownianPath as BrownianPath
from .solvers import sdeint as sdeint

__version__ = "0.1.0"
