"""Small shared utilities: random states, devices, feature matrices."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse

from ._checks import check_finite

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
    seed = (
        as_numpy_rng(random_state).integers(2**62)
        if not isinstance(random_state, int)
        else random_state
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def resolve_device(device: Device) -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def get_features(adata: AnnData, use_rep: str | None) -> tuple[np.ndarray, list[str]]:
    """Return the dense float32 feature matrix and feature names of ``use_rep``.

    Parameters
    ----------
    adata
        Annotated data matrix.
    use_rep
        ``None`` for ``adata.X`` (dense or sparse), a key of ``adata.layers``, or a key of
        ``adata.obsm`` (e.g. ``"X_pca"``).

    Returns
    -------
    The ``(n_obs, n_features)`` float32 matrix and the feature names (``var_names`` for ``X`` and
    layers, the DataFrame columns or ``"{use_rep}_{i}"`` for ``obsm``).
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
    dense = matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix)
    dense = dense.astype(np.float32, copy=False)
    check_finite(dense, f"The features of `use_rep={use_rep!r}`")
    return dense, names
