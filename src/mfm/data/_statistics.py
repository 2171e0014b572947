"""Feature statistics of population cells, in streaming passes (data on disk is never loaded)."""

from __future__ import annotations

import numpy as np

from ._populations import PopulationPairs
from ._scaling import FeatureScaling


def feature_statistics(
    pairs: PopulationPairs, train_pairs: np.ndarray, standardize: str
) -> tuple[list[float], list[float]]:
    """Per-feature mean and scale of the training control cells (empty lists for ``"none"``).

    The scaling rule is :class:`FeatureScaling`'s (``"global"`` or ``"feature"``); the
    moments are read in streaming passes (:func:`streaming_moments`).
    """
    if standardize == "none":
        return [], []
    rows = np.sort(np.concatenate([pairs.cells[s] for s in np.unique(pairs.control[train_pairs])]))
    scaling = FeatureScaling.from_moments(*streaming_moments(pairs, rows), standardize)
    return scaling.mean.tolist(), np.broadcast_to(scaling.scale, scaling.mean.shape).tolist()


def streaming_moments(
    pairs: PopulationPairs, rows: np.ndarray, block: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (population) variance of ``rows``, read ``block`` rows at a time.

    float64, blocks merged with Chan et al.'s update, so data on disk is never loaded whole.
    """
    n, mean, m2 = 0, np.zeros(pairs.n_features), np.zeros(pairs.n_features)
    for start in range(0, len(rows), block):
        x = pairs.take(rows[start : start + block]).astype(np.float64)
        k, block_mean = len(x), x.mean(0)
        delta = block_mean - mean
        m2 += ((x - block_mean) ** 2).sum(0) + delta**2 * n * k / (n + k)
        mean += delta * k / (n + k)
        n += k
    return mean, m2 / n
