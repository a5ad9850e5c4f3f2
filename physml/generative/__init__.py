"""Generative models written as dynamics: score-based SDEs, continuous normalising flows, flow matching.

Every model builds an ODE or SDE and samples or evaluates likelihoods through :mod:`physml.solvers`
(:func:`physml.sdeint` for reverse-time SDEs with decreasing times, :func:`physml.solve_ode` for
probability-flow ODEs, CNFs and flow matching), and every sampler reports its number of network
evaluations.  The estimators share one surface: the constructor is the configuration, then
``fit(data, ...)``, ``sample(n, ...)`` (a :class:`SamplingResult`), ``log_prob(x, ...)`` and
``score(x)`` (mean log-likelihood).  Randomness comes from explicit ``torch.Generator`` objects.

Modules
-------
sdes             VP, sub-VP and VE SDEs with their Gaussian marginals
score_matching   continuous-time denoising score matching (noise/score parameterisation, weightings)
samplers         reverse SDE, predictor–corrector, probability-flow ODE, DDPM ancestral, NCSN Langevin
likelihood       instantaneous change of variables, exact and Hutchinson divergences
score_model      :class:`ScoreBasedModel`
cnf              :class:`ContinuousNormalizingFlow` (FFJORD, RNODE)
flow_matching    I-CFM, target FM, OT-CFM, SB-CFM and :class:`FlowMatchingModel`
optimal_transport  exact and entropic minibatch couplings (POT, imported lazily)
coupling_flow    :class:`RealNVP` with an optional bounded domain
networks         :class:`TimeConditionedMLP`, classifier-free guidance
toy              2-D toy distributions at torchcfm's and FFJORD's scalings
"""

from . import toy as toy
from .cnf import ContinuousNormalizingFlow as ContinuousNormalizingFlow
from .coupling_flow import RealNVP as RealNVP
from .flow_matching import PATHS as PATHS
from .flow_matching import ConditionalFlowPath as ConditionalFlowPath
from .flow_matching import FlowMatchingModel as FlowMatchingModel
from .flow_matching import IndependentConditionalFlow as IndependentConditionalFlow
from .flow_matching import OptimalTransportConditionalFlow as OptimalTransportConditionalFlow
from .flow_matching import SchrodingerBridgeConditionalFlow as SchrodingerBridgeConditionalFlow
from .flow_matching import TargetConditionalFlow as TargetConditionalFlow
from .flow_matching import flow_matching_loss as flow_matching_loss
from .flow_matching import make_path as make_path
from .likelihood import ode_log_likelihood as ode_log_likelihood
from .likelihood import probability_flow_log_likelihood as probability_flow_log_likelihood
from .networks import TimeConditionedMLP as TimeConditionedMLP
from .results import SamplingResult as SamplingResult
from .samplers import ReverseTimeSDE as ReverseTimeSDE
from .samplers import ancestral_sample as ancestral_sample
from .samplers import annealed_langevin_sample as annealed_langevin_sample
from .samplers import predictor_corrector_sample as predictor_corrector_sample
from .samplers import probability_flow_sample as probability_flow_sample
from .samplers import reverse_sde_sample as reverse_sde_sample
from .score_matching import denoising_score_matching_loss as denoising_score_matching_loss
from .score_model import ScoreBasedModel as ScoreBasedModel
from .sdes import VESDE as VESDE
from .sdes import VPSDE as VPSDE
from .sdes import DiffusionSDE as DiffusionSDE
from .sdes import SubVPSDE as SubVPSDE
from .sdes import make_sde as make_sde

__all__ = [
    "toy",
    "DiffusionSDE", "VPSDE", "SubVPSDE", "VESDE", "make_sde",
    "denoising_score_matching_loss",
    "ReverseTimeSDE", "reverse_sde_sample", "probability_flow_sample", "predictor_corrector_sample",
    "ancestral_sample", "annealed_langevin_sample",
    "ode_log_likelihood", "probability_flow_log_likelihood",
    "ScoreBasedModel", "ContinuousNormalizingFlow", "FlowMatchingModel", "RealNVP",
    "ConditionalFlowPath", "IndependentConditionalFlow", "TargetConditionalFlow",
    "OptimalTransportConditionalFlow", "SchrodingerBridgeConditionalFlow", "PATHS", "make_path",
    "flow_matching_loss",
    "TimeConditionedMLP", "SamplingResult",
]  # fmt: skip
