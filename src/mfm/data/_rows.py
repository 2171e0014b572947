"""`RowStore`: rows of a feature matrix held in memory or on disk, read only where needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import sparse

#: Rows read per block by :meth:`RowStore.blocks`.
BLOCK_ROWS = 65536
#: Runs of wanted rows closer than this are read as one slice (the rows between are dropped).
MAX_GAP = 256


class RowStore:
    """Dense float32 rows of a matrix that may live on disk.

    Wraps what AnnData holds in ``X``, a layer or ``obsm``: a numpy array, a scipy sparse
    matrix, or an on-disk array (h5py / zarr dataset, anndata's backed sparse dataset) of an
    ``AnnData`` read with ``backed="r"``. :meth:`take` reads only the wanted rows: they are
    sorted, grouped into runs (rows less than ``MAX_GAP`` apart), and each run is read as one
    slice, so rows stored together (a population written contiguously) cost one read, and
    nothing but the rows asked for is ever made dense.

    Parameters
    ----------
    matrix
        ``(n_obs, d)`` array-like supporting ``matrix[start:stop]`` (and ``.shape``).
    """

    def __init__(self, matrix: Any) -> None:
        if len(matrix.shape) != 2:
            msg = f"`matrix` must be 2-D (n_obs, d), got shape {tuple(matrix.shape)}."
            raise ValueError(msg)
        self.matrix = matrix
        self.in_memory = isinstance(matrix, np.ndarray)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, d)``."""
        return int(self.matrix.shape[0]), int(self.matrix.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), d)`` float32 dense rows, in the order (and with the repeats) asked.

        Parameters
        ----------
        rows
            Integer row positions, any order, repeats allowed.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.in_memory:
            return np.asarray(self.matrix[rows], dtype=np.float32)
        if len(rows) == 0:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        unique, inverse = np.unique(rows, return_inverse=True)
        breaks = np.flatnonzero(np.diff(unique) > MAX_GAP) + 1
        parts = []
        for run in np.split(unique, breaks):
            block = _dense(self.matrix[int(run[0]) : int(run[-1]) + 1])
            parts.append(block[run - run[0]])
        return np.concatenate(parts)[inverse]

    def blocks(self, block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows as stored)`` blocks of consecutive rows (sparse stays sparse).

        Parameters
        ----------
        block_rows
            Rows per block (default ``BLOCK_ROWS`` = 65536).
        """
        block_rows = BLOCK_ROWS if block_rows is None else block_rows
        for start in range(0, self.shape[0], block_rows):
            block = self.matrix[start : start + block_rows]
            yield start, block if sparse.issparse(block) else np.asarray(block)


def _dense(block: Any) -> np.ndarray:
    """A read block as a dense float32 array."""
    if sparse.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=np.float32)


def is_on_disk(matrix: Any) -> bool:
    """Whether ``matrix`` is an on-disk array (not numpy, not scipy sparse in memory)."""
    return not isinstance(matrix, np.ndarray) and not sparse.issparse(matrix)
