"""The population workflow on an AnnData read with ``backed="r"``: rows read only as needed."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import mfm
from mfm.data import _rows

POPULATIONS = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}


def _workflow(adata, fit_kw, predict_kw, out=None):
    mfm.pp.populations(adata, **POPULATIONS)
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    model = mfm.tl.fit(adata, **fit_kw)
    pred = mfm.tl.predict(adata, model, populations=["P2|drugA", "P2|drugB"], out=out,
                          **predict_kw)  # fmt: skip
    table = mfm.tl.evaluate(adata, pred, metrics=("w1", "mmd"), floor=False)
    return model, pred, table


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_backed_workflow_equals_in_memory(make, fit_kw, predict_kw, tmp_path, monkeypatch, layout):
    cells = make()
    if layout == "sparse":
        cells.X = sparse.csr_matrix(cells.X)
    cells.write_h5ad(tmp_path / "cells.h5ad")
    model, pred, table = _workflow(ad.read_h5ad(tmp_path / "cells.h5ad"), fit_kw, predict_kw)

    reads = []  # rows of every block read from the file
    dense = _rows._dense
    monkeypatch.setattr(_rows, "_dense", lambda block: reads.append(block.shape[0]) or dense(block))
    monkeypatch.setattr(_rows, "MAX_GAP", 0)  # read only runs of wanted rows
    monkeypatch.setattr(_rows, "BLOCK_ROWS", 100)  # streaming passes in blocks of 100 rows
    backed = ad.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    out = tmp_path / "pred.h5ad"
    b_model, b_pred, b_table = _workflow(backed, fit_kw, predict_kw, out=out)

    assert reads and max(reads) <= 60  # never more than one population (60 cells) at once
    assert backed.isbacked and b_pred.isbacked and b_pred.filename == out
    for name, value in model.module.state_dict().items():
        torch.testing.assert_close(b_model.module.state_dict()[name], value, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(b_pred.X[:]), pred.X)
    pd.testing.assert_frame_equal(b_pred.obs, pred.obs, check_categorical=False)
    assert b_pred.uns["mfm_prediction"]["solver"] == pred.uns["mfm_prediction"]["solver"]
    pd.testing.assert_frame_equal(b_table, table)
    assert not [k for k in backed.obsm if k.startswith("X_mfm")]  # no (n_obs, d) arrays


def test_nan_in_backed_data_named_by_row(make, tmp_path, monkeypatch):
    cells = make()
    cells.X[321, 2] = np.nan
    cells.write_h5ad(tmp_path / "cells.h5ad")
    monkeypatch.setattr(_rows, "BLOCK_ROWS", 100)
    backed = ad.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first rows: \[321\]\)"):
        mfm.pp.populations(backed, **POPULATIONS)


def test_row_store_reads_rows_in_any_order(tmp_path):
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    ad.AnnData(x).write_h5ad(tmp_path / "x.h5ad")
    store = _rows.RowStore(ad.read_h5ad(tmp_path / "x.h5ad", backed="r").X)
    rows = np.array([7, 3, 3, 19, 0, 8])
    np.testing.assert_array_equal(store.take(rows), x[rows])
    assert store.take(np.array([], dtype=int)).shape == (0, 3)
    sparse_store = _rows.RowStore(sparse.csr_matrix(x))
    np.testing.assert_array_equal(sparse_store.take(rows), x[rows])


def test_prediction_file_must_be_h5ad(fitted, predict_kw, tmp_path):
    adata, model = fitted("mfm")
    with pytest.raises(ValueError, match=r"`out` must name an \.h5ad file"):
        mfm.tl.predict(adata, model, out=tmp_path / "pred.zarr", **predict_kw)


def test_failed_prediction_leaves_no_file(fitted, predict_kw, tmp_path, monkeypatch):
    adata, model = fitted("mfm")
    monkeypatch.setattr(
        model, "transport_populations", lambda x0, *a, **k: [x * np.nan for x in x0]
    )
    with pytest.raises(ValueError, match="NaN or infinite"):
        mfm.tl.predict(adata, model, out=tmp_path / "pred.h5ad", **predict_kw)
    assert list(tmp_path.iterdir()) == []
