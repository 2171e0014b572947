"""`copy=True` on every `mfm.pp` verb: a modified copy is returned, the input is untouched."""

import numpy as np
import pandas as pd
from test_pp_niches import make_tissue

import mfm

KW = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}


def test_populations_and_split_return_a_copy(adata):
    before = adata.copy()
    assert mfm.pp.populations(adata, **KW) is None  # in place by default
    out = mfm.pp.populations(before, **KW, copy=True)
    assert "mfm" not in before.uns and "mfm_population" not in before.obs
    pd.testing.assert_frame_equal(out.uns["mfm"]["populations"], adata.uns["mfm"]["populations"])
    split = mfm.pp.split(out, by="patient", test=["P2"], copy=True)
    assert (out.uns["mfm"]["populations"]["split"] == "train").all()
    assert (split.uns["mfm"]["populations"]["split"] == "test").sum() > 0


def test_niches_returns_a_copy():
    adata = make_tissue()
    out = mfm.pp.niches(adata, n_neighbors=4, library_key="slice", copy=True)
    assert "niche_indices" not in adata.obsm and "niche" not in adata.uns
    mfm.pp.niches(adata, n_neighbors=4, library_key="slice")
    np.testing.assert_array_equal(out.obsm["niche_indices"], adata.obsm["niche_indices"])
