"""`mfm.tl.fit` / `mfm.tl.predict`: what they write, determinism, CGFM codes and errors."""

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import mfm

CONTROLS = ["P0|control", "P1|control", "P2|control"]
TREATED = [f"P{p}|{d}" for p in range(3) for d in ("drugA", "drugB")]
DRUG_A = ["P0|drugA", "P1|drugA", "P2|drugA"]
#: `tests/tl/conftest.py`'s ``PREDICT`` in `MetaFlowModel.transport`'s names.
PER_CALL = {"solver": "euler", "n_steps": 5}
POPULATIONS_KW = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}


def test_fit_before_populations(make, fit_kw):
    with pytest.raises(KeyError, match=r"run `mfm\.pp\.populations` first"):
        mfm.tl.fit(make(), **fit_kw)


BAD_OPTIONS = {
    "method": ({"method": "vae"}, "`method`"),
    "source": ({"source": "gauss"}, "`source`"),
    "coupling": ({"coupling": "sinkhorn"}, "`coupling`"),
    "negative knn": ({"knn": -1}, "`knn`"),
    "knn >= cells": ({"knn": 24, "cells_per_population": 24}, "knn=24"),
    "max_steps": ({"max_steps": 0}, "`max_steps`"),
    "cells_per_population": ({"cells_per_population": 1, "knn": 0}, "`cells_per_population`"),
    "batch_populations": ({"batch_populations": 0}, "`batch_populations`"),
    "paired noise": ({"coupling": "paired", "source": "noise"}, "needs source='control'"),
    "standardize": ({"standardize": "zscore"}, "`standardize`"),
    "val_fraction": ({"val_fraction": 1.0}, "`val_fraction`"),
    "lr": ({"lr": "fast"}, "`lr`"),
}


@pytest.mark.parametrize(("kwargs", "match"), BAD_OPTIONS.values(), ids=BAD_OPTIONS)
def test_bad_options(adata, fit_kw, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mfm.tl.fit(adata, **{**fit_kw, **kwargs})
    assert sorted(adata.uns["mfm"]) == ["params", "populations"]  # nothing written


def test_no_train_pairs(make, fit_kw):
    adata = make()
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    mfm.pp.split(adata, by="treatment", test=["drugA", "drugB"])  # only controls train
    with pytest.raises(ValueError, match="No treated population in the 'train' split"):
        mfm.tl.fit(adata, **fit_kw)


@pytest.mark.parametrize(("max_steps", "steps"), [(30, [10, 20, 30]), (25, [10, 20, 25])])
def test_history(prepare, fit_kw, max_steps, steps):
    adata = prepare()
    mfm.tl.fit(adata, **{**fit_kw, "method": "fm", "max_steps": max_steps})
    history = adata.uns["mfm"]["history"]
    assert history.columns.tolist() == ["method", "step", "train_loss", "val_loss", "lr", "kept"]
    assert history["method"].nunique() == 1
    assert len(history) == math.ceil(max_steps / fit_kw["val_every"])
    assert history["step"].tolist() == steps
    assert np.isfinite(history[["train_loss", "val_loss", "lr"]].to_numpy()).all()
    assert (history["train_loss"] > 0).all()
    # no "val" populations and nothing held out: no validation loss, the last step is kept
    adata = prepare(val=())
    mfm.tl.fit(adata, **{**fit_kw, "method": "fm", "max_steps": max_steps, "val_fraction": 0})
    history = adata.uns["mfm"]["history"]
    assert history["val_loss"].isna().all()
    assert history["kept"].tolist() == [False] * (len(history) - 1) + [True]
    assert adata.uns["mfm"]["params"]["fit"]["validation"] == "none"


def test_fit_params_are_plain(fitted, fit_kw):
    adata, model = fitted("mfm")
    params = adata.uns["mfm"]["params"]["fit"]
    for name in ["max_steps", "hidden", "knn", "cells_per_population", "val_every"]:
        assert params[name] == fit_kw[name]
    assert params["method"] == "mfm"
    assert params["random_state"] == 0
    json.dumps(params)  # plain types only
    assert model.config.treatments == ["drugA", "drugB"]
    assert model.config.train_sources == ["P0|control"]
    assert model.features == ["g0", "g1", "g2", "g3"]
    assert model.label == "MFM"


def test_population_embedding(fitted):
    adata, model = fitted("mfm")
    embedding = adata.uns["mfm"]["population_embedding"]
    assert embedding.index.tolist() == CONTROLS  # every control, seen in training or not
    assert embedding.columns.tolist() == [f"h{j}" for j in range(8)]
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1, rtol=1e-5)  # normalised
    cells = adata[adata.obs["mfm_population"] == "P2|control"].X
    np.testing.assert_allclose(embedding.loc["P2|control"], model.embed(cells, "P2|control"))
    # predicting updates the rows of the predicted sources and keeps the others
    adata.uns["mfm"]["population_embedding"] = embedding * 0
    mfm.tl.predict(adata, model, populations=["P2|drugA"], solver="euler", n_steps=2)
    after = adata.uns["mfm"]["population_embedding"]
    assert sorted(after.index) == CONTROLS
    np.testing.assert_allclose(after.loc["P2|control"], embedding.loc["P2|control"])
    assert (after.loc[["P0|control", "P1|control"]] == 0).all(axis=None)


def test_cgfm_unseen_population_gets_mean_one_hot(prepare, fit_kw):
    adata = prepare(val=())  # P0, P1 train; P2 test
    model = mfm.tl.fit(adata, **{**fit_kw, "method": "cgfm", "max_steps": 2})
    assert model.config.train_sources == ["P0|control", "P1|control"]
    embedding = adata.uns["mfm"]["population_embedding"]
    expected = pd.DataFrame(
        [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], index=CONTROLS, columns=["h0", "h1"]
    )
    np.testing.assert_array_equal(embedding.loc[CONTROLS], expected)
    assert model.population_code("P2|control") == -1


def test_fm_has_no_embedding(fitted):
    adata, _ = fitted("fm")
    assert "population_embedding" not in adata.uns["mfm"]


def test_prediction_layout(fitted, predict_kw):
    adata, model = fitted("mfm")
    pred = mfm.tl.predict(adata, model, **predict_kw)
    assert pred.shape == (6 * 60, 4)
    assert pred.X.dtype == np.float32
    assert np.isfinite(pred.X).all()
    assert pred.var_names.tolist() == ["g0", "g1", "g2", "g3"]
    assert pred.obs.columns.tolist() == [
        "mfm_population",
        "mfm_source",
        "treatment",
        "patient",
        "source_cell",
    ]
    assert pred.obs_names.is_unique
    assert isinstance(pred.obs["mfm_population"].dtype, pd.CategoricalDtype)
    table = adata.uns["mfm"]["populations"]
    for population, rows in pred.obs.groupby("mfm_population", observed=True):
        assert len(rows) == 60
        assert (rows["mfm_source"] == table.loc[population, "source"]).all()
        assert (rows["treatment"] == table.loc[population, "condition"]).all()
        assert (rows["patient"] == table.loc[population, "patient"]).all()
        source = adata.obs_names[adata.obs["mfm_population"] == table.loc[population, "source"]]
        assert rows["source_cell"].tolist() == source.tolist()
    assert sorted(pred.obs["mfm_population"].unique()) == TREATED
    assert pred.uns["mfm_prediction"] == {
        "method": "MFM",
        "key_added": "mfm",
        "solver": "euler",
        "n_steps": 5,
        "sde_eps": 0.0,
        "sde_steps": 100,
        "use_rep": "X",
    }


def test_obsm_only_on_control_rows(fitted, predict_kw):
    adata, model = fitted("mfm")
    mfm.tl.predict(adata, model, **predict_kw)  # two treatments per control: no X_mfm
    assert "X_mfm" not in adata.obsm
    pred = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    out = adata.obsm["X_mfm"]
    assert out.shape == (adata.n_obs, 4)
    is_control = (adata.obs["treatment"] == "control").to_numpy()
    assert np.isfinite(out[is_control]).all()
    assert np.isnan(out[~is_control]).all()
    rows = adata.obs_names.get_indexer(pred.obs["source_cell"])
    np.testing.assert_array_equal(out[rows], pred.X)
    np.testing.assert_array_equal(adata.obsm["X_mfm_drugA"], out)
    assert "X_mfm_drugB" not in adata.obsm  # the earlier prediction's entry is gone
    assert adata.uns["mfm"]["predicted_treatments"] == ["drugA"]


def test_obsm_per_treatment(fitted, predict_kw, tmp_path):
    adata, model = fitted("mfm")
    pred = mfm.tl.predict(adata, model, populations=[*DRUG_A, "P1|drugB"], **predict_kw)
    assert adata.uns["mfm"]["predicted_treatments"] == ["drugA", "drugB"]
    is_control = (adata.obs["treatment"] == "control").to_numpy()
    is_p1 = (adata.obs["patient"] == "P1").to_numpy()
    drug_a, drug_b = adata.obsm["X_mfm_drugA"], adata.obsm["X_mfm_drugB"]
    assert np.isfinite(drug_a[is_control]).all() and np.isnan(drug_a[~is_control]).all()
    assert np.isfinite(drug_b[is_control & is_p1]).all()
    assert np.isnan(drug_b[~(is_control & is_p1)]).all()
    for treatment, out in (("drugA", drug_a), ("drugB", drug_b)):
        cells = pred[pred.obs["treatment"] == treatment]
        rows = adata.obs_names.get_indexer(cells.obs["source_cell"])
        np.testing.assert_array_equal(out[rows], cells.X)
    assert "X_mfm" not in adata.obsm  # P1's control has two treatments
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm["X_mfm_drugB"], drug_b)
    assert list(back.uns["mfm"]["predicted_treatments"]) == ["drugA", "drugB"]


def test_obsm_not_written_for_noise_sources(fitted, predict_kw):
    adata, model = fitted("mfm", source="noise")
    mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    assert not [k for k in adata.obsm if k.startswith("X_mfm")]
    assert "predicted_treatments" not in adata.uns["mfm"]


def test_predict_subset_and_chunks(fitted, predict_kw):
    adata, model = fitted("mfm")
    full = mfm.tl.predict(adata, model, **predict_kw)
    part = mfm.tl.predict(adata, model, populations="P1|drugB", chunk_size=7, **predict_kw)
    assert part.obs["mfm_population"].unique().tolist() == ["P1|drugB"]
    np.testing.assert_allclose(part.X, full[full.obs["mfm_population"] == "P1|drugB"].X, atol=1e-6)


def test_dopri5_agrees_with_rk4(fitted):
    adata, model = fitted("mfm")
    adaptive = mfm.tl.predict(adata, model, populations=DRUG_A, solver="dopri5")
    fixed = mfm.tl.predict(adata, model, populations=DRUG_A, solver="rk4", n_steps=20)
    np.testing.assert_allclose(adaptive.X, fixed.X, atol=1e-3)
    assert adaptive.uns["mfm_prediction"]["n_steps"] == -1
    default = mfm.tl.predict(adata, model, populations=DRUG_A)
    assert default.uns["mfm_prediction"]["solver"] == "midpoint"
    assert default.uns["mfm_prediction"]["n_steps"] == 4
    np.testing.assert_allclose(default.X, fixed.X, atol=0.05)


def test_batched_solve_equals_one_solve_per_population(fitted, predict_kw):
    adata, model = fitted("mfm")
    pred = mfm.tl.predict(adata, model, **predict_kw)  # every population in one solve
    table = adata.uns["mfm"]["populations"]
    for population in TREATED:
        rows = (adata.obs["mfm_population"] == table.loc[population, "source"]).to_numpy()
        x0 = adata.X[rows]
        h = model.embed(x0, table.loc[population, "source"], 0)
        one = model.transport(x0, h, table.loc[population, "condition"], **PER_CALL)
        got = pred[pred.obs["mfm_population"] == population].X
        np.testing.assert_allclose(got, one, atol=1e-5)
    for chunk_size in (50, 130):  # solves of part of a population, of one and a bit
        other = mfm.tl.predict(adata, model, chunk_size=chunk_size, **predict_kw)
        np.testing.assert_allclose(other.X, pred.X, atol=1e-5)


@pytest.mark.parametrize("method", ["mfm", "cgfm", "fm"])
def test_same_seed_same_model(prepare, fit_kw, predict_kw, method):
    runs = []
    for seed in [0, 0, 1]:
        adata = prepare()
        model = mfm.tl.fit(
            adata, **{**fit_kw, "method": method, "max_steps": 10}, random_state=seed
        )
        pred = mfm.tl.predict(adata, model, **predict_kw)
        runs.append((adata.uns["mfm"]["history"], pred.X))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.allclose(runs[0][0]["train_loss"], runs[2][0]["train_loss"])
    assert not np.allclose(runs[0][1], runs[2][1])


def test_noise_source(prepare, fit_kw, predict_kw):
    adata = prepare()
    model = mfm.tl.fit(adata, **{**fit_kw, "method": "fm", "source": "noise", "max_steps": 5})
    assert model.label == "FM w/N"
    pred = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    assert pred.n_obs == 3 * 60  # as many cells as the control population
    assert (pred.obs["source_cell"] == "").all()
    assert "X_mfm" not in adata.obsm  # predictions do not belong to control cells
    again = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    other = mfm.tl.predict(adata, model, populations=DRUG_A, random_state=1, **predict_kw)
    np.testing.assert_array_equal(pred.X, again.X)
    assert not np.allclose(pred.X, other.X)


def test_predict_errors(fitted, make, predict_kw):
    adata, model = fitted("fm")
    with pytest.raises(KeyError, match="P9"):
        mfm.tl.predict(adata, model, populations=["P9|drugA"], **predict_kw)
    with pytest.raises(ValueError, match="control populations"):
        mfm.tl.predict(adata, model, populations=["P0|control"], **predict_kw)
    with pytest.raises(KeyError, match=r"mfm\.pp\.populations"):
        mfm.tl.predict(make(), model, **predict_kw)


def test_unknown_treatment_at_predict(fitted, make, predict_kw):
    _, model = fitted("fm")
    adata = make(conditions=("control", "drugA", "drugC"))
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    with pytest.raises(ValueError, match=r"\['P0\|drugC', 'P1\|drugC', 'P2\|drugC'\].*not trained"):
        mfm.tl.predict(adata, model, **predict_kw)
    pred = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)  # known ones still work
    assert pred.n_obs == 3 * 60
    with pytest.raises(ValueError, match="'drugC' was not seen in training"):
        model.treatment_code("drugC")


def test_use_rep_features(make, fit_kw, predict_kw):
    adata = make()
    adata.obsm["X_pca"] = pd.DataFrame(
        adata.X[:, :2] * 3, index=adata.obs_names, columns=["u", "v"]
    )
    mfm.pp.populations(
        adata, sample_key="patient", condition_key="treatment", control="control", use_rep="X_pca"
    )
    model = mfm.tl.fit(adata, **{**fit_kw, "method": "fm", "max_steps": 2})
    assert model.features == ["u", "v"]
    assert model.config.use_rep == "X_pca"
    pred = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    assert pred.var_names.tolist() == ["u", "v"]
    assert adata.obsm["X_mfm"].shape == (adata.n_obs, 2)


def test_global_random_states_untouched(prepare, fit_kw, predict_kw):
    adata = prepare()
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    model = mfm.tl.fit(adata, **{**fit_kw, "max_steps": 3})
    mfm.tl.predict(adata, model, **predict_kw)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


def test_small_control_population_with_large_knn(make, fit_kw, predict_kw):
    """Controls with <= knn cells are embedded from cells drawn with replacement, as in training."""
    adata = make(n_cells=8)
    mfm.pp.populations(
        adata, sample_key="patient", condition_key="treatment", control="control", min_cells=5
    )
    model = mfm.tl.fit(adata, **{**fit_kw, "knn": 10, "max_steps": 2})  # 10 < 24 cells drawn
    pred = mfm.tl.predict(adata, model, **predict_kw)
    assert pred.n_obs == 6 * 8
    # h of each 8-cell control is the GCN of the same 24 cells drawn with replacement (seed 0),
    # standardised as in training
    embedding = adata.uns["mfm"]["population_embedding"]
    assert embedding.index.tolist() == ["P0|control", "P1|control", "P2|control"]
    for name in embedding.index:
        cells = np.asarray(adata.X[(adata.obs["mfm_population"] == name).to_numpy()])
        drawn = cells[np.random.default_rng(0).choice(8, 24, replace=True)]
        with torch.no_grad():
            x = model.to_model_space(torch.as_tensor(drawn))[None]
            expected = model.module.embed(x, torch.tensor([-1]))[0]
        np.testing.assert_allclose(embedding.loc[name], expected.numpy(), rtol=1e-6, atol=1e-6)
        assert np.linalg.norm(embedding.loc[name]) == pytest.approx(1.0, abs=1e-5)  # normalised
    # every control cell is transported once per treatment, in order, to a finite state
    assert np.isfinite(pred.X).all()
    for population in ["P0|drugA", "P2|drugB"]:
        rows = pred.obs["mfm_population"] == population
        source = pred.obs.loc[rows, "mfm_source"].iloc[0]
        controls = adata.obs_names[adata.obs["mfm_population"] == source].tolist()
        assert pred.obs.loc[rows, "source_cell"].tolist() == controls


def test_treatments_are_those_of_the_training_pairs(make, fit_kw, predict_kw):
    """A treatment held out of training is not in the model; validation leaves it out."""
    adata = make(conditions=("control", "drugA", "drugB", "drugC"))
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    mfm.pp.split(adata, by="treatment", test=["drugB"], val=["drugC"])
    with pytest.warns(UserWarning, match=r"treatments \['drugC'\] are left out"):
        model = mfm.tl.fit(adata, **{**fit_kw, "max_steps": 2})
    assert model.config.treatments == ["drugA"]
    assert model.module.n_treatments == 1  # one-hot over drugA only
    # no validation pair left, and too few training populations to hold some out
    assert adata.uns["mfm"]["params"]["fit"]["validation"] == "none"
    pred = mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    assert set(pred.obs["treatment"]) == {"drugA"}
    with pytest.raises(ValueError, match=r"\['drugB'\]"):
        mfm.tl.predict(adata, model, populations=["P1|drugB"], **predict_kw)


def test_backed_sparse_x_gives_the_in_memory_result(make, fit_kw, predict_kw, tmp_path):
    adata = make()
    adata.X = sparse.csr_matrix(adata.X)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    results = []
    for backed in (None, "r"):
        data = ad.read_h5ad(tmp_path / "cells.h5ad", backed=backed)
        mfm.pp.populations(data, sample_key="patient", condition_key="treatment", control="control")
        model = mfm.tl.fit(data, **{**fit_kw, "max_steps": 2})
        results.append(mfm.tl.predict(data, model, populations=DRUG_A, **predict_kw).X)
    np.testing.assert_array_equal(results[1], results[0])


def test_obsm_not_stale_after_a_call_that_cannot_write_it(fitted, predict_kw):
    """A predict call that cannot fill obsm removes the previous (stale) one."""
    adata, model = fitted("mfm")
    mfm.tl.predict(adata, model, populations=DRUG_A, **predict_kw)
    mfm.tl.predict(adata, model, **predict_kw)  # drugA and drugB share each control
    assert "X_mfm" not in adata.obsm


def test_paired_coupling_learns_exact_shifts(prepare, fit_kw, predict_kw):
    # treated cells are their control cells shifted: paired rows give a zero-noise target, so
    # the loss falls far below the independent coupling's (which carries the cells' spread)
    adata = prepare(exact=True)
    losses = {}
    for coupling in ("independent", "paired"):
        kw = {**fit_kw, "max_steps": 150, "method": "fm", "coupling": coupling, "lr": 3e-3}
        mfm.tl.fit(adata, **kw)
        losses[coupling] = adata.uns["mfm"]["history"]["train_loss"].iloc[-1]
    assert losses["paired"] < 0.1 < 1.0 < losses["independent"]
    assert adata.uns["mfm"]["params"]["fit"]["coupling"] == "paired"


def test_paired_coupling_needs_equal_sizes(make, fit_kw):
    adata = make()
    adata = adata[~((adata.obs["treatment"] == "drugA") & (adata.obs_names == "cell60"))].copy()
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    with pytest.raises(ValueError, match=r"'P0\|drugA' has 59 cells, its control 'P0\|control'"):
        mfm.tl.fit(adata, **{**fit_kw, "coupling": "paired"})


@pytest.mark.parametrize("method", ["mfm", "fm"])
def test_global_standardisation_makes_results_unit_free(prepare, fit_kw, predict_kw, method):
    """Dividing the data by 0.8 divides the predictions by 0.8 (and changes nothing else)."""
    preds = {}
    for standardize in ["global", "none"]:
        for factor in [1.0, 0.8]:
            adata = prepare()
            adata.X = adata.X / np.float32(factor)
            kw = {**fit_kw, "method": method, "standardize": standardize}
            model = mfm.tl.fit(adata, **kw)
            preds[standardize, factor] = mfm.tl.predict(adata, model, **predict_kw).X * factor
    np.testing.assert_allclose(preds["global", 0.8], preds["global", 1.0], rtol=1e-3, atol=1e-3)
    assert not np.allclose(preds["none", 0.8], preds["none", 1.0], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("standardize", ["global", "feature"])
def test_standardisation_statistics_of_training_controls(prepare, fit_kw, standardize):
    adata = prepare()
    model = mfm.tl.fit(adata, **{**fit_kw, "standardize": standardize})
    control = adata.X[(adata.obs["mfm_population"] == "P0|control").to_numpy()]  # only train
    np.testing.assert_allclose(model.config.feature_mean, control.mean(0), rtol=1e-5)
    expected = control.std(0)
    if standardize == "global":
        expected = np.full(4, np.sqrt(np.mean(expected**2)))
    np.testing.assert_allclose(model.config.feature_scale, expected, rtol=1e-5)
    x = torch.as_tensor(control)
    torch.testing.assert_close(model.to_data_space(model.to_model_space(x)), x)


def test_no_holdout_when_few_populations(prepare, fit_kw):
    adata = prepare(val=())  # one training control population: nothing held out
    mfm.tl.fit(adata, **{**fit_kw, "val_fraction": 0.2})
    params = adata.uns["mfm"]["params"]["fit"]
    history = adata.uns["mfm"]["history"]
    assert params["validation"] == "none"
    assert history["val_loss"].isna().all()
    assert params["kept_step"] == fit_kw["max_steps"]  # the last weights
    assert history.loc[history["kept"], "step"].tolist() == [fit_kw["max_steps"]]


def test_mfm_with_few_training_populations_says_so(prepare, fit_kw, caplog):
    adata = prepare()  # one training control population
    with caplog.at_level("WARNING", logger="mfm"):
        mfm.tl.fit(adata, **{**fit_kw, "max_steps": 2})
    assert "from 1 training control populations" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mfm"):
        mfm.tl.fit(adata, **{**fit_kw, "method": "fm", "max_steps": 2})
    assert "population embedding" not in caplog.text


def test_holdout_of_populations_when_many(make, fit_kw, caplog):
    adata = make(n_patients=25, n_cells=20)
    mfm.pp.populations(
        adata, sample_key="patient", condition_key="treatment", control="control", min_cells=20
    )
    mfm.pp.split(adata, by="patient", test=["P24"])
    with caplog.at_level("WARNING", logger="mfm"):
        model = mfm.tl.fit(adata, **{**fit_kw, "val_fraction": 0.25})
    assert "population embedding" not in caplog.text  # 24 training populations: no warning
    params = adata.uns["mfm"]["params"]["fit"]
    history = adata.uns["mfm"]["history"]
    assert params["validation"] == "populations"
    # 24 training populations: no population dropout, the population-conditioned velocity alone
    assert (params["population_dropout"], params["population_weight"]) == (0.0, 1.0)
    assert params["population_weight_rule"] == "fixed"
    # 24 training patients: 6 held out (with both of their treated pairs), 18 trained on
    assert len(model.config.train_sources) == 18
    assert np.isfinite(history["val_loss"]).all()
    best = history.loc[history["val_loss"].idxmin(), "step"]
    assert params["kept_step"] == best
    assert history.loc[history["kept"], "step"].tolist() == [best]
    few = make(n_patients=20, n_cells=20)  # 19 training populations: fewer than 20
    mfm.pp.populations(
        few, sample_key="patient", condition_key="treatment", control="control", min_cells=20
    )
    mfm.pp.split(few, by="patient", test=["P19"])
    mfm.tl.fit(few, **{**fit_kw, "val_fraction": 0.25})
    assert few.uns["mfm"]["params"]["fit"]["validation"] == "none"


def test_user_val_split_is_used_as_is(fitted):
    adata, model = fitted("fm")
    assert adata.uns["mfm"]["params"]["fit"]["validation"] == "split"
    assert model.config.train_sources == ["P0|control"]


def test_auto_lr_follows_the_number_of_training_pairs(prepare, make, fit_kw):
    adata = prepare()  # 2 training pairs
    mfm.tl.fit(adata, **fit_kw)
    assert adata.uns["mfm"]["params"]["fit"]["lr"] == 1e-3
    mfm.tl.fit(adata, **{**fit_kw, "lr": 0.02})
    assert adata.uns["mfm"]["params"]["fit"]["lr"] == 0.02
    many = make(n_patients=34, n_cells=30)  # 32 training patients x 2 treatments = 64 pairs
    mfm.pp.populations(many, **POPULATIONS_KW, min_cells=20)
    mfm.pp.split(many, by="patient", test=["P33"], val=["P32"])
    mfm.tl.fit(many, **{**fit_kw, "max_steps": 2})
    assert many.uns["mfm"]["params"]["fit"]["lr"] == 1e-2


def test_resume_continues_an_interrupted_run_exactly(prepare, fit_kw, tmp_path, monkeypatch):
    kw = {**fit_kw, "max_steps": 30, "val_every": 10, "checkpoint_every": 10, "val_fraction": 0.2}
    whole = prepare()  # a validation split and restore_best: their state is saved too
    model = mfm.tl.fit(whole, **kw, checkpoint_dir=tmp_path / "whole")
    expected = {k: v.clone() for k, v in model.module.state_dict().items()}

    interrupted = prepare()
    batch = mfm.data.PopulationSampler.batch
    calls = []

    def stop_at_step_16(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 16:
            raise KeyboardInterrupt
        return batch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(mfm.data.PopulationSampler, "batch", stop_at_step_16)
        with pytest.raises(KeyboardInterrupt):
            mfm.tl.fit(interrupted, **kw, checkpoint_dir=tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint_rank0.pt").is_file()
    resumed = mfm.tl.fit(interrupted, **kw, checkpoint_dir=tmp_path / "cut", resume=True)
    pd.testing.assert_frame_equal(interrupted.uns["mfm"]["history"], whole.uns["mfm"]["history"])
    for name, value in resumed.module.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)


def test_resume_refuses_other_settings_and_needs_a_folder(prepare, fit_kw, tmp_path):
    adata = prepare()
    mfm.tl.fit(adata, **fit_kw, checkpoint_every=10, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"other settings \['max_steps'\]"):
        mfm.tl.fit(adata, **{**fit_kw, "max_steps": 40}, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="need a `checkpoint_dir`"):
        mfm.tl.fit(adata, **fit_kw, resume=True)


def test_population_weight_rules(prepare, fit_kw, tmp_path):
    """0.5 without validation populations, least squares on them, as given, 1 for FM."""
    few = prepare(val=())
    model = mfm.tl.fit(few, **fit_kw)
    params = few.uns["mfm"]["params"]["fit"]
    assert (params["population_weight"], params["population_weight_rule"]) == (
        0.25,
        "few populations",
    )
    assert model.config.population_weight == model.module.population_weight == 0.25
    assert params["population_dropout"] == 0.5

    split = prepare()  # patient P1 is the validation split
    model = mfm.tl.fit(split, **fit_kw)
    params = split.uns["mfm"]["params"]["fit"]
    assert params["population_weight_rule"] == "validation"
    assert 0.0 <= params["population_weight"] <= 1.0
    assert model.module.population_weight == params["population_weight"]
    model.save(tmp_path / "model")
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert loaded.module.population_weight == params["population_weight"]

    mfm.tl.fit(split, **fit_kw, population_weight=0.2)
    assert split.uns["mfm"]["params"]["fit"]["population_weight_rule"] == "given"
    assert split.uns["mfm"]["params"]["fit"]["population_weight"] == 0.2
    fm = mfm.tl.fit(split, **{**fit_kw, "method": "fm"})
    assert fm.module.population_weight == 1.0
    assert split.uns["mfm"]["params"]["fit"]["population_weight_rule"] == "fixed"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"population_dropout": 0.0, "population_weight": 0.5}, "population_dropout > 0"),
        ({"population_weight": 1.5}, "population_weight"),
        ({"population_dropout": 1.0}, "population_dropout"),
    ],
)
def test_bad_population_options(adata, fit_kw, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mfm.tl.fit(adata, **fit_kw, **kwargs)
