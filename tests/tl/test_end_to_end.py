"""End to end: organoid screen -> patient split -> FM, CGFM, MFM -> held-out patients."""

import numpy as np
import pandas as pd
import pytest

import mfm

METRICS = ("w1", "w2", "mmd", "energy", "r2")


@pytest.fixture(scope="module")
def screen():
    adata = mfm.datasets.organoid_screen(random_state=0)
    mfm.pp.populations(
        adata,
        sample_key=["patient", "culture", "replicate"],
        condition_key="treatment",
        control="control",
    )
    mfm.pp.split(adata, by="patient", test=["P07", "P08"], val=["P06"])
    return adata


@pytest.mark.slow
def test_mfm_beats_fm_on_held_out_patients(screen, tmp_path):
    table = screen.uns["mfm"]["populations"]
    held_out = table.index[(table["split"] == "test") & (table["condition"] != "control")]
    results = [
        mfm.tl.evaluate(
            screen,
            mfm.tl.baseline(screen, method=b, populations=held_out),
            metrics=METRICS,
            max_cells=500,
        )
        for b in ("identity", "mean_shift")
    ]
    for method in ("fm", "cgfm", "mfm"):
        model = mfm.tl.fit(
            screen,
            method=method,
            max_steps=300,
            cells_per_population=128,
            device="cpu",
            progress=False,
        )
        pred = mfm.tl.predict(screen, model, populations=held_out, solver="euler", n_steps=20)
        results.append(mfm.tl.evaluate(screen, pred, metrics=METRICS, max_cells=500))
    means = pd.concat(results).groupby("method")[list(METRICS)].mean()

    # MFM's knowledge of the unseen patients shows in the distributions (W1, MMD, energy:
    # 2.896 / 0.0117 / 0.216 vs FM 3.130 / 0.0180 / 0.375, CGFM 2.960 / 0.0218 / 0.454); the
    # mean shift alone (r2 of means) FM learns as well or better at this budget (0.905 vs 0.882)
    for metric in ("w1", "mmd", "energy"):
        for other in ("FM", "CGFM", "identity", "mean_shift"):
            assert means.loc["MFM", metric] < means.loc[other, metric], (metric, other)
    assert means.loc["MFM", "r2"] > means.loc["mean_shift", "r2"]
    # every method's rows accumulate in uns and the whole AnnData survives h5ad
    stored = screen.uns["mfm"]["metrics"]
    assert set(stored["method"]) == {"identity", "mean_shift", "FM", "CGFM", "MFM"}
    screen.write_h5ad(tmp_path / "screen.h5ad")
    assert np.isfinite(stored[["w1", "w2", "mmd", "r2"]].to_numpy(dtype=float)).all()


@pytest.mark.slow
def test_bcrxl_patient_split_runs(data_dir):
    adata = mfm.datasets.bodenmiller_bcrxl(data_dir)
    mfm.pp.populations(
        adata, sample_key="patient_id", condition_key="condition", control="Ref", use_rep="arcsinh5"
    )
    mfm.pp.split(adata, by="patient_id", test=["Patient7", "Patient8"])
    model = mfm.tl.fit(adata, method="mfm", max_steps=20, cells_per_population=64, progress=False)
    held_out = ["Patient7|BCRXL", "Patient8|BCRXL"]
    pred = mfm.tl.predict(adata, model, populations=held_out, solver="euler", n_steps=5)
    table = mfm.tl.evaluate(adata, pred, max_cells=300)
    assert list(table["population"]) == held_out
    assert list(pred.var_names) == list(adata.var_names)
    assert np.isfinite(table[["w1", "w2", "mmd", "r2"]].to_numpy(dtype=float)).all()
    assert adata.obsm["X_mfm"].shape == (adata.n_obs, adata.n_vars)
