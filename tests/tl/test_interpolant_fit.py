"""`fit(interpolant_sigma=...)` and `predict(sde_eps=...)`: unchanged at 0, seeded SDE above."""

import json

import numpy as np
import pytest
import torch

import mfm

#: ``sum`` and ``sum of abs`` of every weight after ``fit(prepared(), random_state=3, **FIT)``,
#: computed with the code on main before the interpolant option (commit 07028aa, CPU).
MAIN_WEIGHT_SUMS = {
    "mfm": (-4.528956572066818, 246.98151935918577, 10),
    "fm": (2.638962551991426, 206.35652281351577, 6),
}


def _sums(model):
    state = model.module.state_dict()
    total = sum(float(v.double().sum()) for v in state.values())
    return total, sum(float(v.double().abs().sum()) for v in state.values()), len(state)


@pytest.mark.parametrize("method", ["mfm", "fm"])
def test_sigma_zero_trains_exactly_as_before(prepare, fit_kw, method):
    default_data, explicit_data = prepare(), prepare()
    default = mfm.tl.fit(default_data, method=method, random_state=3, **fit_kw)
    explicit = mfm.tl.fit(
        explicit_data, method=method, random_state=3, interpolant_sigma=0.0, **fit_kw
    )
    for name, weights in default.module.state_dict().items():
        assert torch.equal(weights, explicit.module.state_dict()[name])
    history = default_data.uns["mfm"]["history"]
    assert history.equals(explicit_data.uns["mfm"]["history"])
    total, absolute, n_tensors = _sums(default)
    assert n_tensors == MAIN_WEIGHT_SUMS[method][2]  # no denoiser head
    assert total == pytest.approx(MAIN_WEIGHT_SUMS[method][0], rel=1e-6, abs=1e-6)
    assert absolute == pytest.approx(MAIN_WEIGHT_SUMS[method][1], rel=1e-6)
    assert explicit_data.uns["mfm"]["params"]["fit"]["interpolant_sigma"] == 0.0


def test_sigma_fit_records_saves_and_samples_the_sde(fitted, predict_kw, tmp_path):
    adata, model = fitted("mfm", interpolant_sigma=0.5)
    assert adata.uns["mfm"]["params"]["fit"]["interpolant_sigma"] == 0.5
    assert "denoiser.weight" in model.module.state_dict()
    sde = {"sde_eps": 0.5, "sde_steps": 10}
    pred = mfm.tl.predict(adata, model, **sde)
    assert np.isfinite(pred.X).all()
    assert pred.uns["mfm_prediction"]["sde_eps"] == 0.5
    assert pred.uns["mfm_prediction"]["sde_steps"] == 10
    again = mfm.tl.predict(adata, model, **sde)
    other_seed = mfm.tl.predict(adata, model, random_state=1, **sde)
    ode = mfm.tl.predict(adata, model, **predict_kw)
    assert np.array_equal(pred.X, again.X)
    assert not np.array_equal(pred.X, other_seed.X) and not np.array_equal(pred.X, ode.X)
    model.save(tmp_path / "model")
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert loaded.config.interpolant_sigma == 0.5
    assert np.array_equal(mfm.tl.predict(adata, loaded, **sde).X, pred.X)
    adata.write_h5ad(tmp_path / "a.h5ad")  # params stay writable


def test_models_saved_before_the_option_load_as_sigma_zero(fitted, predict_kw, tmp_path):
    adata, model = fitted("mfm")
    model.save(tmp_path / "model")
    file = tmp_path / "model" / "config.json"
    saved = json.loads(file.read_text())
    del saved["config"]["interpolant_sigma"]
    file.write_text(json.dumps(saved))
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert loaded.config == model.config
    expected = mfm.tl.predict(adata, model, **predict_kw).X
    assert np.array_equal(mfm.tl.predict(adata, loaded, **predict_kw).X, expected)


def test_bad_options(fitted, adata, fit_kw):
    with pytest.raises(ValueError, match="`interpolant_sigma` must be a finite number"):
        mfm.tl.fit(adata, interpolant_sigma=-0.1, **fit_kw)
    data, model = fitted("mfm")
    with pytest.raises(ValueError, match="refit with `mfm.tl.fit\\(..., interpolant_sigma"):
        mfm.tl.predict(data, model, sde_eps=0.1)
    data, model = fitted("mfm", interpolant_sigma=0.5)
    with pytest.raises(ValueError, match="`sde_eps` must be a finite number"):
        mfm.tl.predict(data, model, sde_eps=-1.0)
    with pytest.raises(ValueError, match="`sde_steps`"):
        mfm.tl.predict(data, model, sde_eps=0.1, sde_steps=0)
    with pytest.raises(ValueError, match="`n_steps=5` sets the ODE solver's steps"):
        mfm.tl.predict(data, model, sde_eps=0.1, n_steps=5)
