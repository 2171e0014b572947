"""`mfm.tl.evaluate` / `mfm.tl.baseline`: known distances, accumulation, and the h5ad round trip."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mfm

COLUMNS = ["method", "population", "condition", "split", "patient", "n_observed", "n_predicted"]
TREATED = [f"P{p}|{d}" for p in range(3) for d in ("drugA", "drugB")]
SPLIT = {"P0": "train", "P1": "val", "P2": "test"}


def _cells(adata, population):
    return adata[adata.obs["mfm_population"] == population].X


def test_table(adata):
    pred = mfm.tl.baseline(adata)
    table = mfm.tl.evaluate(adata, pred, metrics=("w1", "r2", "corr"))
    assert table.columns.tolist() == [
        *COLUMNS,
        "w1",
        "r2",
        "corr",
        "w1_floor",
        "r2_floor",
        "corr_floor",
    ]
    assert table["population"].tolist() == TREATED
    assert (table["method"] == "identity").all()
    assert table["condition"].tolist() == ["drugA", "drugB"] * 3
    assert table["patient"].tolist() == ["P0", "P0", "P1", "P1", "P2", "P2"]
    assert table["split"].tolist() == [SPLIT[p] for p in table["patient"]]
    assert (table["n_observed"] == 60).all()
    assert (table["n_predicted"] == 60).all()
    pd.testing.assert_frame_equal(adata.uns["mfm"]["metrics"], table)


def test_identity_w1_is_the_control_treated_distance(adata):
    table = mfm.tl.evaluate(adata, mfm.tl.baseline(adata), metrics=("w1", "w2", "mmd"))
    for row in table.itertuples():
        control, treated = (
            _cells(adata, row.population.split("|")[0] + "|control"),
            _cells(adata, row.population),
        )
        assert row.w1 == pytest.approx(mfm.metrics.w1(control, treated), rel=1e-9)
        assert row.w2 == pytest.approx(mfm.metrics.w2(control, treated), rel=1e-9)
        assert row.mmd == pytest.approx(mfm.metrics.mmd(control, treated), rel=1e-9)


def test_exact_shift_known_answers(prepare):
    """Treated cells = control cells + c: identity W1 = W2 = |c|; the mean shift is exact."""
    adata = prepare(exact=True)
    identity = mfm.tl.evaluate(adata, mfm.tl.baseline(adata), metrics=("w1", "w2", "r2"))
    expected = np.tile([2.0, 1.0], 3)  # |(2, 0, 0, 0)| and |(0, -1, 0, 0)|
    np.testing.assert_allclose(identity["w1"], expected, rtol=1e-5)
    np.testing.assert_allclose(identity["w2"], expected, rtol=1e-5)
    shifted = mfm.tl.baseline(adata, method="mean_shift")
    assert shifted.uns["mfm_prediction"]["method"] == "mean_shift"
    table = mfm.tl.evaluate(adata, shifted, metrics=("w1", "r2"))
    np.testing.assert_allclose(table["w1"], 0, atol=1e-5)
    np.testing.assert_allclose(table["r2"], 1, atol=1e-6)


def test_mean_shift_r2_on_noisy_data(adata):
    identity = mfm.tl.evaluate(adata, mfm.tl.baseline(adata), metrics=("w1", "r2"))
    pred = mfm.tl.baseline(adata, method="mean_shift")
    shifted = mfm.tl.evaluate(adata, pred, metrics=("w1", "r2")).set_index("population")
    # P0 is the only training patient: its own mean shift predicts its means exactly
    np.testing.assert_allclose(shifted.loc[["P0|drugA", "P0|drugB"], "r2"], 1, atol=1e-6)
    assert (shifted["r2"] > 0.8).all()
    assert (shifted["w1"].to_numpy() < identity["w1"].to_numpy()).all()


def test_mean_shift_uses_training_pairs_only(prepare):
    """P0 (train) has drugA +2 on g0; a shift of +7 on the held-out patients must not leak."""
    adata = prepare(exact=True)
    held_out = (adata.obs["patient"] != "P0") & (adata.obs["treatment"] == "drugA")
    adata.X[held_out.to_numpy(), 0] += 5.0
    pred = mfm.tl.baseline(adata, method="mean_shift", populations=["P1|drugA"])
    control = _cells(adata, "P1|control")
    np.testing.assert_allclose(pred.X - control, np.tile([2.0, 0, 0, 0], (60, 1)), atol=1e-5)


def test_accumulates_methods(fitted, predict_kw):
    adata, model = fitted("fm")
    first = mfm.tl.evaluate(adata, mfm.tl.baseline(adata), metrics=("w1",))
    mfm.tl.evaluate(adata, mfm.tl.baseline(adata, method="mean_shift"), metrics=("w1",))
    mfm.tl.evaluate(adata, mfm.tl.predict(adata, model, **predict_kw), metrics=("w1",))
    again = mfm.tl.evaluate(
        adata, mfm.tl.baseline(adata, populations=["P0|drugA"]), metrics=("w1",)
    )
    metrics = adata.uns["mfm"]["metrics"]
    assert metrics["method"].value_counts().to_dict() == {"identity": 6, "mean_shift": 6, "FM": 6}
    assert not metrics.duplicated(["method", "population"]).any()
    identity = metrics[metrics["method"] == "identity"].set_index("population")["w1"]
    np.testing.assert_allclose(identity.loc[TREATED], first.set_index("population")["w1"])
    assert again["w1"].item() == identity["P0|drugA"]


def test_evaluate_errors(adata, make):
    pred = mfm.tl.baseline(adata)
    renamed = pred.copy()
    renamed.var_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="var_names"):
        mfm.tl.evaluate(adata, renamed)
    no_column = pred.copy()
    del no_column.obs["mfm_population"]
    with pytest.raises(KeyError, match="mfm_population"):
        mfm.tl.evaluate(adata, no_column)
    unknown = pred.copy()
    unknown.obs["mfm_population"] = "P7|drugA"
    with pytest.raises(KeyError, match="P7"):
        mfm.tl.evaluate(adata, unknown)
    with pytest.raises(ValueError, match="Unknown metric"):
        mfm.tl.evaluate(adata, pred, metrics=("w3",))
    with pytest.raises(KeyError, match=r"mfm\.pp\.populations"):
        mfm.tl.evaluate(make(), pred)
    with pytest.raises(ValueError, match="`method`"):
        mfm.tl.baseline(adata, method="median")
    assert "metrics" not in adata.uns["mfm"]


def test_baseline_layout(adata):
    pred = mfm.tl.baseline(adata, populations=["P2|drugB"])
    assert pred.obs.columns.tolist() == [
        "mfm_population",
        "mfm_source",
        "treatment",
        "patient",
        "source_cell",
    ]
    np.testing.assert_array_equal(pred.X, _cells(adata, "P2|control"))
    assert pred.uns["mfm_prediction"] == {
        "method": "identity",
        "key_added": "mfm",
        "groupby": "none",
        "use_rep": "X",
    }


def _assert_same(written, read):
    if isinstance(written, pd.DataFrame):
        pd.testing.assert_frame_equal(read, written, check_dtype=False, check_categorical=False)
    elif isinstance(written, dict):
        assert sorted(read) == sorted(written)
        for name in written:
            _assert_same(written[name], read[name])
    elif isinstance(written, list):
        assert list(read) == written
    else:
        assert read == written


def test_h5ad_round_trip_of_every_output(fitted, predict_kw, tmp_path):
    adata, model = fitted("mfm")
    pred = mfm.tl.predict(adata, model, populations=["P0|drugA", "P2|drugB"], **predict_kw)
    mfm.tl.evaluate(adata, pred)
    mfm.tl.evaluate(adata, mfm.tl.baseline(adata))
    assert sorted(adata.uns["mfm"]) == [
        "history",
        "metrics",
        "params",
        "population_embedding",
        "populations",
        "predicted_treatments",
    ]
    assert {"X_mfm", "X_mfm_drugA", "X_mfm_drugB"} <= set(adata.obsm)
    adata.write_h5ad(tmp_path / "adata.h5ad")
    pred.write_h5ad(tmp_path / "pred.h5ad")
    back, pred_back = ad.read_h5ad(tmp_path / "adata.h5ad"), ad.read_h5ad(tmp_path / "pred.h5ad")

    _assert_same(dict(adata.uns), dict(back.uns))
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    for key in ("X_mfm", "X_mfm_drugA", "X_mfm_drugB"):
        np.testing.assert_array_equal(back.obsm[key], adata.obsm[key])
    np.testing.assert_array_equal(pred_back.X, pred.X)
    pd.testing.assert_frame_equal(pred_back.obs, pred.obs)
    assert pred_back.var_names.tolist() == pred.var_names.tolist()
    _assert_same(pred.uns["mfm_prediction"], pred_back.uns["mfm_prediction"])

    # the workflow goes on from the files
    again = mfm.tl.predict(back, model, populations=["P0|drugA", "P2|drugB"], **predict_kw)
    np.testing.assert_array_equal(again.X, pred.X)
    table = mfm.tl.evaluate(back, pred_back)
    pd.testing.assert_frame_equal(
        table, adata.uns["mfm"]["metrics"].iloc[:2].reset_index(drop=True), check_dtype=False
    )
    assert len(back.uns["mfm"]["metrics"]) == 2 + 6


def test_evaluate_names_a_population_with_nan(adata):
    pred = mfm.tl.baseline(adata, populations=["P2|drugB", "P1|drugA"])
    pred.X[pred.obs["mfm_population"].to_numpy() == "P1|drugA"] = np.nan
    before = adata.copy()
    with pytest.raises(ValueError, match=r"'P1\|drugA' contains 240 NaN"):
        mfm.tl.evaluate(adata, pred)
    assert "metrics" not in adata.uns["mfm"]
    assert before.n_obs == adata.n_obs


def test_evaluate_refuses_a_prediction_of_another_representation(adata):
    adata.layers["counts"] = adata.X.copy()
    pred = mfm.tl.baseline(adata, populations=["P2|drugB"])
    assert pred.uns["mfm_prediction"]["use_rep"] == "X"
    mfm.pp.populations(
        adata,
        sample_key="patient",
        condition_key="treatment",
        control="control",
        use_rep="counts",
    )
    with pytest.raises(ValueError, match="use_rep='X'"):
        mfm.tl.evaluate(adata, pred)
