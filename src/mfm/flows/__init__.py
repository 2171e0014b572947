"""Objectives and samplers: paths, couplings, ODE integration."""

from . import bures_wasserstein
from .couplings import independent_coupling, ot_coupling
from .generate import generate_clouds, generate_gaussian_clouds, generate_gaussians
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
from .solve import integrate, integrate_fixed, integrate_path

__all__ = [
    "BuresWassersteinObjective",
    "LossOutput",
    "MetaFlowObjective",
    "PathSample",
    "PointCloudObjective",
    "independent_coupling",
    "integrate",
    "integrate_fixed",
    "integrate_path",
    "linear_path",
    "ot_coupling",
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
