"""Plots: scanpy-style figures of what `mfm.tl` wrote into an AnnData (never modified)."""

from ._densities import marker_densities
from ._effects import effects
from ._embedding import population_embedding
from ._joint_embedding import joint_embedding
from ._loss import loss
from ._metrics import metrics
from ._niche_composition import niche_composition
from ._niches import niches
from ._predictions import predictions
from ._spatial_niches import spatial_niches
from ._trajectories import trajectories

__all__ = [
    "effects",
    "joint_embedding",
    "loss",
    "marker_densities",
    "metrics",
    "niche_composition",
    "niches",
    "population_embedding",
    "predictions",
    "spatial_niches",
    "trajectories",
]
