"""Small shared utilities: random states, devices, feature matrices."""

from __future__ import annotations

import warnings
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse

from ._checks import check_feature_values, check_number, check_positive_int, check_seed
from .data._rows import RowStore, is_on_disk

RandomState: TypeAlias = int | np.random.Generator | None
Device: TypeAlias = Literal["auto", "cpu", "cuda"] | str | torch.device


def as_numpy_rng(random_state: RandomState) -> np.random.Generator:
    """Turn ``random_state`` into a `numpy.random.Generator` (never the global RNG)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def as_torch_generator(
    random_state: RandomState, device: torch.device | str = "cpu"
) -> torch.Generator:
    """Turn ``random_state`` into a seeded `torch.Generator` on ``device``."""
    if isinstance(random_state, int | np.integer):  # np.int64(3) seeds as 3 does
        seed = int(random_state)
    else:
        seed = as_numpy_rng(random_state).integers(2**62)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


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


def resolve_device(device: Device) -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; check that the device exists.

    Raises
    ------
    ValueError
        For a name torch does not know (e.g. ``"gpu"``).
    RuntimeError
        For ``"cuda"`` when no GPU is visible to torch.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        msg = f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r} ({error})."
        raise ValueError(msg) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = (
            f"`device={device!r}` asks for a GPU, but no GPU is visible to torch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Install a "
            "CUDA build of torch (`pip install torch`) on a machine with an NVIDIA GPU and "
            'driver, or pass `device="cpu"` (or "auto").'
        )
        raise RuntimeError(msg)
    return resolved


def check_training_options(
    *, lr: float, val_every: int, random_state: int, device: Device
) -> torch.device:
    """Check the options every training verb shares; return the resolved device.

    Parameters
    ----------
    lr
        Peak learning rate: a finite number > 0.
    val_every
        Steps between history rows: an integer >= 1.
    random_state
        Integer seed >= 0.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` (a GPU must be visible) or a `torch.device`.

    Returns
    -------
    The device training will use.
    """
    check_number("lr", lr)
    check_positive_int("val_every", val_every)
    check_seed("random_state", random_state)
    return resolve_device(device)


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
