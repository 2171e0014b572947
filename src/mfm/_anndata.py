"""AnnData helpers shared by the verbs (`pp`, `tl`, `pl`): views, feature matrices, groups.

The shared helpers that need anndata or pandas; `mfm.data`, `mfm.metrics`, `mfm.models` and
`mfm.flows` never import them (tested in ``tests/test_package_structure.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._keys import ID_SEPARATOR
from .data._rows import RowStore, is_on_disk


def check_obs_columns(adata: AnnData, columns: Iterable[str]) -> None:
    """Raise a `KeyError` naming the first column of ``columns`` missing from ``adata.obs``."""
    for column in columns:
        if column not in adata.obs.columns:
            msg = (
                f"Column {column!r} not found in `adata.obs`; "
                f"available columns: {list(adata.obs.columns)}."
            )
            raise KeyError(msg)


def check_no_separator(obs: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise a `ValueError` when a value of ``columns`` contains the id separator ``"|"``.

    Population ids (and split groups) join these values with the separator, so a value holding
    it could make two populations share one id (samples ``("A|B", "C")`` and ``("A", "B|C")``).
    """
    for column in columns:
        values = obs[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.cat.categories
        clashing = [str(v) for v in pd.unique(np.asarray(values)) if ID_SEPARATOR in str(v)]
        if clashing:
            msg = (
                f"Values of `adata.obs[{column!r}]` contain {ID_SEPARATOR!r}, which joins the "
                f"parts of population ids: {clashing[:5]}. Replace it, e.g. "
                f"`adata.obs[{column!r}] = adata.obs[{column!r}].astype(str).str.replace("
                f"{ID_SEPARATOR!r}, '/')`."
            )
            raise ValueError(msg)


def check_uns(adata: AnnData, key: str, entry: str, producer: str) -> Any:
    """Return ``adata.uns[key][entry]`` or raise a `KeyError` naming the call that writes it."""
    if key not in adata.uns or entry not in adata.uns[key]:
        msg = f"`adata.uns[{key!r}][{entry!r}]` not found; run `{producer}` first."
        raise KeyError(msg)
    return adata.uns[key][entry]


def check_feature_values(
    matrix: np.ndarray | sparse.spmatrix, what: str, *, row_offset: int = 0
) -> None:
    """Raise when ``matrix`` is not real, holds NaN/inf, or holds values beyond float32.

    Sparse matrices are checked on their stored values, without a dense copy. Rows named in
    errors are counted from ``row_offset`` (the position of a streamed block).
    """
    if sparse.issparse(matrix):
        coo = matrix.tocoo()
        values, row_of = coo.data, coo.row
    else:
        values = np.asarray(matrix)
        row_of = None
    if values.dtype.kind not in "iuf":
        msg = f"{what} must hold real numbers, got dtype {values.dtype}."
        raise TypeError(msg)
    if values.size == 0:
        return
    if row_of is None:
        values = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)

    def rows(mask: np.ndarray) -> list[int]:
        found = row_of[mask] if row_of is not None else np.flatnonzero(mask.any(axis=1))
        return (np.unique(found)[:5] + row_offset).tolist()

    bad = ~np.isfinite(values)
    if bad.any():
        msg = (
            f"{what} contains {int(bad.sum())} NaN or infinite values "
            f"(first rows: {rows(bad)}); remove or impute them first."
        )
        raise ValueError(msg)
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return  # integers and float32 always fit
    limit = float(np.finfo(np.float32).max)
    large = np.abs(values) > limit
    if large.any():
        msg = (
            f"{what} holds {int(large.sum())} finite values beyond the float32 range "
            f"(|x| > {limit:.3g}, largest {float(np.abs(values).max()):.3g}; first rows: "
            f"{rows(large)}); mfm computes in float32, so rescale them first."
        )
        raise ValueError(msg)


def make_actual(adata: AnnData) -> None:
    """Turn a view into an actual AnnData in place, as scanpy does, before a verb writes to it.

    A view shares ``uns`` (and its nested dicts) with its parent: writing into it would change
    the parent. The view becomes a copy with a warning; an actual AnnData is left as it is.
    """
    if not adata.is_view:
        return
    if adata.isbacked:
        msg = (
            "Received a view of a backed AnnData; mfm would have to write into the file's "
            "object. Load the subset first: `adata[...].to_memory()`."
        )
        raise ValueError(msg)
    warnings.warn("Received a view of an AnnData. Making a copy.", UserWarning, stacklevel=3)
    adata._init_as_actual(adata.copy())


def get_features(adata: AnnData, use_rep: str | None) -> tuple[np.ndarray, list[str]]:
    """Return the dense float32 feature matrix and feature names of ``use_rep``.

    Parameters
    ----------
    adata
        Annotated data matrix (in memory or backed).
    use_rep
        ``None`` for ``adata.X`` (dense or sparse), a key of ``adata.layers``, or a key of
        ``adata.obsm`` (e.g. ``"X_pca"``).

    Returns
    -------
    The ``(n_obs, n_features)`` float32 matrix and the feature names (``var_names`` for ``X`` and
    layers, the DataFrame columns or ``"{use_rep}_{i}"`` for ``obsm``).
    """
    matrix, names = feature_matrix(adata, use_rep)
    dense = matrix.toarray() if sparse.issparse(matrix) else matrix
    return dense.astype(np.float32, copy=False), names


def feature_matrix(
    adata: AnnData, use_rep: str | None
) -> tuple[np.ndarray | sparse.spmatrix, list[str]]:
    """Return the checked matrix of ``use_rep`` as stored (dense array or scipy sparse).

    Parameters
    ----------
    adata
        Annotated data matrix (in memory or backed).
    use_rep
        ``None`` (or ``"X"``) for ``adata.X``, a key of ``adata.layers`` or of ``adata.obsm``.

    Returns
    -------
    The ``(n_obs, n_features)`` matrix, without a dense copy of sparse data, and the feature
    names. NaN, infinite values and values beyond the float32 range raise a `ValueError`.
    """
    if use_rep is None or use_rep == "X":
        matrix, names = adata.X, list(map(str, adata.var_names))
    elif use_rep in adata.layers:
        matrix, names = adata.layers[use_rep], list(map(str, adata.var_names))
    elif use_rep in adata.obsm:
        matrix = adata.obsm[use_rep]
        if isinstance(matrix, pd.DataFrame):
            names, matrix = list(map(str, matrix.columns)), matrix.to_numpy()
        else:
            names = [f"{use_rep}_{i}" for i in range(matrix.shape[1])]
    else:
        msg = (
            f"`use_rep={use_rep!r}` is neither a key of `adata.layers` ({list(adata.layers)}) "
            f"nor of `adata.obsm` ({list(adata.obsm)}); use None for `adata.X`."
        )
        raise KeyError(msg)
    if matrix is None:
        msg = "`adata.X` is None; pass `use_rep` naming a layer or an obsm key."
        raise ValueError(msg)
    what = f"The features of `use_rep={use_rep!r}`"
    if is_on_disk(matrix):  # backed h5ad / zarr: checked block by block, left on disk
        for start, block in RowStore(matrix).blocks():
            check_feature_values(block, what, row_offset=start)
        return matrix, names
    if not sparse.issparse(matrix):
        matrix = np.asarray(matrix)
    check_feature_values(matrix, what)
    return matrix, names


def feature_rows(adata: AnnData, use_rep: str | None) -> tuple[np.ndarray | RowStore, list[str]]:
    """Like :func:`get_features`, but rows on disk stay there: a `RowStore` reads them.

    For an ``AnnData`` read with ``backed="r"`` (or zarr-backed) the matrix is checked in
    streaming blocks and wrapped in a :class:`~mfm.data.RowStore`; sparse matrices in memory
    are wrapped too (rows are densified only when read); dense arrays are returned as
    float32 arrays.
    """
    matrix, names = feature_matrix(adata, use_rep)
    if is_on_disk(matrix) or sparse.issparse(matrix):
        return RowStore(matrix), names
    return matrix.astype(np.float32, copy=False), names


def group_codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Group of every row (numbered by first appearance) and the first row of each group.

    Rows are grouped by the values of all columns of ``frame``, through integer codes
    (``pd.factorize``; NaN is a value of its own), never through strings per row.
    """
    key = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        codes, uniques = pd.factorize(frame[column], sort=False)
        key = key * (len(uniques) + 1) + codes + 1
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]
