"""Two-sample and label metrics of generated niches: 1-NN accuracy, kNN label accuracy."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .._checks import check_positive_int
from .._utils import RandomState, as_numpy_rng
from ._inputs import as_points


def one_nn_accuracy(
    d_real_real: np.ndarray, d_gen_gen: np.ndarray, d_real_gen: np.ndarray
) -> float:
    r"""Leave-one-out 1-nearest-neighbour two-sample accuracy from distance matrices.

    Pool the ``n_r`` real and ``n_g`` generated items, label them by origin, and classify each
    item by its nearest other item (itself excluded; ties go to the first index, real items
    first). The accuracy is

    .. math::
        \mathrm{1NNA} = \frac{1}{n_r + n_g} \sum_{i} 1[\mathrm{origin}(\mathrm{NN}(i)) =
        \mathrm{origin}(i)]

    0.5 when the generated items are indistinguishable from the real ones, 1.0 when the two
    sets are separated, below 0.5 when generated items copy real ones.

    Parameters
    ----------
    d_real_real
        ``(n_r, n_r)`` distances between real items.
    d_gen_gen
        ``(n_g, n_g)`` distances between generated items.
    d_real_gen
        ``(n_r, n_g)`` distances from real to generated items.

    Returns
    -------
    The accuracy in [0, 1].

    Raises
    ------
    ValueError
        On shapes that do not fit together, fewer than 2 items in all, or NaN distances.

    Examples
    --------
    Two sets of niches drawn from the same distribution are hard to tell apart (about 0.5):

    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> real, generated = rng.normal(size=(30, 16, 2)), rng.normal(size=(30, 16, 2))
    >>> d_rr = mfm.metrics.cloud_w2_matrix(real)
    >>> d_gg = mfm.metrics.cloud_w2_matrix(generated)
    >>> d_rg = mfm.metrics.cloud_w2_matrix(real, generated)
    >>> round(mfm.metrics.one_nn_accuracy(d_rr, d_gg, d_rg), 2)
    0.47
    """
    pooled = _pooled_distances(d_real_real, d_gen_gen, d_real_gen)
    n_real = len(d_real_real)
    np.fill_diagonal(pooled, np.inf)
    is_real = np.arange(len(pooled)) < n_real
    nearest = np.argmin(pooled, axis=1)
    return float(np.mean(is_real[nearest] == is_real))


def label_accuracy(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    gen_features: np.ndarray,
    gen_labels: np.ndarray,
    *,
    n_neighbors: int = 5,
    cv: int = 5,
    standardize: bool = True,
    random_state: RandomState = 0,
) -> dict[str, float]:
    """Accuracy of a kNN classifier of labels (e.g. the centre cell type of each niche).

    ``"generated"``: a :class:`~sklearn.neighbors.KNeighborsClassifier` fitted on all real items
    predicts the labels of the generated items (do generated niches look like their condition?).
    ``"real"``: the same classifier's accuracy on the real items under stratified
    ``cv``-fold cross-validation (shuffled), the reference the generated accuracy is read
    against. Classes with fewer than ``cv`` real members cannot be stratified: they are left
    out of the cross-validation (with a warning; still used for ``"generated"``), and ``"real"``
    is NaN when no class has ``cv`` members. ``n_neighbors`` is lowered to the training-set size
    where that is smaller.

    Parameters
    ----------
    real_features
        ``(n_r, f)`` features of real items (e.g. :func:`cloud_summaries` of real niches).
    real_labels
        ``(n_r,)`` labels of the real items.
    gen_features
        ``(n_g, f)`` features of generated items.
    gen_labels
        ``(n_g,)`` labels the generated items were conditioned on.
    n_neighbors
        Neighbours of the kNN vote.
    cv
        Number of cross-validation folds, >= 2.
    standardize
        Scale each feature to zero mean and unit variance using the training items (features
        such as means and covariances have different scales).
    random_state
        Seed or generator of the fold shuffling.

    Returns
    -------
    ``{"generated": accuracy, "real": cross-validated accuracy}``.

    Raises
    ------
    ValueError
        On mismatched shapes or labels, non-finite features, or invalid ``n_neighbors`` / ``cv``.

    Examples
    --------
    Niches summarised by feature vectors, labelled by their centre cell's type:

    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(["a", "b"], 50)
    >>> real = rng.normal(size=(100, 4)) + (labels == "b")[:, None] * 2.0
    >>> generated = rng.normal(size=(100, 4)) + (labels == "b")[:, None] * 2.0
    >>> scores = mfm.metrics.label_accuracy(real, labels, generated, labels)
    >>> {name: round(value, 2) for name, value in scores.items()}
    {'generated': 0.98, 'real': 0.97}
    """
    check_positive_int("n_neighbors", n_neighbors)
    check_positive_int("cv", cv, minimum=2)
    real_x, real_y = _features_and_labels(real_features, real_labels, "real")
    gen_x, gen_y = _features_and_labels(gen_features, gen_labels, "gen")
    if real_x.shape[1] != gen_x.shape[1]:
        msg = (
            f"`real_features` and `gen_features` must have the same number of columns, got "
            f"{real_x.shape[1]} and {gen_x.shape[1]}."
        )
        raise ValueError(msg)
    classifier = _classifier(n_neighbors, len(real_x), standardize).fit(real_x, real_y)
    generated = float(np.mean(classifier.predict(gen_x) == gen_y))
    real = _cross_validated(real_x, real_y, n_neighbors, cv, standardize, random_state)
    return {"generated": generated, "real": real}


def _cross_validated(
    x: np.ndarray,
    y: np.ndarray,
    n_neighbors: int,
    cv: int,
    standardize: bool,
    random_state: RandomState,
) -> float:
    """Stratified-CV accuracy of the kNN classifier on the classes with >= ``cv`` members."""
    classes, counts = np.unique(y, return_counts=True)
    rare = classes[counts < cv]
    if len(rare):
        msg = (
            f"Real classes {rare.tolist()} have fewer than cv={cv} members and are left out of "
            "the cross-validated accuracy."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    keep = ~np.isin(y, rare)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    seed = int(as_numpy_rng(random_state).integers(2**31 - 1))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    n_train = len(x) - int(np.ceil(len(x) / cv))  # smallest training fold
    classifier = _classifier(n_neighbors, n_train, standardize)
    return float(np.mean(cross_val_score(classifier, x, y, cv=folds)))


def _classifier(n_neighbors: int, n_train: int, standardize: bool) -> Pipeline:
    """Build a kNN classifier (after optional scaling) with at most ``n_train`` neighbours."""
    knn = KNeighborsClassifier(n_neighbors=max(1, min(n_neighbors, n_train)))
    return make_pipeline(StandardScaler(), knn) if standardize else make_pipeline(knn)


def _features_and_labels(
    features: np.ndarray, labels: np.ndarray, prefix: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check an ``(n, f)`` feature matrix and its ``(n,)`` labels."""
    x = as_points(features, f"{prefix}_features")
    y = np.asarray(labels)
    if y.shape != (len(x),):
        msg = f"`{prefix}_labels` must have shape ({len(x)},) to match the features, got {y.shape}."
        raise ValueError(msg)
    return x, y


def _pooled_distances(
    d_real_real: np.ndarray, d_gen_gen: np.ndarray, d_real_gen: np.ndarray
) -> np.ndarray:
    """Check the three blocks and return the pooled ``(n_r + n_g, n_r + n_g)`` distance matrix."""
    rr, gg, rg = (np.asarray(d, dtype=np.float64) for d in (d_real_real, d_gen_gen, d_real_gen))
    n_r, n_g = len(rr), len(gg)
    if rr.shape != (n_r, n_r) or gg.shape != (n_g, n_g) or rg.shape != (n_r, n_g):
        msg = (
            "Expected `d_real_real` (n_r, n_r), `d_gen_gen` (n_g, n_g) and `d_real_gen` "
            f"(n_r, n_g), got {rr.shape}, {gg.shape} and {rg.shape}."
        )
        raise ValueError(msg)
    pooled = np.block([[rr, rg], [rg.T, gg]])
    if len(pooled) < 2 or np.isnan(pooled).any():
        msg = "1-NN accuracy needs at least 2 items in all and distance matrices without NaN."
        raise ValueError(msg)
    return pooled
