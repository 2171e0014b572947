"""`mfm.pp.split`: patient / replica splits, random fractions and errors."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mfm

KW = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}


def _split_of(adata) -> dict[str, str]:
    return adata.uns["mfm"]["populations"]["split"].astype(str).to_dict()


def _patient_split(adata) -> dict[str, str]:
    """The split of each patient (asserting that it is constant within the patient)."""
    table = adata.uns["mfm"]["populations"]
    per_patient = table.groupby("patient")["split"].agg(lambda s: set(s.astype(str)))
    assert (per_patient.map(len) == 1).all()
    return per_patient.map(lambda s: s.pop()).to_dict()


def test_by_column(adata):
    mfm.pp.populations(adata, **KW)
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    split = adata.uns["mfm"]["populations"]["split"]
    assert isinstance(split.dtype, pd.CategoricalDtype)
    assert split.cat.categories.tolist() == ["train", "val", "test"]
    assert _patient_split(adata) == {"P0": "train", "P1": "val", "P2": "test"}
    assert adata.uns["mfm"]["params"]["split"] == {"by": ["patient"], "test": ["P2"], "val": ["P1"]}


def test_single_value_and_no_val(adata):
    mfm.pp.populations(adata, **KW)
    mfm.pp.split(adata, by="patient", test="P0")
    assert _patient_split(adata) == {"P0": "test", "P1": "train", "P2": "train"}
    assert adata.uns["mfm"]["params"]["split"]["val"] == []


def test_by_columns_with_tuples(make):
    adata = make(n_replicates=2)
    mfm.pp.populations(adata, **{**KW, "sample_key": ["patient", "replicate"]}, min_cells=20)
    mfm.pp.split(adata, by=["patient", "replicate"], test=[("P0", 1), ("P2", 0)], val=[("P1", 0)])
    table = adata.uns["mfm"]["populations"]
    group = table["patient"] + "|" + table["replicate"].astype(str)
    expected = group.map({"P0|1": "test", "P2|0": "test", "P1|0": "val"}).fillna("train")
    assert (table["split"].astype(str) == expected).all()
    assert adata.uns["mfm"]["params"]["split"]["test"] == ["P0|1", "P2|0"]


def test_coarser_column_than_sample(make):
    """Splitting replicate samples by patient keeps all replicates of a patient together."""
    adata = make(n_replicates=2)
    mfm.pp.populations(adata, **{**KW, "sample_key": ["patient", "replicate"]}, min_cells=20)
    mfm.pp.split(adata, by="patient", test=["P1"])
    assert _patient_split(adata) == {"P0": "train", "P1": "test", "P2": "train"}


@pytest.fixture
def ten_patients(make):
    adata = make(n_patients=10, n_cells=5)
    mfm.pp.populations(adata, **KW, min_cells=5)
    return adata


def _draw(adata, random_state):
    mfm.pp.split(adata, by="patient", test=0.2, val=0.3, random_state=random_state)
    splits = pd.Series(_patient_split(adata))
    return sorted(splits.index[splits == "test"]), sorted(splits.index[splits == "val"])


def test_fractions(ten_patients):
    test, val = _draw(ten_patients, 0)
    assert len(test) == 2
    assert len(val) == 3
    assert not set(test) & set(val)
    assert _draw(ten_patients, 0) == (test, val)  # deterministic
    assert _draw(ten_patients, np.random.default_rng(5)) == _draw(
        ten_patients, np.random.default_rng(5)
    )
    draws = {str(_draw(ten_patients, seed)) for seed in range(6)}
    assert len(draws) > 1  # different seeds, different draws


def test_dropped_populations_are_ignored(make):
    adata = make(n_cells={("P1", "drugB"): 10})
    with pytest.warns(UserWarning, match="P1"):
        mfm.pp.populations(adata, **KW, min_cells=20)
    mfm.pp.split(adata, by="patient", test=["P1"])
    assert _patient_split(adata) == {"P0": "train", "P1": "test", "P2": "train"}
    assert "P1|drugB" not in adata.uns["mfm"]["populations"].index


ERRORS = {
    "unknown value": ({"test": ["P9"]}, ValueError, r"\['P9'\] not found"),
    "unknown tuple": ({"by": ["patient", "treatment"], "test": [("P0", "x")]}, ValueError, "P0|x"),
    "overlap": ({"test": ["P1"], "val": ["P1", "P2"]}, ValueError, r"\['P1'\] are also in `test`"),
    "nothing left": ({"test": ["P0", "P1"], "val": ["P2"]}, ValueError, "nothing is left"),
    "not constant": ({"by": "replicate", "test": ["0"]}, ValueError, "not constant"),
    "bad fraction": ({"test": 1.5}, ValueError, r"\[0, 1\)"),
    "missing column": ({"by": "donor", "test": ["x"]}, KeyError, "'donor'"),
}


@pytest.mark.parametrize(("kwargs", "error", "match"), ERRORS.values(), ids=ERRORS)
def test_errors_leave_table_unchanged(make, kwargs, error, match):
    adata = make(n_replicates=2)
    mfm.pp.populations(adata, **KW)
    mfm.pp.split(adata, by="patient", test=["P2"])
    before = adata.copy()
    with pytest.raises(error, match=match):
        mfm.pp.split(adata, **{"by": "patient", **kwargs})
    pd.testing.assert_frame_equal(adata.uns["mfm"]["populations"], before.uns["mfm"]["populations"])
    assert adata.uns["mfm"]["params"] == before.uns["mfm"]["params"]


def test_split_before_populations(adata):
    with pytest.raises(KeyError, match="mfm.pp.populations"):
        mfm.pp.split(adata, by="patient", test=["P0"])


def test_h5ad_round_trip(adata, tmp_path):
    mfm.pp.populations(adata, **KW)
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    pd.testing.assert_frame_equal(back.uns["mfm"]["populations"], adata.uns["mfm"]["populations"])
    split = back.uns["mfm"]["params"]["split"]
    assert {k: list(v) for k, v in split.items()} == {
        "by": ["patient"],
        "test": ["P2"],
        "val": ["P1"],
    }
