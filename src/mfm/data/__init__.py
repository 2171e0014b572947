"""Measure collections (numpy/torch, no AnnData): population pairs and point clouds."""

from ._clouds import CloudBatch, PointClouds
from ._populations import PopulationBatch, PopulationPairs
from ._rows import RowStore
from ._scaling import FeatureScaling

__all__ = [
    "PopulationBatch",
    "PopulationPairs",
    "RowStore",
    "CloudBatch",
    "FeatureScaling",
    "PointClouds",
]
