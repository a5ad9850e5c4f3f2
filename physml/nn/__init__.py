"""Neural-network building blocks shared by the models: MLPs, convolutional fields, FNO, stacked modules.

:class:`StackedModules` holds one copy of a module per environment and evaluates all of them in one
batched call (the vectorised multi-environment forward pass of LEADS and CoDA).
"""

from .activations import ACTIVATIONS as ACTIVATIONS
from .activations import Swish as Swish
from .activations import make_activation as make_activation
from .conv import ConvNet2d as ConvNet2d
from .fno import FNO2d as FNO2d
from .fno import SpectralConv2d as SpectralConv2d
from .initialization import initialize_ as initialize_
from .mlp import MLP as MLP
from .moment_filters import MomentFilterBank as MomentFilterBank
from .stacked import StackedModules as StackedModules
from .stacked import stacked_forward as stacked_forward
from .stacked import stacked_plan as stacked_plan
from .stacked import weight_matrices as weight_matrices

__all__ = ["ACTIVATIONS", "Swish", "make_activation", "ConvNet2d", "FNO2d", "SpectralConv2d", "initialize_",
           "MLP", "MomentFilterBank", "StackedModules", "stacked_forward", "stacked_plan", "weight_matrices"]
