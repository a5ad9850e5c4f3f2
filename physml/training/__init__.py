"""Training and evaluation of dynamics models on observed trajectories.

- :class:`TrajectorySet`, :func:`load_trajectories`: dataset splits as ``(environments, samples, times,
  *state)`` tensors, with the checks that variables and environments match;
- :func:`fit_trajectories`, :class:`Trainer`, :class:`TrainingConfig`, :class:`TrainingResult`: the
  fitting loop (solver backpropagation or adjoint, restarts from the ground truth, APHYNITY's adaptive
  λ, validation-based model selection, seeded generator, atomic resumable checkpoints, tqdm progress,
  ``torchrun`` data parallelism);
- :func:`predict`, :func:`evaluate` and the metrics :func:`mean_squared_error`, :func:`log10_mse`,
  :func:`mean_absolute_percentage_error`, :func:`relative_parameter_error`, :func:`per_sample_mse`;
- :func:`rollout`, :func:`restart_probability`, :func:`draw_restart_mask`: the restart schedule;
- :class:`DistributedContext`, :func:`save_checkpoint`, :func:`load_checkpoint`.
"""

from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .data import TrajectorySet as TrajectorySet
from .data import load_trajectories as load_trajectories
from .distributed import DistributedContext as DistributedContext
from .evaluation import check_compatible as check_compatible
from .evaluation import evaluate as evaluate
from .evaluation import model_layout as model_layout
from .evaluation import predict as predict
from .loop import Trainer as Trainer
from .loop import TrainingConfig as TrainingConfig
from .loop import TrainingResult as TrainingResult
from .loop import fit_trajectories as fit_trajectories
from .metrics import log10_mse as log10_mse
from .metrics import mean_absolute_percentage_error as mean_absolute_percentage_error
from .metrics import mean_squared_error as mean_squared_error
from .metrics import per_sample_mse as per_sample_mse
from .metrics import relative_parameter_error as relative_parameter_error
from .rollout import draw_restart_mask as draw_restart_mask
from .rollout import restart_probability as restart_probability
from .rollout import rollout as rollout

__all__ = [
    "DistributedContext",
    "Trainer",
    "TrainingConfig",
    "TrainingResult",
    "TrajectorySet",
    "check_compatible",
    "draw_restart_mask",
    "evaluate",
    "fit_trajectories",
    "load_checkpoint",
    "load_trajectories",
    "log10_mse",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "model_layout",
    "per_sample_mse",
    "predict",
    "relative_parameter_error",
    "restart_probability",
    "rollout",
    "save_checkpoint",
]
