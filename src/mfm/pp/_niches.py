"""`mfm.pp.niches`: the spatial niche of every cell, its k nearest neighbours within its slice."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import check_obs_columns, get_features, make_actual
from .._checks import check_positive_int

logger = logging.getLogger(__name__)


def niches(
    adata: AnnData,
    *,
    n_neighbors: int = 16,
    spatial_key: str = "spatial",
    library_key: str | None = None,
    use_rep: str | None = None,
    include_center: bool = False,
    key_added: str = "niche",
    copy: bool = False,
) -> AnnData | None:
    """Define the niche of every cell: its ``n_neighbors`` nearest cells in space.

    The spatial kNN graph is built by :func:`squidpy.gr.spatial_neighbors_knn` (Euclidean
    distance between the coordinates in ``adata.obsm[spatial_key]``), separately in each slice
    of ``library_key``, so niches never cross slices. Squidpy runs on a throw-away AnnData
    holding only the coordinates: ``adata.obsp`` and the rest of ``adata.uns`` are untouched.
    Within a niche, cells are ordered by distance from the centre cell (ties by position).

    A niche is a point cloud in the feature space ``use_rep`` (what :func:`mfm.tl.fit_niches`
    learns to generate); its cells are stored as positions, so subsetting ``adata`` afterwards
    invalidates them: run this function again on the subset.

    Parameters
    ----------
    adata
        Annotated data matrix with spatial coordinates; cells in rows.
    n_neighbors
        Number of points ``k`` per niche. Every slice needs more than ``k`` cells
        (``k`` cells with ``include_center``).
    spatial_key
        Key of ``adata.obsm`` with the ``(n_obs, n_dims)`` coordinates.
    library_key
        Column of ``adata.obs`` naming the slice of each cell (any dtype; values are compared
        as strings); ``None``: one slice.
    use_rep
        Features the niches are made of: ``None`` for ``adata.X``, a key of ``adata.layers``
        or of ``adata.obsm`` (e.g. ``"X_pca"``).
    include_center
        Make the cell itself the first point of its niche, followed by its ``k - 1`` nearest
        neighbours; otherwise a niche holds the ``k`` nearest *other* cells.
    key_added
        Prefix of the keys written (see Returns).
    copy
        Return a copy of ``adata`` with the keys added, instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy, with ``copy=True``); sets

    - ``adata.obsm['{key_added}_indices']``: ``(n_obs, k)`` int64 positions (into
      ``adata.obs``) of the points of each cell's niche, nearest first;
    - ``adata.uns[key_added]['params']``: the parameters (``n_neighbors``, ``spatial_key``,
      ``library_key`` when given, ``use_rep`` (``"X"`` for ``adata.X``), ``include_center``,
      ``n_obs``), as plain types.

    Any earlier ``adata.uns[key_added]`` (a fitted history, metrics) is replaced. A view is
    made an actual AnnData first (with a warning), so its parent is never changed.

    Examples
    --------
    >>> adata = mfm.datasets.simulated_tissue()
    >>> mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    >>> adata.obsm["niche_indices"].shape
    (3000, 8)
    """
    adata = adata.copy() if copy else adata
    keys = K.NicheKeys(key_added)
    make_actual(adata)
    check_positive_int("n_neighbors", n_neighbors, minimum=1 + bool(include_center))
    n_query = n_neighbors - bool(include_center)
    coords, slices = _check_inputs(adata, n_query, spatial_key, library_key, use_rep)

    logger.info("computing the %d nearest neighbours of %d cells", n_query, adata.n_obs)
    indices = _knn_indices(coords, slices, n_query)
    if include_center:
        indices = np.hstack([np.arange(adata.n_obs)[:, None], indices])

    adata.obsm[keys.obsm_indices] = indices
    params = {
        K.N_NEIGHBORS: int(n_neighbors),
        K.SPATIAL_KEY: spatial_key,
        K.USE_REP: "X" if use_rep is None else use_rep,
        K.INCLUDE_CENTER: bool(include_center),
        K.N_OBS: int(adata.n_obs),
    }
    if library_key is not None:
        params[K.LIBRARY_KEY] = library_key
    adata.uns[keys.uns] = {keys.params: params}
    logger.info("finished; added obsm[%r], uns[%r]", keys.obsm_indices, keys.uns)
    return adata if copy else None


def _check_inputs(
    adata: AnnData,
    n_query: int,
    spatial_key: str,
    library_key: str | None,
    use_rep: str | None,
) -> tuple[np.ndarray, pd.Categorical]:
    """Return the checked coordinates and slice of each cell; raise on anything unusable."""
    if spatial_key not in adata.obsm:
        msg = (
            f"Spatial coordinates `adata.obsm[{spatial_key!r}]` not found; "
            f"available keys: {list(adata.obsm)}. Pass `spatial_key`."
        )
        raise KeyError(msg)
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 1:
        msg = f"`adata.obsm[{spatial_key!r}]` must be (n_obs, n_dims), got shape {coords.shape}."
        raise ValueError(msg)
    if not np.isfinite(coords).all():
        rows = np.flatnonzero(~np.isfinite(coords).all(axis=1))
        msg = (
            f"`adata.obsm[{spatial_key!r}]` has NaN or infinite coordinates in {len(rows)} cells "
            f"(first rows: {rows[:5].tolist()}); drop or fix those cells first."
        )
        raise ValueError(msg)
    slices = _slices(adata, library_key)
    counts = pd.Series(slices).value_counts()
    if counts.min() <= n_query:
        small = counts[counts <= n_query]
        msg = (
            f"`n_neighbors` asks for {n_query} neighbours per cell, but slices "
            f"{small.index.tolist()[:10]} have only {small.tolist()[:10]} cells; "
            "lower `n_neighbors` or drop those slices."
        )
        raise ValueError(msg)
    get_features(adata[:0], use_rep)  # unknown use_rep -> KeyError, before any work
    return coords, slices


def _slices(adata: AnnData, library_key: str | None) -> pd.Categorical:
    """Slice of each cell as a categorical of strings (one slice when ``library_key`` is None)."""
    if library_key is None:
        return pd.Categorical(np.zeros(adata.n_obs, dtype=np.int64).astype(str))
    check_obs_columns(adata, [library_key])
    column = adata.obs[library_key]
    if column.isna().any():
        msg = f"`adata.obs[{library_key!r}]` has missing values; every cell needs a slice."
        raise ValueError(msg)
    return pd.Categorical(column.astype(str))


def _knn_indices(coords: np.ndarray, slices: pd.Categorical, n_query: int) -> np.ndarray:
    """``(n_obs, n_query)`` nearest other cells of the same slice, nearest first."""
    import squidpy as sq  # heavy (seconds): imported on first use, not with mfm

    # A minimal AnnData: squidpy writes nothing into the user's object and needs a categorical.
    lite = AnnData(
        obs=pd.DataFrame({"library": slices}, index=pd.RangeIndex(len(coords)).astype(str)),
        obsm={"spatial": coords},
    )
    graph = sq.gr.spatial_neighbors_knn(
        lite, spatial_key="spatial", library_key="library", n_neighs=n_query, copy=True
    ).connectivities.tocsr()
    # Use the connectivities, not the distances: a zero distance (duplicated coordinates) is
    # not stored in the sparse distance matrix.
    graph.eliminate_zeros()
    if not (np.diff(graph.indptr) == n_query).all():
        msg = f"squidpy returned a kNN graph without exactly {n_query} neighbours per cell."
        raise RuntimeError(msg)
    neighbours = graph.indices.reshape(len(coords), n_query).astype(np.int64)
    distance = np.linalg.norm(coords[neighbours] - coords[:, None, :], axis=-1)
    order = np.lexsort((neighbours, distance), axis=-1)  # by distance, then by position
    return np.take_along_axis(neighbours, order, axis=1)
