"""Measure collections (numpy/torch, no AnnData): population pairs and point clouds."""

from ._clouds import PointClouds
from ._populations import PopulationBatch, PopulationPairs
from ._rows import RowStore
from ._samplers import CloudSampler, PopulationSampler, RandomStreams
from ._scaling import FeatureScaling
from ._statistics import feature_statistics, streaming_moments

__all__ = [
    "PopulationBatch",
    "PopulationPairs",
    "RowStore",
    "FeatureScaling",
    "PointClouds",
    "RandomStreams",
    "PopulationSampler",
    "CloudSampler",
    "feature_statistics",
    "streaming_moments",
]
