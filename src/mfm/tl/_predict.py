"""`mfm.tl.predict`: transport control populations to their treated states."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import make_actual
from .._checks import check_positive_int
from .._utils import as_numpy_rng, as_torch_generator
from ..data import PopulationPairs
from ..flows.solve import FIXED_STEP_METHODS
from ._io import (
    InMemory,
    ObsmWriter,
    PredictionFile,
    embedding_frame,
    merge_embedding,
    population_pairs,
    populations_table,
    prediction_obs,
    resolve_targets,
)
from ._model import MetaFlowModel, groups_of_rows

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
    sde_eps: float = 0.0,
    sde_steps: int = 100,
    random_state: int = 0,
    out: str | Path | None = None,
    key_added: str = "mfm",
) -> AnnData:
    r"""Predict treated populations by integrating the learned flow from their controls.

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
    sde_eps
        :math:`\epsilon \ge 0`: above 0, sample the SDE
        :math:`dX = (b + \epsilon(t) s)\,dt + \sqrt{2 \epsilon(t)}\,dW`,
        :math:`\epsilon(t) = 4 \epsilon\, t (1 - t)`, with the velocity :math:`b` and the
        score :math:`s` of a model fitted with ``interpolant_sigma > 0`` (it has the same
        marginals as the ODE; :mod:`mfm.flows.interpolants`), instead of the ODE of
        ``solver``. 0 (default): the ODE.
    sde_steps
        Euler-Maruyama steps of the SDE (``sde_eps > 0``).
    random_state
        Seed of the embedding subsample, of noise sources and of the SDE's noise (same
        seed and ``chunk_size``, same prediction).
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
        population to predict has a treatment the model was not trained on, when a
        prediction is not finite, or when ``sde_eps > 0`` and the model has no score
        (fitted with ``interpolant_sigma=0``) or ``n_steps`` is given too (the SDE's steps
        are ``sde_steps``).

    Examples
    --------
    >>> model = mfm.tl.fit(adata, method="mfm", max_steps=2000)
    >>> pred = mfm.tl.predict(adata, model)                      # every test population
    >>> pred = mfm.tl.predict(adata, model, populations=["P07|PDO|r1|drug_A"],
    ...                       solver="midpoint", n_steps=10)     # one population, fixed steps
    >>> model = mfm.tl.fit(adata, interpolant_sigma=0.5)      # learns a score too
    >>> pred = mfm.tl.predict(adata, model, sde_eps=0.5)         # Euler-Maruyama, 100 steps
    >>> pred.obs["mfm_population"].value_counts()
    """
    keys = K.Keys(key_added)
    _check_sde_options(model, sde_eps, sde_steps, n_steps)
    if n_steps is None and solver in FIXED_STEP_METHODS:
        n_steps = PREDICT_N_STEPS
    if chunk_size is None:
        chunk_size = CHUNK_CUDA if model.device.type == "cuda" else CHUNK_CPU
    make_actual(adata)
    model.check_use_rep(populations_table(adata, keys)[1][K.USE_REP])
    pairs, table, features = population_pairs(adata, keys, model.config.treatments)
    model.check_features(features)
    targets = resolve_targets(pairs, populations)
    from_cells = model.config.source == "control"
    uns = {
        K.METHOD: model.label,
        "key_added": key_added,
        "solver": solver,
        "n_steps": -1 if n_steps is None else int(n_steps),
        "sde_eps": float(sde_eps),
        "sde_steps": int(sde_steps),
        K.USE_REP: str(model.config.use_rep),
    }
    obs = prediction_obs(adata, pairs, table, targets, keys, from_cells)
    sink = (
        PredictionFile(out, obs, features, {K.PREDICTION_UNS: uns})
        if out is not None
        else InMemory()
    )
    obsm = ObsmWriter(adata, pairs, keys, from_cells and not adata.isbacked)
    options = {"solver": solver, "n_steps": n_steps, "atol": atol, "rtol": rtol}
    options |= {"sde_eps": sde_eps, "sde_steps": sde_steps}
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
        merge_embedding(adata, keys, embedding_frame(names, list(embedded.values())))
    logger.info("predicted %d populations (%d cells)", len(targets), pred.n_obs)
    return pred


def _solve(
    model: MetaFlowModel,
    pairs: PopulationPairs,
    targets: np.ndarray,
    sink: InMemory | PredictionFile,
    obsm: ObsmWriter,
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
    generator = as_torch_generator(random_state, model.device)
    sizes = [len(pairs.cells[pairs.control[t]]) for t in targets]
    for group in groups_of_rows(sizes, chunk_size):
        chosen = targets[group]
        cells = {s: pairs.population_cells(s) for s in np.unique(pairs.control[chosen])}
        new = [s for s in cells if s not in embedded]
        if new:
            names = [pairs.names[s] for s in new]
            h = model.embed_populations([cells[s] for s in new], names, random_state)
            embedded.update(zip(new, h, strict=True))
        x0 = [cells[pairs.control[t]] for t in chosen]
        if model.config.source == "noise":
            x0 = [model.noise(len(x), rng) for x in x0]
        treatments = [pairs.treatments[pairs.treatment[t]] for t in chosen]
        h = np.stack([embedded[pairs.control[t]] for t in chosen])
        predicted = model.transport_populations(
            x0, h, treatments, chunk_size=chunk_size, generator=generator, **options
        )
        for target, x, treatment in zip(chosen, predicted, treatments, strict=True):
            _check_prediction(x, pairs.names[target], treatment)
            obsm.add(target, x)
        sink.add(predicted)
    return embedded


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


def _check_sde_options(
    model: MetaFlowModel, sde_eps: float, sde_steps: int, n_steps: int | None
) -> None:
    """Check ``sde_eps`` (and that the model has a score), ``sde_steps``, and no ``n_steps``."""
    model.check_sde(sde_eps)
    check_positive_int("sde_steps", sde_steps)
    if sde_eps > 0 and n_steps is not None:
        msg = (
            f"`n_steps={n_steps}` sets the ODE solver's steps; with `sde_eps={sde_eps}` the "
            "Euler-Maruyama steps are `sde_steps`: pass `n_steps=None`."
        )
        raise ValueError(msg)
