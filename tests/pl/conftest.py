"""Tiny hand-made AnnData holding what `mfm.pp` / `mfm.tl` write, for the plotting tests."""

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from mfm._keys import CONDITION, N_CELLS, SOURCE, SPLIT, Keys

KEYS = Keys("mfm")
PATIENTS = ["p0", "p1", "p2", "p3"]
CONDITIONS = ["control", "drugA", "drugB"]
SPLIT_OF = {"p0": "train", "p1": "train", "p2": "val", "p3": "test"}
FEATURES = ["g0", "g1", "g2"]
METHODS = ["mfm", "fm", "identity"]
N_UNASSIGNED = 3
#: Populations predicted in ``pred`` (treated populations of the held-out patients).
PREDICTED = ["p2_drugA", "p2_drugB", "p3_drugA", "p3_drugB"]


def _populations() -> pd.DataFrame:
    rows = []
    for i, patient in enumerate(PATIENTS):
        for j, condition in enumerate(CONDITIONS):
            rows.append(
                {
                    "id": f"{patient}_{condition}",
                    "patient": patient,
                    CONDITION: condition,
                    N_CELLS: 4 + 3 * i + j,
                    SOURCE: f"{patient}_control",
                    SPLIT: SPLIT_OF[patient],
                }
            )
    return pd.DataFrame(rows).set_index("id")


def _history() -> pd.DataFrame:
    step = np.arange(0, 100, 10)
    val = np.where(step % 50 == 0, 2.0 / (1.0 + step), np.nan)
    return pd.DataFrame(
        {"step": step, "train_loss": 1.0 / (1.0 + step), "val_loss": val, "lr": 1e-3}
    )


def _metrics(populations: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    treated = populations.loc[populations[SOURCE] != populations.index]
    rows = []
    for method in METHODS:
        for population, row in treated.iterrows():
            rows.append(
                {
                    "population": population,
                    CONDITION: row[CONDITION],
                    SPLIT: row[SPLIT],
                    "method": method,
                    "patient": row["patient"],
                    "w1": rng.uniform(0.5, 1.5),
                    "w2": rng.uniform(0.5, 1.5),
                    "mmd": rng.uniform(0.0, 0.1),
                    "r2": rng.uniform(0.5, 1.0),
                    # the identity baseline has no correlation score
                    "corr": np.nan if method == "identity" else rng.uniform(0.5, 1.0),
                }
            )
    return pd.DataFrame(rows)


def _cells(populations: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, pd.Series]:
    labels = np.repeat(populations.index.to_numpy(), populations[N_CELLS].to_numpy())
    labels = np.concatenate([labels, [np.nan] * N_UNASSIGNED])
    x = rng.normal(size=(len(labels), len(FEATURES))).astype(np.float32)
    return x, pd.Series(pd.Categorical(labels, categories=populations.index))


@pytest.fixture
def adata() -> AnnData:
    """114 + 3 unassigned cells, 12 populations (4 patients x 3 conditions), every `uns` table."""
    rng = np.random.default_rng(0)
    populations = _populations()
    x, labels = _cells(populations, rng)
    obs = pd.DataFrame({KEYS.obs_population: labels.to_numpy()})
    obs.index = [f"cell{i}" for i in range(len(obs))]
    obs["patient"] = obs[KEYS.obs_population].astype(str).str.split("_").str[0]
    adata = AnnData(X=x, obs=obs, var=pd.DataFrame(index=FEATURES))
    adata.obsm["X_pca"] = x[:, :2] * 2.0
    controls = populations.index[populations[SOURCE] == populations.index]
    embedding = pd.DataFrame(
        rng.normal(size=(len(controls), 3)), index=controls, columns=["h0", "h1", "h2"]
    )
    adata.uns[KEYS.uns] = {
        KEYS.populations: populations,
        KEYS.params: {"use_rep": "X"},
        KEYS.history: _history(),
        KEYS.metrics: _metrics(populations),
        KEYS.population_embedding: embedding,
    }
    return adata


def _make_pred(adata: AnnData, use_rep: str | None = None) -> AnnData:
    """Predicted cells of ``PREDICTED``: one per control cell of the source, shifted by +5."""
    populations = adata.uns[KEYS.uns][KEYS.populations]
    labels = adata.obs[KEYS.obs_population].to_numpy()
    blocks, obs = [], []
    for population in PREDICTED:
        source = populations.loc[population, SOURCE]
        x = adata.obsm[use_rep] if use_rep else adata.X
        blocks.append(np.asarray(x)[labels == source] + 5.0)
        obs += [(population, source, populations.loc[population, CONDITION])] * len(blocks[-1])
    table = pd.DataFrame(obs, columns=[KEYS.obs_population, KEYS.obs_source, CONDITION])
    table[KEYS.obs_population] = table[KEYS.obs_population].astype("category")
    table.index = [f"pred{i}" for i in range(len(table))]
    n_features = blocks[0].shape[1]
    names = FEATURES if not use_rep else [f"{use_rep}_{i}" for i in range(n_features)]
    return AnnData(X=np.concatenate(blocks), obs=table, var=pd.DataFrame(index=names))


@pytest.fixture
def pred(adata: AnnData) -> AnnData:
    """Predictions of ``PREDICTED`` in the ``adata.X`` feature space."""
    return _make_pred(adata)


@pytest.fixture
def make_pred() -> Callable[..., AnnData]:
    """Return the builder of ``pred`` (``make_pred(adata, use_rep=None)``)."""
    return _make_pred


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
