"""Preprocessing: AnnData -> populations, splits, niches."""

from ._niches import niches
from ._populations import populations
from ._split import split

__all__ = ["niches", "populations", "split"]
