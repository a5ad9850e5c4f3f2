"""Physical systems: the :class:`System` protocol and the registry that finds installed systems."""

from ._registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._registry import available_systems as available_systems
from ._registry import get_system as get_system
from ._registry import register_system as register_system
from ._system import BOUNDARY_CONDITIONS as BOUNDARY_CONDITIONS
from ._system import Grid as Grid
from ._system import ParameterSpec as ParameterSpec
from ._system import System as System
from ._system import Variable as Variable
from ._system import check_count as check_count
from ._system import uniform as uniform
