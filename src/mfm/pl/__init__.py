"""Plots: scanpy-style figures of what `mfm.tl` wrote into an AnnData (never modified)."""

from ._embedding import population_embedding
from ._loss import loss
from ._metrics import metrics
from ._niches import niches
from ._predictions import predictions

__all__ = ["loss", "metrics", "niches", "population_embedding", "predictions"]
