"""Tiny hand-made AnnData for the `mfm.pp` tests (numpy only, no `mfm.datasets`)."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

FEATURES = ["g0", "g1", "g2", "g3"]
CONDITIONS = ["control", "drugA", "drugB"]
#: drugA adds +2 to feature 0, drugB -1 to feature 1.
SHIFTS = {"control": [0, 0, 0, 0], "drugA": [2, 0, 0, 0], "drugB": [0, -1, 0, 0]}


def make_adata(
    n_patients: int = 3, n_cells: int | dict = 60, n_replicates: int = 1, seed: int = 0
) -> AnnData:
    """``n_patients`` x ``CONDITIONS`` x ``n_cells`` cells (``n_cells`` may map (patient,
    condition) to a count, default 60), 4 features; obs: patient (P0..), replicate (int),
    treatment. Cells are ordered patient by patient, condition by condition."""
    rng = np.random.default_rng(seed)
    blocks, rows = [], []
    for p in range(n_patients):
        offset = rng.normal(size=len(FEATURES))
        for condition in CONDITIONS:
            n = n_cells if isinstance(n_cells, int) else n_cells.get((f"P{p}", condition), 60)
            blocks.append(offset + SHIFTS[condition] + rng.normal(size=(n, len(FEATURES))))
            rows += [(f"P{p}", i % n_replicates, condition) for i in range(n)]
    obs = pd.DataFrame(rows, columns=["patient", "replicate", "treatment"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    x = np.concatenate(blocks).astype(np.float32)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=FEATURES))


@pytest.fixture
def adata() -> AnnData:
    """3 patients x {control, drugA, drugB} x 60 cells x 4 features."""
    return make_adata()


@pytest.fixture
def make() -> Callable[..., AnnData]:
    """The builder of ``adata`` (see `make_adata`)."""
    return make_adata
