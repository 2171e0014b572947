"""`PredictionFile`: an ``.h5ad`` of predicted cells written block by block as they are made."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

try:
    from anndata.io import write_elem
except ImportError:  # anndata < 0.11
    from anndata.experimental import write_elem

#: Rows per HDF5 chunk of ``X`` (chunks of whole rows: a population reads as few chunks).
CHUNK_ROWS = 4096


class PredictionFile:
    """Write ``pred`` (see :func:`mfm.tl.predict`) to an ``.h5ad`` without holding ``X``.

    The file is created with its ``obs``, ``var`` and ``uns`` and an empty ``(n, d)``
    float32 ``X``; :meth:`add` writes the next rows of ``X``; :meth:`close` checks every row
    was written, renames the temporary file into place (so an interrupted prediction never
    leaves a file that reads as complete) and opens it with ``backed="r"``.

    Parameters
    ----------
    path
        Destination ``.h5ad`` file (replaced if it exists).
    obs
        ``pred.obs``, one row per predicted cell, in the order rows will be added.
    features
        ``pred.var_names``.
    uns
        ``pred.uns``.
    """

    def __init__(self, path: str | Path, obs: pd.DataFrame, features: list[str], uns: dict):
        self.path = Path(path)
        if self.path.suffix != ".h5ad":
            msg = f"`out` must name an .h5ad file, got {str(path)!r}."
            raise ValueError(msg)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        shape = (len(obs), len(features))
        var = pd.DataFrame(index=pd.Index(features, dtype=str))
        self.file = h5py.File(self.temporary, "w")
        self.file.attrs["encoding-type"] = "anndata"
        self.file.attrs["encoding-version"] = "0.1.0"
        chunks = (max(1, min(CHUNK_ROWS, shape[0])), max(1, shape[1]))
        self.x = self.file.create_dataset("X", shape=shape, dtype=np.float32, chunks=chunks)
        self.x.attrs["encoding-type"] = "array"
        self.x.attrs["encoding-version"] = "0.2.0"
        for name, value in (("obs", obs), ("var", var), ("uns", uns)):
            write_elem(self.file, name, value)
        for name in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(self.file, name, {})
        self.written = 0

    def add(self, predicted: list[np.ndarray]) -> None:
        """Write the next blocks of predicted cells."""
        for x in predicted:
            self.x[self.written : self.written + len(x)] = x.astype(np.float32, copy=False)
            self.written += len(x)

    def abort(self) -> None:
        """Close and delete the unfinished file (the destination is left as it was)."""
        self.file.close()
        self.temporary.unlink(missing_ok=True)

    def close(self) -> ad.AnnData:
        """Finish the file and return it opened with ``backed="r"``."""
        complete = self.written == self.x.shape[0]
        self.file.close()
        if not complete:
            self.temporary.unlink(missing_ok=True)
            msg = f"{self.written} of {self.x.shape[0]} predicted rows were written."
            raise RuntimeError(msg)
        os.replace(self.temporary, self.path)
        return ad.read_h5ad(self.path, backed="r")
