"""Physics-based and data-driven dynamical models: Neural ODE, APHYNITY, LEADS, CoDA, PDE-Net 2.0.

Every model is an ``nn.Module`` whose forward pass integrates its vector field with :mod:`physml.solvers`;
multi-environment models (LEADS, CoDA) run all environments in one vectorised pass.  Training lives in
:mod:`physml.training` (:func:`physml.training.fit_trajectories`).
"""

from .aphynity import AUGMENTATION_NORMS as AUGMENTATION_NORMS
from .aphynity import Aphynity as Aphynity
from .aphynity import Scaled as Scaled
from .aphynity import ScaledSigmoid as ScaledSigmoid
from .coda import CODA_REGULARIZATIONS as CODA_REGULARIZATIONS
from .coda import Coda as Coda
from .leads import Leads as Leads
from .neural_ode import NeuralODE as NeuralODE
from .pdenet import PAPER_BLOCKS as PAPER_BLOCKS
from .pdenet import PDENet2 as PDENet2
from .pdenet import SymNet as SymNet
from .pdenet import prediction_error as prediction_error
from .pdenet import train_pdenet as train_pdenet

__all__ = ["NeuralODE", "Aphynity", "Scaled", "ScaledSigmoid", "AUGMENTATION_NORMS", "Leads", "Coda",
           "CODA_REGULARIZATIONS", "PDENet2", "SymNet", "train_pdenet", "prediction_error", "PAPER_BLOCKS"]
