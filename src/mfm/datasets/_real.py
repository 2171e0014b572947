"""Loaders of the real data files (no downloads): located by argument or ``MFM_DATA_DIR``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anndata as ad
from anndata import AnnData

logger = logging.getLogger(__name__)

#: Environment variable naming the folder that holds the data files.
DATA_DIR_ENV = "MFM_DATA_DIR"
BODENMILLER_FILE = "bodenmiller2012_bcrxl.h5ad"
MOFFITT_FILE = "moffitt2018_hypothalamus_merfish.h5ad"


def bodenmiller_bcrxl(data_dir: str | Path | None = None) -> AnnData:
    """Load the Bodenmiller et al. 2012 mass-cytometry data: 8 patients, control vs BCR-XL.

    PBMC of 8 patients measured by CyTOF unstimulated (``condition == "Ref"``) and after
    B-cell receptor / Fc receptor cross-linking (``"BCRXL"``), as distributed in the
    Bioconductor package CATALYST: 23,926 cells x 24 markers.

    Parameters
    ----------
    data_dir
        Folder holding ``bodenmiller2012_bcrxl.h5ad``; ``None`` reads the environment
        variable ``MFM_DATA_DIR``.

    Returns
    -------
    AnnData with raw intensities in ``X``, ``layers["arcsinh5"]`` = arcsinh(X / 5), ``obs``
    columns ``patient_id``, ``condition``, ``sample_id``, ``file`` and
    ``var["marker_class"]`` (``type``: lineage, ``state``: signalling).

    Examples
    --------
    >>> adata = mfm.datasets.bodenmiller_bcrxl("/path/to/data")
    >>> mfm.pp.populations(adata, sample_key="patient_id", condition_key="condition",
    ...                    control="Ref", use_rep="arcsinh5")
    """
    return _read(BODENMILLER_FILE, data_dir)


def moffitt_hypothalamus(data_dir: str | Path | None = None) -> AnnData:
    """Load the Moffitt et al. 2018 MERFISH data of the mouse hypothalamic preoptic region.

    One animal, as distributed in the R package Banksy: 11,162 cells x 161 genes, two
    imaging planes.

    Parameters
    ----------
    data_dir
        Folder holding ``moffitt2018_hypothalamus_merfish.h5ad``; ``None`` reads the
        environment variable ``MFM_DATA_DIR``.

    Returns
    -------
    AnnData with expression values (not log-transformed) in ``X``, ``obsm["spatial"]``
    (microns), ``obs["z"]`` (imaging plane, one slice each), ``obs["Cell_class"]``
    (16 classes) and ``obs["Neuron_cluster_ID"]``.

    Examples
    --------
    >>> adata = mfm.datasets.moffitt_hypothalamus("/path/to/data")
    >>> adata.obs["slice"] = adata.obs["z"].astype(str).astype("category")
    >>> mfm.pp.niches(adata, n_neighbors=16, library_key="slice")
    """
    return _read(MOFFITT_FILE, data_dir)


def _read(filename: str, data_dir: str | Path | None) -> AnnData:
    """Read ``filename`` from ``data_dir`` (or ``$MFM_DATA_DIR``), with a clear error if absent."""
    path = _resolve(filename, data_dir)
    logger.info("reading %s", path)
    return ad.read_h5ad(path)


def _resolve(filename: str, data_dir: str | Path | None) -> Path:
    """Return the path of ``filename``, raising `FileNotFoundError` naming where it looked."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if not data_dir:
            msg = (
                f"Cannot locate {filename!r}: pass `data_dir` or set the environment variable "
                f"{DATA_DIR_ENV} to the folder holding it (mfm downloads nothing)."
            )
            raise FileNotFoundError(msg)
    path = Path(data_dir).expanduser() / filename
    if not path.is_file():
        msg = (
            f"{filename!r} not found in {str(path.parent)!r} (from `data_dir` or "
            f"{DATA_DIR_ENV}); put the file there or point {DATA_DIR_ENV} to its folder."
        )
        raise FileNotFoundError(msg)
    return path
