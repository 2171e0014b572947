"""`mfm.pp.populations`: the populations table, the obs column, use_rep and every error."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import mfm

CONDITIONS = ["control", "drugA", "drugB"]
KW = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}
IDS = [f"P{p}|{c}" for p in range(3) for c in CONDITIONS]


def test_table(adata):
    mfm.pp.populations(adata, **KW)
    table = adata.uns["mfm"]["populations"]
    assert table.index.name == "population"
    assert table.index.tolist() == IDS
    assert table.columns.tolist() == ["patient", "condition", "n_cells", "source", "split"]
    assert table["patient"].tolist() == [f"P{p}" for p in range(3) for _ in CONDITIONS]
    assert table["condition"].tolist() == CONDITIONS * 3
    assert table["n_cells"].tolist() == [60] * 9
    assert table["source"].tolist() == [f"P{p}|control" for p in range(3) for _ in CONDITIONS]
    assert (table["split"] == "train").all()


def test_obs_column_and_params(adata):
    mfm.pp.populations(adata, **KW)
    labels = adata.obs["mfm_population"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert labels.cat.categories.tolist() == IDS
    expected = adata.obs["patient"].astype(str) + "|" + adata.obs["treatment"].astype(str)
    assert (labels.astype(str) == expected).all()
    assert adata.uns["mfm"]["params"] == {
        "sample_key": ["patient"],
        "condition_key": "treatment",
        "control": "control",
        "use_rep": "X",
        "min_cells": 50,
    }


def test_key_added_and_earlier_results_replaced(adata):
    adata.uns["screen"] = {"history": pd.DataFrame({"step": [1]})}
    mfm.pp.populations(adata, **KW, key_added="screen")
    assert "screen_population" in adata.obs
    assert "mfm_population" not in adata.obs
    assert sorted(adata.uns["screen"]) == ["params", "populations"]


def test_multi_column_sample_key(make):
    adata = make(n_replicates=2)
    mfm.pp.populations(adata, **{**KW, "sample_key": ["patient", "replicate"]}, min_cells=20)
    table = adata.uns["mfm"]["populations"]
    assert len(table) == 3 * 2 * 3
    assert table.index[:3].tolist() == ["P0|0|control", "P0|0|drugA", "P0|0|drugB"]
    assert (table["n_cells"] == 30).all()
    # the control of each population is in the same patient *and* replicate
    expected = table["patient"] + "|" + table["replicate"].astype(str) + "|control"
    assert (table["source"] == expected).all()
    assert pd.api.types.is_integer_dtype(table["replicate"])  # numeric values kept
    assert adata.uns["mfm"]["params"]["sample_key"] == ["patient", "replicate"]


def _as_layer(adata):
    adata.layers["counts"] = adata.X.copy()
    adata.X = np.full(adata.shape, np.nan, dtype=np.float32)  # must not be read
    return "counts"


def _as_obsm(adata):
    adata.obsm["X_pca"] = adata.X[:, :2].copy()
    adata.X[0, 0] = np.nan
    return "X_pca"


def _as_sparse(adata):
    adata.X = sparse.csr_matrix(adata.X)


@pytest.mark.parametrize(
    ("prepare", "recorded"),
    [(lambda a: None, "X"), (_as_layer, "counts"), (_as_obsm, "X_pca"), (_as_sparse, "X")],
    ids=["X", "layer", "obsm", "sparse"],
)
def test_use_rep(adata, prepare, recorded):
    use_rep = prepare(adata)
    mfm.pp.populations(adata, **KW, use_rep=use_rep)
    assert adata.uns["mfm"]["params"]["use_rep"] == recorded
    assert len(adata.uns["mfm"]["populations"]) == 9


def test_min_cells_drops_small_populations_and_orphans(make):
    adata = make(n_cells={("P1", "drugB"): 10, ("P2", "control"): 10})
    with pytest.warns(UserWarning, match="fewer than 20 cells") as record:
        mfm.pp.populations(adata, **KW, min_cells=20)
    message = str(record[0].message)
    for dropped in ["P1|drugB", "P2|control", "P2|drugA", "P2|drugB"]:
        assert dropped in message
    assert "whose control was dropped" in message
    assert record[0].filename == __file__  # stacklevel points at the caller
    table = adata.uns["mfm"]["populations"]
    assert table.index.tolist() == ["P0|control", "P0|drugA", "P0|drugB", "P1|control", "P1|drugA"]
    labels = adata.obs["mfm_population"]
    assert labels.cat.categories.tolist() == table.index.tolist()
    dropped_cells = (adata.obs["patient"] == "P2") | (
        (adata.obs["patient"] == "P1") & (adata.obs["treatment"] == "drugB")
    )
    assert labels[dropped_cells].isna().all()
    assert labels[~dropped_cells].notna().all()
    assert labels.value_counts().to_dict() == dict.fromkeys(table.index, 60)


def _nan_feature(adata):
    adata.X[5, 2] = np.nan


def _inf_feature(adata):
    adata.X[7, 0] = np.inf


def _no_control_for_p1(adata):
    treatment = adata.obs["treatment"].astype(str)
    treatment[(adata.obs["patient"] == "P1") & (treatment == "control")] = "drugA"
    adata.obs["treatment"] = treatment


def _nan_in_obs(adata):
    adata.obs.loc["cell3", "patient"] = np.nan


ERRORS = {
    "missing sample_key": (None, {"sample_key": "donor"}, KeyError, "'donor'"),
    "missing condition_key": (None, {"condition_key": "drug"}, KeyError, "'drug'"),
    "unknown control": (None, {"control": "placebo"}, ValueError, "'placebo'"),
    "unknown use_rep": (None, {"use_rep": "X_nope"}, KeyError, "X_nope"),
    "nan features": (_nan_feature, {}, ValueError, "NaN"),
    "inf features": (_inf_feature, {}, ValueError, "infinite"),
    "sample without control": (_no_control_for_p1, {}, ValueError, r"no control.*'P1'"),
    "all under min_cells": (None, {"min_cells": 61}, ValueError, "min_cells=61"),
    "min_cells < 1": (None, {"min_cells": 0}, ValueError, "min_cells"),
    "no sample_key": (None, {"sample_key": []}, ValueError, "sample_key"),
    "condition is a sample key": (None, {"sample_key": "treatment"}, ValueError, "condition_key"),
    "nan in obs": (_nan_in_obs, {}, ValueError, "missing values"),
}


@pytest.mark.parametrize(("mutate", "kwargs", "error", "match"), ERRORS.values(), ids=ERRORS)
def test_errors_leave_adata_unchanged(adata, mutate, kwargs, error, match):
    mfm.pp.populations(adata, **KW)  # earlier results that a failing call must keep
    if mutate is not None:
        mutate(adata)
    before = adata.copy()
    with pytest.raises(error, match=match):
        mfm.pp.populations(adata, **{**KW, **kwargs})
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    assert list(adata.uns) == list(before.uns) == ["mfm"]
    pd.testing.assert_frame_equal(adata.uns["mfm"]["populations"], before.uns["mfm"]["populations"])
    assert adata.uns["mfm"]["params"] == before.uns["mfm"]["params"]


def test_first_failing_call_writes_nothing(adata):
    with pytest.raises(ValueError, match="placebo"):
        mfm.pp.populations(adata, **{**KW, "control": "placebo"})
    assert "mfm_population" not in adata.obs
    assert "mfm" not in adata.uns


def test_h5ad_round_trip(make, tmp_path):
    adata = make(n_replicates=2, n_cells={("P1", "drugB"): 10})
    with pytest.warns(UserWarning, match="P1"):
        mfm.pp.populations(adata, **{**KW, "sample_key": ["patient", "replicate"]}, min_cells=6)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    pd.testing.assert_frame_equal(back.uns["mfm"]["populations"], adata.uns["mfm"]["populations"])
    pd.testing.assert_series_equal(back.obs["mfm_population"], adata.obs["mfm_population"])
    params = back.uns["mfm"]["params"]
    assert list(params.pop("sample_key")) == ["patient", "replicate"]
    assert params == {
        "condition_key": "treatment",
        "control": "control",
        "use_rep": "X",
        "min_cells": 6,
    }


def test_sparse_x_is_checked_without_a_dense_copy(adata, monkeypatch):
    """The NaN check reads the stored values of a sparse X: no (n_obs x n_vars) dense copy."""
    adata.X = sparse.csr_matrix(adata.X)

    def densify(self, *args, **kwargs):
        raise AssertionError("densified")

    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", densify)
        monkeypatch.setattr(cls, "todense", densify)
    monkeypatch.setattr(sparse.csr_matrix, "__array__", densify, raising=False)
    mfm.pp.populations(adata, **KW)
    assert adata.uns["mfm"]["populations"].index.tolist() == IDS
    bad = adata.X.copy()
    bad.data[7] = np.inf
    adata.X = bad
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first rows: \[1\]\)"):
        mfm.pp.populations(adata, **KW)


def test_ids_of_distinct_samples_never_collide(make):
    """Samples ("A-B", "C") and ("A", "B-C") stay two samples; "|" in a value is refused."""
    adata = make()
    first = (adata.obs["patient"] == "P0").to_numpy()
    adata.obs["s1"] = np.where(first, "A-B", "A")
    adata.obs["s2"] = np.where(first, "C", "B-C")
    mfm.pp.populations(adata, **{**KW, "sample_key": ["s1", "s2"]})
    table = adata.uns["mfm"]["populations"]
    assert len(table) == 6 and table["n_cells"].tolist() == [120, 120, 120, 60, 60, 60]
    adata.obs["s1"] = np.where(first, "A|B", "A")
    with pytest.raises(ValueError, match=r"adata.obs\['s1'\].*\['A\|B'\]"):
        mfm.pp.populations(adata, **{**KW, "sample_key": ["s1", "s2"]})
