"""ODE and SDE solvers on which every part of physml integrates.

Public entry points: :func:`odeint`, :func:`odeint_adjoint`, :func:`solve_ode` (with statistics,
status and per-sample step control) and :func:`sdeint`.  :data:`METHODS` and :data:`SDE_METHODS`
list the methods with their orders as data.
"""

from .ode import METHODS as METHODS
from .ode import ODESolution as ODESolution
from .ode import odeint as odeint
from .ode import odeint_adjoint as odeint_adjoint
from .ode import solve_ode as solve_ode

from .brownian import BrownianPath as BrownianPath
from .exponential import EXPONENTIAL_METHODS as EXPONENTIAL_METHODS
from .exponential import solve_etdrk4 as solve_etdrk4
from .sde import SDE_METHODS as SDE_METHODS
from .sde import sdeint as sdeint

__all__ = ["METHODS", "ODESolution", "odeint", "odeint_adjoint", "solve_ode", "sdeint", "SDE_METHODS", "BrownianPath", "EXPONENTIAL_METHODS", "solve_etdrk4"]
