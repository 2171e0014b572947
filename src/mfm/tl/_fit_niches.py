"""`mfm.tl.fit_niches`: train a Wasserstein flow matching generator of spatial niches."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .. import _keys as K
from .._anndata import make_actual
from .._checks import (
    check_choice,
    check_number,
    check_positive_int,
    check_positive_ints,
)
from .._utils import Device, check_training_options
from ..data import CloudSampler, FeatureScaling, PointClouds
from ..flows.point_clouds import pooled_gaussian
from ..train import TrainSettings, rank_and_world
from ._niche_io import Niches, real_niches
from ._niche_model import GEOMETRIES, MODES, NOISES, NicheConfig, NicheModel
from ._trainer import check_checkpoint_options, fit_params, train_model

logger = logging.getLogger(__name__)


def fit_niches(
    adata: AnnData,
    *,
    condition_key: str | None = None,
    geometry: str = "point_cloud",
    noise: str = "normal",
    ot_reg: float = 0.01,
    ot_iter: int = 200,
    mode: str = "matching",
    shrinkage: float = 0.1,
    hidden: int = 128,
    n_layers: int = 4,
    n_heads: int = 4,
    time_features: int = 32,
    cfg_dropout: float = 0.1,
    batch_size: int = 64,
    max_steps: int = 2000,
    lr: float = 1e-3,
    val_every: int = 100,
    checkpoint_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    device: Device = "auto",
    random_state: int = 0,
    progress: bool = True,
    key_added: str = "niche",
) -> NicheModel:
    """Train a generator of niches conditioned on the label of their centre cell.

    Each niche (the neighbours of a cell from :func:`mfm.pp.niches`, as points in ``use_rep``
    space) is the uniform measure on its points. Features are standardised first (one mean per
    feature, one scale for all). Each step draws ``batch_size`` niches and, per niche, a noise
    cloud with as many points, then

    - ``geometry="point_cloud"``: maps the noise points to the niche points by entropic OT and
      regresses the straight-line velocity with a set transformer conditioned on t and the
      centre cell's condition (:class:`mfm.flows.niche_objectives.PointCloudObjective`);
    - ``geometry="gaussian"``: summarises noise and niche by their Gaussians (mean, shrunk
      covariance) and regresses the Bures-Wasserstein geodesic velocity with an MLP
      (:class:`mfm.flows.niche_objectives.BuresWassersteinObjective`).

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.niches` (not subset since).
    condition_key
        Column of ``adata.obs``: a niche is labelled by the value at its centre cell (e.g. the
        cell type). Niches whose centre has no value are left out. ``None``: unconditional.
    geometry
        ``"point_cloud"`` or ``"gaussian"``.
    noise
        ``"normal"``: N(0, I) noise points; ``"chol_normal"``: points of the Gaussian fitted
        to all points of all training niches.
    ot_reg
        Entropic regularisation of the OT targets, relative to each cloud's mean cost
        (point clouds).
    ot_iter
        Sinkhorn iterations (point clouds).
    mode
        ``"matching"`` (each noise point goes to one niche point) or ``"barycentric"``
        (point clouds).
    shrinkage
        Covariance shrinkage in [0, 1] towards the scaled identity (Gaussians).
    hidden
        Width of the velocity network.
    n_layers
        Depth of the velocity network (as ``hidden`` is its width): its transformer blocks
        (point clouds) or hidden layers (Gaussians), as in :func:`mfm.tl.fit`'s MLP.
    n_heads
        Attention heads (point clouds; must divide ``hidden``).
    time_features
        Size of the sinusoidal time embedding.
    cfg_dropout
        Probability of training a niche with the null label, which enables classifier-free
        guidance at generation.
    batch_size
        Niches per step.
    max_steps
        Training steps.
    lr
        Peak learning rate (AdamW, warm-up then cosine decay).
    val_every
        Steps between history rows.
    checkpoint_every
        Save the whole training state to ``checkpoint_dir`` every this many steps.
    checkpoint_dir
        Folder of the checkpoints.
    resume
        Continue an interrupted run from the checkpoint in ``checkpoint_dir`` (same data
        and options), as in :func:`mfm.tl.fit`.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    random_state
        Seed of the initialisation and of every draw; same seed, same model on CPU.
    progress
        Show a progress bar with the loss.
    key_added
        Key of the niches written by :func:`mfm.pp.niches`.

    Returns
    -------
    The trained :class:`~mfm.tl.NicheModel`. Also sets

    - ``adata.uns[key_added]['history']``: DataFrame of step, train loss, lr;
    - ``adata.uns[key_added]['params']['fit']``: the fit parameters.

    A view is made an actual AnnData first (with a warning), so its parent is never changed.

    Examples
    --------
    >>> mfm.pp.niches(adata, n_neighbors=16, library_key="slice", use_rep="X_pca")
    >>> model = mfm.tl.fit_niches(adata, condition_key="cell_type", max_steps=2000)
    """
    _check_options(geometry, noise, mode, batch_size, max_steps, shrinkage)
    _check_network(geometry, hidden, n_layers, n_heads, time_features, cfg_dropout, ot_reg, ot_iter)
    check_training_options(lr=lr, val_every=val_every, random_state=random_state, device=device)
    check_checkpoint_options(checkpoint_every, checkpoint_dir, resume)
    keys = K.NicheKeys(key_added)
    make_actual(adata)
    niches = real_niches(adata, keys, condition_key)
    config = _config(niches, keys, condition_key, geometry, noise, mode)
    config = NicheConfig(
        **config,
        ot_reg=float(ot_reg),
        ot_iter=int(ot_iter),
        shrinkage=float(shrinkage),
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        time_features=time_features,
        cfg_dropout=float(cfg_dropout),
    )
    model = NicheModel(config, niches.features, device=device, seed=random_state)
    logger.info(
        "training a %s niche generator on %d niches on %s",
        geometry,
        len(niches.clouds),
        model.device,
    )

    clouds = PointClouds(model.standardize(niches.clouds.points), niches.clouds.offsets)
    sampler = CloudSampler(
        clouds,
        niches.labels,
        batch_size=batch_size,
        device=model.device,
        seed=random_state,
        rank=rank_and_world()[0],
    )
    settings = TrainSettings(max_steps=max_steps, lr=lr, val_every=val_every, progress=progress)
    history = train_model(
        model,
        sampler,
        sampler.batch,
        settings,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )

    params = fit_params(
        config, settings, FIT_PARAMS_SKIP, batch_size=batch_size, random_state=random_state
    )
    added = _write(adata, keys, history, params)
    logger.info("finished; added %s", ", ".join(added))
    return model


#: Config entries left out of ``params['fit']`` (data, not options).
FIT_PARAMS_SKIP = {"feature_mean", "noise_mean", "noise_cov", "niche_sizes", "size_counts"}


def _write(adata: AnnData, keys: K.NicheKeys, history: pd.DataFrame, params: dict) -> list[str]:
    """Write the history and the fit parameters; return the keys written, as ``uns[...]`` paths."""
    uns = adata.uns[keys.uns]
    uns[keys.history] = history
    uns[keys.params][K.FIT_PARAMS] = params
    return [
        f"uns[{keys.uns!r}][{keys.history!r}]",
        f"uns[{keys.uns!r}][{keys.params!r}][{K.FIT_PARAMS!r}]",
    ]


def _config(
    niches: Niches,
    keys: K.NicheKeys,
    condition_key: str | None,
    geometry: str,
    noise: str,
    mode: str,
) -> dict:
    """Data-dependent config entries: conditions, sizes, standardisation, noise moments."""
    scaling = FeatureScaling.fit(niches.clouds.points)
    sizes, counts = np.unique(niches.clouds.sizes, return_counts=True)
    noise_mean, noise_cov = [], []
    if noise == "chol_normal":
        standardised = scaling.transform(niches.clouds.points, dtype=np.float64)
        m, S = pooled_gaussian(torch.as_tensor(standardised))
        noise_mean, noise_cov = m.tolist(), S.tolist()
    return {
        "geometry": geometry,
        K.CONDITION_KEY: condition_key,
        "conditions": niches.conditions,
        K.USE_REP: niches.use_rep,
        "key_added": keys.key_added,
        "niche_sizes": sizes.tolist(),
        "size_counts": counts.tolist(),
        "feature_mean": scaling.mean.tolist(),
        "feature_scale": scaling.scale,
        "noise": noise,
        "noise_mean": noise_mean,
        "noise_cov": noise_cov,
        "mode": mode,
    }


def _check_options(
    geometry: str, noise: str, mode: str, batch_size: int, max_steps: int, shrinkage: float
) -> None:
    check_choice("geometry", geometry, GEOMETRIES)
    check_choice("noise", noise, NOISES)
    check_choice("mode", mode, MODES)
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_steps", max_steps)
    if not 0.0 <= shrinkage <= 1.0:
        msg = f"`shrinkage` must be in [0, 1], got {shrinkage!r}."
        raise ValueError(msg)


def _check_network(
    geometry: str,
    hidden: int,
    n_layers: int,
    n_heads: int,
    time_features: int,
    cfg_dropout: float,
    ot_reg: float,
    ot_iter: int,
) -> None:
    """Check the sizes of the velocity network and the OT options before any work."""
    check_positive_ints(
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        time_features=time_features,
        ot_iter=ot_iter,
    )
    if geometry == "point_cloud" and hidden % n_heads:
        msg = f"`n_heads={n_heads}` must divide `hidden={hidden}`."
        raise ValueError(msg)
    check_number("cfg_dropout", cfg_dropout, low=0.0, high=1.0, closed="both")
    check_number("ot_reg", ot_reg)
