"""Metrics for comparing distributions and evaluating generative models.

Sample-based distances (:func:`wasserstein2_distance`, :func:`maximum_mean_discrepancy`,
:func:`energy_distance`), the likelihood helper :func:`negative_log_likelihood`, and the flow
straightness measures :func:`path_energy` / :func:`normalized_path_energy` (Tong et al. 2024); and the
statistics of 2-D periodic fields (:func:`radial_energy_spectrum`, :func:`enstrophy`,
:func:`field_summary`) that turbulence studies compare.
POT is needed only by the Wasserstein-based metrics and is imported when they are called.
"""

from .distributions import DEFAULT_MMD_BANDWIDTHS as DEFAULT_MMD_BANDWIDTHS
from .distributions import energy_distance as energy_distance
from .distributions import maximum_mean_discrepancy as maximum_mean_discrepancy
from .distributions import negative_log_likelihood as negative_log_likelihood
from .distributions import normalized_path_energy as normalized_path_energy
from .distributions import path_energy as path_energy
from .distributions import wasserstein2_distance as wasserstein2_distance
from .fields import enstrophy as enstrophy
from .fields import field_summary as field_summary
from .fields import radial_energy_spectrum as radial_energy_spectrum

__all__ = [
    "DEFAULT_MMD_BANDWIDTHS",
    "wasserstein2_distance",
    "maximum_mean_discrepancy",
    "energy_distance",
    "negative_log_likelihood",
    "path_energy",
    "normalized_path_energy",
    "radial_energy_spectrum",
    "enstrophy",
    "field_summary",
]
