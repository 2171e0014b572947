"""Distances between cell populations and niche metrics (numpy arrays in, floats out).

Distribution metrics compare predicted cells ``x`` ``(n, d)`` with observed cells ``y``
``(m, d)``: exact Wasserstein distances (POT), RBF MMD with the Meta Flow Matching bandwidths,
energy distance (Euclidean, pertpy's convention), r2 of feature means and the correlation of
feature-feature correlations; :func:`noise_floor` gives each metric between two halves of the
observed cells, the best score a prediction can be expected to reach. Niche metrics compare
collections of small point clouds: pairwise exact W2, the W2 between two collections
(:func:`set_w2`), 1-NN two-sample accuracy and kNN label accuracy on per-cloud summaries.
"""

from ._clouds import cloud_summaries, cloud_w2_matrix, set_w2
from ._distribution import DISTRIBUTION_METRICS, distribution_metrics, noise_floor
from ._energy import energy_distance
from ._mmd import MFM_BANDWIDTHS, MFM_GAMMAS, mmd
from ._moments import corr_of_correlations, r2_means
from ._niches import label_accuracy, one_nn_accuracy
from ._wasserstein import w1, w2, wasserstein

__all__ = [
    "DISTRIBUTION_METRICS",
    "MFM_BANDWIDTHS",
    "MFM_GAMMAS",
    "cloud_summaries",
    "cloud_w2_matrix",
    "corr_of_correlations",
    "distribution_metrics",
    "energy_distance",
    "label_accuracy",
    "mmd",
    "noise_floor",
    "one_nn_accuracy",
    "r2_means",
    "set_w2",
    "w1",
    "w2",
    "wasserstein",
]
