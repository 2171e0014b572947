"""Tiny hand-made AnnData and tiny fitted models for the `mfm.tl` tests (numpy only)."""

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import mfm

FEATURES = ["g0", "g1", "g2", "g3"]
CONDITIONS = ["control", "drugA", "drugB"]
#: drugA adds +2 to feature 0, drugB -1 to feature 1.
SHIFTS = {"control": [0, 0, 0, 0], "drugA": [2, 0, 0, 0], "drugB": [0, -1, 0, 0]}
POPULATIONS = {"sample_key": "patient", "condition_key": "treatment", "control": "control"}
#: Tiny, fast training settings (a few tenths of a second per fit on one CPU thread).
FIT = {
    "max_steps": 30,
    "hidden": 32,
    "n_layers": 2,
    "gcn_hidden": 16,
    "gcn_layers": 2,
    "embedding_dim": 8,
    "knn": 5,
    "cells_per_population": 24,
    "batch_populations": 4,
    "val_every": 10,
    "device": "cpu",
    "progress": False,
}
#: Fast fixed-step integration.
PREDICT = {"solver": "euler", "n_steps": 5}


def make_adata(
    n_patients: int = 3,
    n_cells: int = 60,
    conditions: tuple[str, ...] = tuple(CONDITIONS),
    exact: bool = False,
    seed: int = 0,
) -> AnnData:
    """``n_patients`` x ``conditions`` x ``n_cells`` cells x 4 features, cells ordered by patient
    then condition; obs: patient (P0, P1, ...), treatment. Each patient has its own offset. With
    ``exact``, the treated cells are the patient's control cells shifted by ``SHIFTS``; conditions
    missing from ``SHIFTS`` (e.g. an unseen "drugC") shift every feature by 0.5."""
    rng = np.random.default_rng(seed)
    blocks, rows = [], []
    for p in range(n_patients):
        offset = rng.normal(size=len(FEATURES))
        control = offset + rng.normal(size=(n_cells, len(FEATURES)))
        for condition in conditions:
            cells = control if exact else offset + rng.normal(size=control.shape)
            blocks.append(cells + SHIFTS.get(condition, [0.5] * len(FEATURES)))
            rows += [(f"P{p}", condition)] * n_cells
    obs = pd.DataFrame(rows, columns=["patient", "treatment"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    x = np.concatenate(blocks).astype(np.float32)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=FEATURES))


def prepared(test=("P2",), val=("P1",), **kwargs) -> AnnData:
    """`make_adata` after `mfm.pp.populations` and a patient split."""
    adata = make_adata(**kwargs)
    mfm.pp.populations(adata, **POPULATIONS)
    mfm.pp.split(adata, by="patient", test=list(test), val=list(val))
    return adata


@pytest.fixture
def adata() -> AnnData:
    """3 patients x {control, drugA, drugB} x 60 cells; split P0 train, P1 val, P2 test."""
    return prepared()


@pytest.fixture
def make() -> Callable[..., AnnData]:
    """The raw builder (see `make_adata`)."""
    return make_adata


@pytest.fixture
def prepare() -> Callable[..., AnnData]:
    """The builder of populations + split data (see `prepared`)."""
    return prepared


@pytest.fixture
def fit_kw() -> dict:
    """Tiny, fast `mfm.tl.fit` settings (``FIT``)."""
    return dict(FIT)


@pytest.fixture
def predict_kw() -> dict:
    """Fast `mfm.tl.predict` settings (``PREDICT``)."""
    return dict(PREDICT)


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """``make_adata`` and the tiny settings, for module- and session-scoped fixtures."""
    return SimpleNamespace(
        make=make_adata, fit=dict(FIT), predict=dict(PREDICT), populations=dict(POPULATIONS)
    )


@pytest.fixture(scope="session")
def _fitted_cache() -> dict:
    return {}


@pytest.fixture
def fitted(_fitted_cache) -> Callable[[str], tuple[AnnData, mfm.tl.MetaFlowModel]]:
    """``fitted(method, **fit_kwargs)``: a copy of the fitted ``adata`` and the model (cached)."""

    def get(method: str = "mfm", **kwargs) -> tuple[AnnData, mfm.tl.MetaFlowModel]:
        key = (method, tuple(sorted(kwargs.items())))
        if key not in _fitted_cache:
            adata = prepared()
            model = mfm.tl.fit(adata, **{**FIT, "method": method, **kwargs})
            _fitted_cache[key] = (adata, model)
        adata, model = _fitted_cache[key]
        return adata.copy(), model

    return get
