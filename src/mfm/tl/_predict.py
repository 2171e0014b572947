"""`mfm.tl.predict`: transport control populations to their treated states."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._utils import as_numpy_rng, make_actual
from ..data import PopulationPairs
from ..flows.solve import FIXED_STEP_METHODS
from ._fit import embedding_frame
from ._model import MetaFlowModel, groups_of_rows
from ._pairs import population_pairs, populations_table
from ._prediction_file import PredictionFile

logger = logging.getLogger(__name__)

#: Steps of the fixed-step solvers when ``predict(n_steps=None)`` (see ``benchmarks/predict.py``).
PREDICT_N_STEPS = 4
#: Cells per batched solve when ``predict(chunk_size=None)``, on the CPU and on a GPU.
CHUNK_CPU, CHUNK_CUDA = 8192, 65536


def predict(
    adata: AnnData,
    model: MetaFlowModel,
    *,
    populations: Sequence[str] | None = None,
    solver: str = "midpoint",
    n_steps: int | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    chunk_size: int | None = None,
    random_state: int = 0,
    out: str | Path | None = None,
    key_added: str = "mfm",
) -> AnnData:
    """Predict treated populations by integrating the learned flow from their controls.

    For each treated population, the control population of the same sample is embedded
    (MFM: kNN-GCN of its cells, so unseen patients work; CGFM: one-hot, mean one-hot when
    unseen; FM: nothing) and every control cell is integrated from t=0 to 1 under the
    population's treatment. Models trained with ``source="noise"`` start from as many
    N(0, I) samples as the control population has cells.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations`, with the features the
        model was trained on.
    model
        Model returned by :func:`mfm.tl.fit` or :func:`mfm.tl.load`.
    populations
        Ids of treated populations to predict (index of
        ``adata.uns[key_added]['populations']``); default: all treated populations.
    solver
        A fixed-step ``"midpoint"`` (default), ``"rk4"``, ``"euler"``, or ``"dopri5"``
        (adaptive, ``atol``/``rtol``; about 10 to 20 times slower). The default's W1 to the
        observed cells is within 2 % of dopri5's on the simulators (``benchmarks/predict.py``).
    n_steps
        Steps of the fixed-step solvers (``None``: ``PREDICT_N_STEPS`` = 4, i.e. 8 velocity
        evaluations with midpoint); must be ``None`` for dopri5.
    atol
        Absolute tolerance of dopri5.
    rtol
        Relative tolerance of dopri5.
    chunk_size
        Cells integrated at once, all populations together: the cells of consecutive
        populations share one batched solve, each row with its population's condition.
        Bounds memory (about 10 KB per cell on top of the data); ``None``: 8192 on the CPU
        (larger chunks are no faster there and cost ~300 MB more at 32768), 65536 on a GPU.
    random_state
        Seed of the embedding subsample and of noise sources.
    out
        Path of an ``.h5ad`` file: the predicted cells are written there group of
        populations by group as they are produced (never all in memory), and the returned
        AnnData is that file opened with ``backed="r"``. ``None`` (default): in memory.
    key_added
        Key of the populations written by :func:`mfm.pp.populations`.

    Returns
    -------
    AnnData of predicted cells: ``X`` in the training feature space, ``var_names`` the
    features, ``obs`` with ``'{key_added}_population'`` (predicted population),
    ``'{key_added}_source'`` (its control population), the condition and sample columns
    under their own names, and ``'source_cell'`` (the control cell transported; empty for
    noise sources). Also sets, unless the model starts from noise, one
    ``adata.obsm['X_{key_added}_{treatment}']`` per predicted treatment (each control
    cell's predicted state under that treatment, NaN for cells of other populations), lists
    those treatments in ``adata.uns[key_added]['predicted_treatments']``, sets
    ``adata.obsm['X_{key_added}']`` (each control cell's prediction under its population's
    one predicted treatment) when every control population has one predicted treatment,
    and updates ``adata.uns[key_added]['population_embedding']``. A view is made an actual
    AnnData first (with a warning), so its parent is never changed.

    Raises
    ------
    ValueError
        When ``adata``'s features (``use_rep``, variables) differ from the model's, when a
        population to predict has a treatment the model was not trained on, or when a
        prediction is not finite.

    Examples
    --------
    >>> model = mfm.tl.fit(adata, method="mfm", max_steps=2000)
    >>> pred = mfm.tl.predict(adata, model)                      # every test population
    >>> pred = mfm.tl.predict(adata, model, populations=["P07|PDO|r1|drug_A"],
    ...                       solver="midpoint", n_steps=10)     # one population, fixed steps
    >>> pred.obs["mfm_population"].value_counts()
    """
    keys = K.Keys(key_added)
    if n_steps is None and solver in FIXED_STEP_METHODS:
        n_steps = PREDICT_N_STEPS
    if chunk_size is None:
        chunk_size = CHUNK_CUDA if model.device.type == "cuda" else CHUNK_CPU
    make_actual(adata)
    model.check_use_rep(populations_table(adata, keys)[1][K.USE_REP])
    pairs, table, features = population_pairs(adata, keys, model.config.treatments)
    model.check_features(features)
    targets = _resolve_targets(pairs, populations)
    from_cells = model.config.source == "control"
    uns = {
        K.METHOD: model.label,
        "key_added": key_added,
        "solver": solver,
        "n_steps": -1 if n_steps is None else int(n_steps),
        K.USE_REP: str(model.config.use_rep),
    }
    obs = prediction_obs(adata, pairs, table, targets, keys, from_cells)
    sink = (
        PredictionFile(out, obs, features, {K.PREDICTION_UNS: uns})
        if out is not None
        else _InMemory()
    )
    obsm = _ObsmWriter(adata, pairs, keys, from_cells and not adata.isbacked)
    options = {"solver": solver, "n_steps": n_steps, "atol": atol, "rtol": rtol}
    try:
        embedded = _solve(model, pairs, targets, sink, obsm, options, chunk_size, random_state)
    except BaseException:
        sink.abort()
        raise
    obsm.finish()
    if out is None:
        pred = AnnData(
            X=np.concatenate(sink.blocks).astype(np.float32, copy=False),
            obs=obs,
            var=pd.DataFrame(index=pd.Index(features, dtype=str)),
        )
        pred.uns[K.PREDICTION_UNS] = uns
    else:
        pred = sink.close()
    if model.config.method != "fm":
        names = [pairs.names[s] for s in embedded]
        _merge_embedding(adata, keys, embedding_frame(names, list(embedded.values())))
    logger.info("predicted %d populations (%d cells)", len(targets), pred.n_obs)
    return pred


def _solve(
    model: MetaFlowModel,
    pairs: PopulationPairs,
    targets: np.ndarray,
    sink: _InMemory | PredictionFile,
    obsm: _ObsmWriter,
    options: dict,
    chunk_size: int,
    random_state: int,
) -> dict[int, np.ndarray]:
    """Predict ``targets`` group by group (about ``chunk_size`` cells each) into ``sink``.

    A group's control populations are read once, embedded once (embeddings are kept for
    later groups) and all its cells integrated in one batched solve. Returns the embeddings.
    """
    embedded: dict[int, np.ndarray] = {}
    rng = as_numpy_rng(random_state)
    sizes = [len(pairs.cells[pairs.source[t]]) for t in targets]
    for group in groups_of_rows(sizes, chunk_size):
        chosen = targets[group]
        cells = {s: pairs.population_cells(s) for s in np.unique(pairs.source[chosen])}
        new = [s for s in cells if s not in embedded]
        if new:
            names = [pairs.names[s] for s in new]
            h = model.embed_populations([cells[s] for s in new], names, random_state)
            embedded.update(zip(new, h, strict=True))
        x0 = [cells[pairs.source[t]] for t in chosen]
        if model.config.source == "noise":
            x0 = [model.noise(len(x), rng) for x in x0]
        treatments = [pairs.treatments[pairs.treatment[t]] for t in chosen]
        h = np.stack([embedded[pairs.source[t]] for t in chosen])
        predicted = model.transport_populations(x0, h, treatments, chunk_size=chunk_size, **options)
        for target, x, treatment in zip(chosen, predicted, treatments, strict=True):
            _check_prediction(x, pairs.names[target], treatment)
            obsm.add(target, x)
        sink.add(predicted)
    return embedded


class _InMemory:
    """Collects the predicted blocks (the default, ``out=None``)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def add(self, predicted: list[np.ndarray]) -> None:
        self.blocks += predicted

    def abort(self) -> None:
        self.blocks.clear()


def _resolve_targets(pairs: PopulationPairs, populations: Sequence[str] | None) -> np.ndarray:
    """Indices of the populations to predict; errors name unknown or control populations."""
    if populations is None:
        targets = np.flatnonzero(pairs.treatment != -1)
    else:
        if isinstance(populations, str):
            populations = [populations]
        index = {name: i for i, name in enumerate(pairs.names)}
        unknown = [p for p in populations if p not in index]
        if unknown:
            msg = f"Populations {unknown[:5]} not found in the populations table."
            raise KeyError(msg)
        targets = np.array([index[p] for p in populations], dtype=int)
        controls = [pairs.names[i] for i in targets if pairs.treatment[i] == -1]
        if controls:
            msg = f"Populations {controls[:5]} are control populations; pass treated ones."
            raise ValueError(msg)
    _check_trained(pairs, targets)
    if len(targets) == 0:
        msg = "No treated population to predict."
        raise ValueError(msg)
    return targets


def _check_trained(pairs: PopulationPairs, targets: np.ndarray) -> None:
    """Raise a `ValueError` naming the populations and treatments the model was not trained on."""
    untrained = [pairs.names[i] for i in targets if pairs.treatment[i] == -2]
    if untrained:
        treatments = sorted({name.rsplit(K.ID_SEPARATOR, 1)[-1] for name in untrained})
        msg = (
            f"Populations {untrained[:5]} have treatments the model was not trained on: "
            f"{treatments} (no training population had them; it can predict {pairs.treatments}). "
            "Pass `populations` of trained treatments."
        )
        raise ValueError(msg)


def _check_prediction(x: np.ndarray, population: str, treatment: str) -> None:
    """Raise a `ValueError` naming the population when its predicted cells are not finite."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        msg = (
            f"The prediction of population {population!r} (treatment {treatment!r}) has "
            f"{int(bad.sum())} of {len(x)} cells with NaN or infinite values: the flow diverged. "
            "Try a fixed-step `solver` with more `n_steps`, or retrain with a lower `lr`."
        )
        raise ValueError(msg)


def prediction_anndata(
    adata: AnnData,
    pairs: PopulationPairs,
    table: pd.DataFrame,
    targets: np.ndarray,
    predicted: list[np.ndarray],
    features: list[str],
    keys: K.Keys,
    from_cells: bool,
) -> AnnData:
    """Assemble predicted cells of ``targets`` into an AnnData (see :func:`predict`)."""
    return AnnData(
        X=np.concatenate(predicted).astype(np.float32),
        obs=prediction_obs(adata, pairs, table, targets, keys, from_cells),
        var=pd.DataFrame(index=pd.Index(features, dtype=str)),
    )


def prediction_obs(
    adata: AnnData,
    pairs: PopulationPairs,
    table: pd.DataFrame,
    targets: np.ndarray,
    keys: K.Keys,
    from_cells: bool,
) -> pd.DataFrame:
    """``pred.obs`` of ``targets``: one row per cell of each target's control population."""
    params = adata.uns[keys.uns][keys.params]
    sample_keys, condition_key = list(params["sample_key"]), params["condition_key"]
    blocks = []
    for target in targets:
        name, source = pairs.names[target], pairs.names[pairs.source[target]]
        row = table.loc[name]
        n = len(pairs.cells[pairs.source[target]])
        cells = adata.obs_names[pairs.cells[pairs.source[target]]] if from_cells else [""] * n
        block = pd.DataFrame(
            {
                keys.obs_population: name,
                keys.obs_source: source,
                condition_key: row[K.CONDITION],
                **{c: row[c] for c in sample_keys},
                K.SOURCE_CELL: np.asarray(cells, dtype=str),
            },
            index=[f"{name}-{i}" for i in range(n)],
        )
        blocks.append(block)
    obs = pd.concat(blocks)
    for column in [keys.obs_population, keys.obs_source, condition_key]:
        obs[column] = pd.Categorical(obs[column])
    return obs


def write_prediction(
    adata: AnnData,
    pairs: PopulationPairs,
    targets: np.ndarray,
    predicted: list[np.ndarray],
    keys: K.Keys,
    from_cells: bool,
) -> None:
    """Write each control cell's predictions into ``adata.obsm`` (see :func:`predict`)."""
    writer = _ObsmWriter(adata, pairs, keys, from_cells)
    for target, x in zip(targets, predicted, strict=True):
        writer.add(target, x)
    writer.finish()


class _ObsmWriter:
    """Fills ``obsm['X_{key}_{treatment}']`` (and ``obsm['X_{key}']``) population by population.

    One entry per predicted treatment, listed in ``uns[key]['predicted_treatments']``, and
    ``obsm['X_{key}']`` when every control population has one predicted treatment. Entries of
    an earlier prediction are removed first, so none holds a stale prediction; nothing is
    written when ``enabled`` is False (noise sources, backed data).
    """

    def __init__(self, adata: AnnData, pairs: PopulationPairs, keys: K.Keys, enabled: bool):
        for treatment in adata.uns[keys.uns].pop(keys.predicted_treatments, []):
            adata.obsm.pop(keys.obsm_treatment(str(treatment)), None)
        adata.obsm.pop(keys.obsm_prediction, None)
        self.adata, self.pairs, self.keys, self.enabled = adata, pairs, keys, enabled
        self.by_treatment: dict[int, np.ndarray] = {}
        self.sources: list[int] = []

    def add(self, target: int, x: np.ndarray) -> None:
        """Write the prediction ``x`` of population ``target`` at its control cells' rows."""
        if not self.enabled:
            return
        code = int(self.pairs.treatment[target])
        if code not in self.by_treatment:
            shape = (self.adata.n_obs, self.pairs.n_features)
            self.by_treatment[code] = np.full(shape, np.nan, dtype=np.float32)
        source = self.pairs.source[target]
        self.by_treatment[code][self.pairs.cells[source]] = x
        self.sources.append(int(source))

    def finish(self) -> None:
        """Store the entries in ``adata`` (``X_{key}`` when every source has one treatment)."""
        if not self.enabled:
            return
        codes = sorted(self.by_treatment)
        treatments = [self.pairs.treatments[c] for c in codes]
        for code, treatment in zip(codes, treatments, strict=True):
            self.adata.obsm[self.keys.obsm_treatment(treatment)] = self.by_treatment[code]
        self.adata.uns[self.keys.uns][self.keys.predicted_treatments] = treatments
        if len(set(self.sources)) == len(self.sources):
            combined = self.by_treatment[codes[0]].copy()
            for code in codes[1:]:
                rows = ~np.isnan(self.by_treatment[code][:, 0])
                combined[rows] = self.by_treatment[code][rows]
            self.adata.obsm[self.keys.obsm_prediction] = combined


def _merge_embedding(adata: AnnData, keys: K.Keys, embedding: pd.DataFrame) -> None:
    """Add or replace rows of ``uns[key]['population_embedding']``."""
    previous = adata.uns[keys.uns].get(keys.population_embedding)
    if previous is not None and list(previous.columns) == list(embedding.columns):
        embedding = pd.concat([previous.drop(index=embedding.index, errors="ignore"), embedding])
    adata.uns[keys.uns][keys.population_embedding] = embedding
