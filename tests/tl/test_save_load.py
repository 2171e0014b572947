"""`model.save` / `mfm.tl.load`: explicit config + weights + features, checked on load."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mfm
from mfm.tl import MetaFlowConfig, MetaFlowModel


@pytest.mark.parametrize("method", ["mfm", "cgfm"])
def test_round_trip_gives_identical_predictions(fitted, predict_kw, tmp_path, method):
    adata, model = fitted(method)
    model.save(tmp_path / "model")
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert isinstance(loaded, MetaFlowModel)
    assert loaded.config == model.config
    assert loaded.features == model.features
    assert not loaded.module.training
    for name, value in model.module.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[name], value, rtol=0, atol=0)
    before = mfm.tl.predict(adata, model, **predict_kw)
    after = mfm.tl.predict(adata, loaded, **predict_kw)
    np.testing.assert_array_equal(after.X, before.X)
    assert after.uns["mfm_prediction"]["method"] == model.label


def test_directory_holds_plain_files(fitted, tmp_path):
    _, model = fitted("mfm")
    model.save(tmp_path)  # an existing empty directory is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "features.json",
        "weights.pt",
    ]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {
        "format_version": 1,
        "model": "MetaFlowModel",
        "config": dataclasses.asdict(model.config),
    }
    assert MetaFlowConfig(**config["config"]) == model.config
    assert json.loads((tmp_path / "features.json").read_text()) == ["g0", "g1", "g2", "g3"]
    state = torch.load(tmp_path / "weights.pt", weights_only=True)  # no pickled objects
    assert sorted(state) == sorted(model.module.state_dict())
    assert all(isinstance(value, torch.Tensor) for value in state.values())


def test_loading_onto_other_features(fitted, make, tmp_path, predict_kw):
    _, model = fitted("fm")
    model.save(tmp_path / "model")
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    other = make()
    other.var_names = ["g0", "g1", "g2", "x3"]
    mfm.pp.populations(other, sample_key="patient", condition_key="treatment", control="control")
    with pytest.raises(ValueError, match=r"missing \['g3'\]"):
        mfm.tl.predict(other, loaded, **predict_kw)
    with pytest.raises(ValueError, match="order must match"):
        loaded.check_features(["g1", "g0", "g2", "g3"])
    loaded.check_features(["g0", "g1", "g2", "g3"])


def test_overwrite_protection(fitted, tmp_path):
    _, model = fitted("fm")
    model.save(tmp_path / "model")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "model")
    _, other = fitted("mfm")
    other.save(tmp_path / "model", overwrite=True)
    assert mfm.tl.load(tmp_path / "model", device="cpu").config.method == "mfm"


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        mfm.tl.load(tmp_path / "nowhere")
    saved = {"format_version": 1, "model": "Pickle", "config": {}}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="Unknown model class 'Pickle'"):
        mfm.tl.load(tmp_path)


def test_interrupted_save_keeps_the_former_model(fitted, tmp_path, monkeypatch):
    """Saving writes a temporary directory and renames it: a crash leaves the former model."""
    _, fm = fitted("fm")
    _, cgfm = fitted("cgfm")
    fm.save(tmp_path / "model")

    def crash(state, file):
        Path(file).write_bytes(b"PK\x03\x04half")  # a truncated weights file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        cgfm.save(tmp_path / "model", overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        cgfm.save(tmp_path / "fresh")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left over
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert loaded.config == fm.config
    cgfm.save(tmp_path / "model", overwrite=True)
    assert mfm.tl.load(tmp_path / "model", device="cpu").config == cgfm.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_overwrite_replaces_model_directories_only(fitted, tmp_path):
    _, model = fitted("fm")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="notes.txt"):
        model.save(tmp_path / "results", overwrite=True)
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a directory"):
        model.save(tmp_path / "file", overwrite=True)
