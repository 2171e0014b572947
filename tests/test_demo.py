"""`python -m mfm demo`: the README's main job, at a tiny budget."""

import anndata as ad
import numpy as np

from mfm.__main__ import demo


def test_demo_writes_h5ad_figure_and_model(tmp_path):
    summary = demo(tmp_path, max_steps=3, n_points=60, device="cpu", random_state=0)
    assert (tmp_path / "mfm_demo.png").stat().st_size > 0
    assert (tmp_path / "mfm_demo_model" / "config.json").exists()
    adata = ad.read_h5ad(tmp_path / "mfm_demo.h5ad")
    assert adata.uns["mfm"]["params"]["fit"]["coupling"] == "paired"
    methods = {"identity", "mean_shift", "FM", "MFM"}
    assert set(adata.uns["mfm"]["metrics"]["method"]) == methods
    # one row per held-out split and method, and the floor of each split, all finite
    assert len(summary) == 2 * (len(methods) + 1) and np.isfinite(summary.to_numpy()).all()
    for split in ("val", "test"):
        assert list(summary.loc[split].index) == [
            "identity",
            "mean_shift",
            "FM",
            "MFM",
            "noise floor",
        ]
        assert (summary.loc[(split, "noise floor")] > 0).all()
