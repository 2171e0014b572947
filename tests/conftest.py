import copy
import os
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder, from ``MFM_DATA_DIR``; skips when unset."""
    path = os.environ.get("MFM_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("MFM_DATA_DIR is not set to the shared data folder")
    return Path(path)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test models run fastest on one thread (and never oversubscribe a shared CPU)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _assert_same(a: object, b: object) -> None:
    """DataFrames, dicts (recursively) and arrays equal."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for name in a:
            _assert_same(a[name], b[name])
    else:
        np.testing.assert_array_equal(a, b)


def assert_same_anndata(adata: AnnData, before: AnnData) -> None:
    """``adata`` equals ``before``: X, obs, var, obsm, layers and every ``uns`` entry."""
    assert not adata.is_view
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    pd.testing.assert_frame_equal(adata.var, before.var)
    dense = [x.toarray() if sparse.issparse(x) else np.asarray(x) for x in (adata.X, before.X)]
    np.testing.assert_array_equal(*dense)
    for mapping, other in [(adata.obsm, before.obsm), (adata.layers, before.layers)]:
        assert list(mapping) == list(other)
        for key in mapping:
            _assert_same(mapping[key], other[key])
    _assert_same(copy.deepcopy(dict(adata.uns)), dict(before.uns))


@pytest.fixture
def assert_unchanged() -> Callable[[AnnData, AnnData], None]:
    """Return the check that ``adata`` equals its earlier copy ``before`` (everything stored)."""
    return assert_same_anndata
