"""Objectives and samplers: paths, stochastic interpolants, couplings, ODE and SDE integration."""

from . import bures_wasserstein, interpolants
from .couplings import independent_coupling, ot_coupling
from .generate import generate_clouds, generate_gaussian_clouds, generate_gaussians
from .interpolants import InterpolantDrift, InterpolantSample, stochastic_path
from .losses import LossOutput, MetaFlowObjective
from .niche_objectives import BuresWassersteinObjective, PointCloudObjective
from .paths import PathSample, linear_path
from .point_clouds import (
    entropic_ot_targets,
    masked_mse,
    pooled_gaussian,
    sample_noise_clouds,
    wfm_path,
)
from .solve import integrate, integrate_fixed, integrate_path, integrate_sde

__all__ = [
    "BuresWassersteinObjective",
    "InterpolantDrift",
    "InterpolantSample",
    "LossOutput",
    "MetaFlowObjective",
    "PathSample",
    "PointCloudObjective",
    "independent_coupling",
    "integrate",
    "integrate_fixed",
    "integrate_path",
    "integrate_sde",
    "interpolants",
    "linear_path",
    "ot_coupling",
    "stochastic_path",
    "bures_wasserstein",
    "entropic_ot_targets",
    "generate_clouds",
    "generate_gaussian_clouds",
    "generate_gaussians",
    "masked_mse",
    "pooled_gaussian",
    "sample_noise_clouds",
    "wfm_path",
]
