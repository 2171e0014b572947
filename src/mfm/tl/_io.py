"""The AnnData reader and writer of `mfm.tl`: AnnData -> arrays and arrays -> AnnData.

Every verb reads the populations written by `mfm.pp.populations` and writes its results
through this module, so no verb imports another verb's internals.

- Reading: :func:`population_pairs` (features, cells and control pairing of every
  population), :func:`trained_treatments`, :func:`resolve_targets`.
- Writing: the population embedding (:func:`embedding_frame`, :func:`merge_embedding`),
  the predicted cells (:func:`prediction_anndata`, :class:`ObsmWriter` into ``.obsm``,
  :class:`PredictionFile` on disk, :class:`InMemory`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import check_uns, feature_rows
from ..data import PopulationPairs

try:
    from anndata.io import write_elem
except ImportError:  # anndata < 0.11
    from anndata.experimental import write_elem


def populations_table(adata: AnnData, keys: K.Keys) -> tuple[pd.DataFrame, dict]:
    """The populations table and params, or a `KeyError` asking for `mfm.pp.populations`."""
    table = check_uns(adata, keys.uns, keys.populations, K.POPULATIONS_VERB)
    params = check_uns(adata, keys.uns, keys.params, K.POPULATIONS_VERB)
    if keys.obs_population not in adata.obs:
        msg = f"`adata.obs[{keys.obs_population!r}]` not found; run `mfm.pp.populations` first."
        raise KeyError(msg)
    return table, params


def population_pairs(
    adata: AnnData, keys: K.Keys, treatments: list[str] | None = None
) -> tuple[PopulationPairs, pd.DataFrame, list[str]]:
    """Features, cells and control pairing of every population, in table order.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations`.
    keys
        Keys of the workflow.
    treatments
        Treatment names fixing the codes (a trained model's); default: the table's
        non-control conditions, sorted.

    Returns
    -------
    The pairs, the populations table and the feature names.
    """
    table, params = populations_table(adata, keys)
    use_rep = params[K.USE_REP]
    x, features = feature_rows(adata, None if use_rep == "X" else use_rep)
    rows_of = _rows_by_population(adata.obs[keys.obs_population])
    names = table.index.astype(str).tolist()
    missing = [p for p in names if p not in rows_of]
    if missing:
        msg = (
            f"Populations {missing[:5]} of `uns[{keys.uns!r}]['populations']` have no cells in "
            f"`obs[{keys.obs_population!r}]`; re-run `mfm.pp.populations`."
        )
        raise ValueError(msg)
    control = params[K.CONTROL]
    conditions = table[K.CONDITION].astype(str)
    if treatments is None:
        treatments = sorted(set(conditions) - {control})
    codes = {name: i for i, name in enumerate(treatments)}
    treatment = np.array([-1 if c == control else codes.get(c, -2) for c in conditions])
    position = {name: i for i, name in enumerate(names)}
    pairs = PopulationPairs(
        x=x,
        cells=[rows_of[p] for p in names],
        names=names,
        control=np.array([position[s] for s in table[K.SOURCE].astype(str)]),
        treatment=treatment,
        treatments=list(treatments),
    )
    return pairs, table, features


def _rows_by_population(column: pd.Series) -> dict[str, np.ndarray]:
    """Population id -> its row positions, ascending.

    From the category codes: no string per cell, so millions of cells cost one integer sort.
    """
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    codes = column.cat.codes.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(column.cat.categories) + 1))
    return {
        str(name): order[bounds[i] : bounds[i + 1]]
        for i, name in enumerate(column.cat.categories)
        if bounds[i + 1] > bounds[i]
    }


def trained_treatments(adata: AnnData, keys: K.Keys) -> list[str]:
    """Treatments of the populations in the ``"train"`` split, sorted: the model's one-hot order.

    Validation populations of other treatments are left out of the validation loss, with a
    warning, and :func:`mfm.tl.predict` refuses them.
    """
    table, params = populations_table(adata, keys)
    conditions = table[K.CONDITION].astype(str)
    split = table[K.SPLIT].astype(str)
    control = str(params[K.CONTROL])
    trained = sorted(set(conditions[split == K.TRAIN]) - {control})
    unseen = sorted(set(conditions[split == K.VAL]) - {*trained, control})
    if unseen:
        msg = (
            f"Validation populations of treatments {unseen} are left out of the validation loss: "
            "no training population has them, so the model cannot predict them."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    return trained


def resolve_targets(pairs: PopulationPairs, populations: Sequence[str] | None) -> np.ndarray:
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


# Writing


def embedding_frame(names: list[str], rows: list[np.ndarray]) -> pd.DataFrame:
    """DataFrame (population x ``h0, h1, ...``) of embeddings."""
    columns = [f"h{j}" for j in range(len(rows[0]))]
    return pd.DataFrame(np.stack(rows), index=pd.Index(names, name=K.POPULATION), columns=columns)


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
    sample_keys, condition_key = list(params[K.SAMPLE_KEY]), params[K.CONDITION_KEY]
    blocks = []
    for target in targets:
        name, source = pairs.names[target], pairs.names[pairs.control[target]]
        row = table.loc[name]
        n = len(pairs.cells[pairs.control[target]])
        cells = adata.obs_names[pairs.cells[pairs.control[target]]] if from_cells else [""] * n
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


class ObsmWriter:
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
        self.controls: list[int] = []

    def add(self, target: int, x: np.ndarray) -> None:
        """Write the prediction ``x`` of population ``target`` at its control cells' rows."""
        if not self.enabled:
            return
        code = int(self.pairs.treatment[target])
        if code not in self.by_treatment:
            shape = (self.adata.n_obs, self.pairs.n_features)
            self.by_treatment[code] = np.full(shape, np.nan, dtype=np.float32)
        control = self.pairs.control[target]
        self.by_treatment[code][self.pairs.cells[control]] = x
        self.controls.append(int(control))

    def finish(self) -> None:
        """Store the entries in ``adata`` (``X_{key}`` when every control has one treatment)."""
        if not self.enabled:
            return
        codes = sorted(self.by_treatment)
        treatments = [self.pairs.treatments[c] for c in codes]
        for code, treatment in zip(codes, treatments, strict=True):
            self.adata.obsm[self.keys.obsm_treatment(treatment)] = self.by_treatment[code]
        self.adata.uns[self.keys.uns][self.keys.predicted_treatments] = treatments
        if len(set(self.controls)) == len(self.controls):
            combined = self.by_treatment[codes[0]].copy()
            for code in codes[1:]:
                rows = ~np.isnan(self.by_treatment[code][:, 0])
                combined[rows] = self.by_treatment[code][rows]
            self.adata.obsm[self.keys.obsm_prediction] = combined


def merge_embedding(adata: AnnData, keys: K.Keys, embedding: pd.DataFrame) -> None:
    """Add or replace rows of ``uns[key]['population_embedding']``."""
    previous = adata.uns[keys.uns].get(keys.population_embedding)
    if previous is not None and list(previous.columns) == list(embedding.columns):
        embedding = pd.concat([previous.drop(index=embedding.index, errors="ignore"), embedding])
    adata.uns[keys.uns][keys.population_embedding] = embedding


class InMemory:
    """Collects the predicted blocks (the default, ``out=None``)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def add(self, predicted: list[np.ndarray]) -> None:
        self.blocks += predicted

    def abort(self) -> None:
        self.blocks.clear()


#: Rows per HDF5 chunk of ``X`` (chunks of whole rows: a population reads as few chunks).
CHUNK_ROWS = 4096


class PredictionFile:
    """Write ``pred`` (see :func:`mfm.tl.predict`) to an ``.h5ad`` without holding ``X``.

    The file is created with its ``obs``, ``var`` and ``uns`` and an empty ``(n, d)``
    float32 ``X``; :meth:`add` writes the next rows of ``X``; :meth:`close` checks every row
    was written, renames the temporary file into place (so an interrupted prediction never
    leaves a file that reads as complete) and opens it with ``backed="r"``.

    Parameters
    ----------
    path
        Destination ``.h5ad`` file (replaced if it exists).
    obs
        ``pred.obs``, one row per predicted cell, in the order rows will be added.
    features
        ``pred.var_names``.
    uns
        ``pred.uns``.
    """

    def __init__(self, path: str | Path, obs: pd.DataFrame, features: list[str], uns: dict):
        self.path = Path(path)
        if self.path.suffix != ".h5ad":
            msg = f"`out` must name an .h5ad file, got {str(path)!r}."
            raise ValueError(msg)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        shape = (len(obs), len(features))
        var = pd.DataFrame(index=pd.Index(features, dtype=str))
        self.file = h5py.File(self.temporary, "w")
        self.file.attrs["encoding-type"] = "anndata"
        self.file.attrs["encoding-version"] = "0.1.0"
        chunks = (max(1, min(CHUNK_ROWS, shape[0])), max(1, shape[1]))
        self.x = self.file.create_dataset("X", shape=shape, dtype=np.float32, chunks=chunks)
        self.x.attrs["encoding-type"] = "array"
        self.x.attrs["encoding-version"] = "0.2.0"
        for name, value in (("obs", obs), ("var", var), ("uns", uns)):
            write_elem(self.file, name, value)
        for name in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(self.file, name, {})
        self.written = 0

    def add(self, predicted: list[np.ndarray]) -> None:
        """Write the next blocks of predicted cells."""
        for x in predicted:
            self.x[self.written : self.written + len(x)] = x.astype(np.float32, copy=False)
            self.written += len(x)

    def abort(self) -> None:
        """Close and delete the unfinished file (the destination is left as it was)."""
        self.file.close()
        self.temporary.unlink(missing_ok=True)

    def close(self) -> ad.AnnData:
        """Finish the file and return it opened with ``backed="r"``."""
        complete = self.written == self.x.shape[0]
        self.file.close()
        if not complete:
            self.temporary.unlink(missing_ok=True)
            msg = f"{self.written} of {self.x.shape[0]} predicted rows were written."
            raise RuntimeError(msg)
        os.replace(self.temporary, self.path)
        return ad.read_h5ad(self.path, backed="r")
