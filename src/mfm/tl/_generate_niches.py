"""`mfm.tl.generate_niches`: sample new niches of chosen conditions from a trained generator."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._checks import check_positive_int
from .._utils import as_numpy_rng, as_torch_generator
from ._niche_model import NicheModel

logger = logging.getLogger(__name__)


def generate_niches(
    model: NicheModel,
    *,
    conditions: str | Sequence[str] | None = None,
    n_per_condition: int | Mapping[str, int] = 100,
    n_points: int | None = None,
    guidance_scale: float = 0.0,
    n_steps: int = 100,
    batch_size: int = 256,
    random_state: int = 0,
) -> AnnData:
    """Generate niches by integrating the learned flow from noise clouds.

    Each niche starts from a noise cloud of its size (the model's noise) and follows the learned
    velocity for ``n_steps`` Euler steps from t = 0 to 1 (Gaussian models step the Gaussian
    along the Bures-Wasserstein velocity, then draw the points from the generated Gaussian).

    Parameters
    ----------
    model
        Model returned by :func:`mfm.tl.fit_niches` or :func:`mfm.tl.load`.
    conditions
        Condition names (values of the model's ``condition_key``) to generate niches of;
        ``None``: every training condition (or unconditional niches for an unconditional
        model).
    n_per_condition
        Niches per condition, or a mapping from condition name to number of niches (e.g. the
        condition counts of the real tissue; then leave ``conditions`` as ``None``).
    n_points
        Points per niche; ``None`` draws each niche's size from the sizes of the training
        niches.
    guidance_scale
        Classifier-free guidance weight ``w``: the velocity is
        ``(1 + w) v(x | c) - w v(x | null)``; 0 is plain conditional generation. Needs a model
        trained with ``cfg_dropout > 0``.
    n_steps
        Euler steps.
    batch_size
        Niches generated at once (bounds memory).
    random_state
        Seed of the sizes and of the noise; same seed and model, same niches (on CPU).

    Returns
    -------
    AnnData with one row per generated point: ``X`` in the model's feature space (``var_names``
    are the features of its ``use_rep``), ``obs['{key_added}']`` (categorical niche id, e.g.
    ``"niche"``) and, for conditional models, the condition column under its own name
    (categorical with the model's conditions); ``uns['{key_added}']['params']`` records the
    model and generation parameters.

    Examples
    --------
    >>> gen = mfm.tl.generate_niches(model, conditions=["type_0", "type_1"], n_per_condition=50)
    """
    check_positive_int("n_steps", n_steps)
    check_positive_int("batch_size", batch_size)
    if n_points is not None:
        check_positive_int("n_points", n_points)
    names, counts = _resolve_counts(model, conditions, n_per_condition)
    codes = _resolve_codes(model, names, guidance_scale)
    rng = as_numpy_rng(random_state)
    n_niches = int(counts.sum())
    sizes = _sizes(model, n_niches, n_points, rng)
    labels = None if codes is None else np.repeat(codes, counts)

    generator = as_torch_generator(rng, model.device)
    clouds = model.sample(
        labels,
        sizes,
        guidance_scale=guidance_scale,
        n_steps=n_steps,
        batch_size=batch_size,
        generator=generator,
    )
    generated = _niches_anndata(model, clouds, labels)
    keys = K.NicheKeys(model.config.key_added)
    generated.uns[keys.uns] = {
        keys.params: _generate_params(
            model, names, counts, n_points, guidance_scale, n_steps, random_state
        )
    }
    logger.info("generated %d niches (%d points)", n_niches, generated.n_obs)
    return generated


def _resolve_counts(
    model: NicheModel,
    conditions: str | Sequence[str] | None,
    n_per_condition: int | Mapping[str, int],
) -> tuple[list[str], np.ndarray]:
    """Condition names (empty for an unconditional model) and niches to generate of each."""
    if isinstance(n_per_condition, Mapping):
        if conditions is not None:
            msg = "Pass `conditions` or a mapping `n_per_condition`, not both."
            raise ValueError(msg)
        names = [str(name) for name in n_per_condition]
        counts = [n_per_condition[name] for name in n_per_condition]
    else:
        names = model.config.conditions if conditions is None else _as_list(conditions)
        counts = [n_per_condition] * max(1, len(names))
    for count in counts:
        check_positive_int("n_per_condition", count)
    return names, np.asarray(counts, dtype=np.int64)


def _resolve_codes(model: NicheModel, names: list[str], guidance_scale: float) -> np.ndarray | None:
    """Codes of the conditions (``None`` for an unconditional model), options checked."""
    known = model.config.conditions
    if not known:
        if names:
            msg = "The model is unconditional (no `condition_key`); pass `conditions=None`."
            raise ValueError(msg)
        if guidance_scale != 0:
            msg = "`guidance_scale` needs a conditional model; pass `guidance_scale=0`."
            raise ValueError(msg)
        return None
    if guidance_scale != 0 and model.config.cfg_dropout == 0:
        msg = "`guidance_scale` needs a model trained with `cfg_dropout > 0` (a null label)."
        raise ValueError(msg)
    if not names:
        msg = f"`conditions` is empty; pass some of {known}."
        raise ValueError(msg)
    return model.condition_codes(names)


def _as_list(conditions: str | Sequence[str]) -> list[str]:
    return [conditions] if isinstance(conditions, str) else [str(c) for c in conditions]


def _sizes(
    model: NicheModel, n_niches: int, n_points: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Number of points of each niche: ``n_points``, or drawn from the training sizes."""
    if n_points is not None:
        return np.full(n_niches, n_points, dtype=np.int64)
    sizes = np.asarray(model.config.niche_sizes, dtype=np.int64)
    weights = np.asarray(model.config.size_counts, dtype=np.float64)
    return rng.choice(sizes, size=n_niches, p=weights / weights.sum())


def _niches_anndata(
    model: NicheModel, clouds: list[np.ndarray], labels: np.ndarray | None
) -> AnnData:
    """One row per point; obs: niche id and condition (categorical)."""
    sizes = np.array([len(cloud) for cloud in clouds])
    niche = np.repeat(np.arange(len(clouds)), sizes)
    ids = [str(i) for i in range(len(clouds))]
    obs = pd.DataFrame({model.config.key_added: pd.Categorical.from_codes(niche, ids)})
    if labels is not None:
        obs[model.config.condition_key] = pd.Categorical.from_codes(
            np.repeat(labels, sizes), model.config.conditions
        )
    within = np.arange(len(niche)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    obs.index = [f"niche{i}_{j}" for i, j in zip(niche, within, strict=True)]
    x = np.concatenate(clouds).astype(np.float32)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=list(model.features)))


def _generate_params(
    model: NicheModel,
    names: list[str],
    counts: np.ndarray,
    n_points: int | None,
    guidance_scale: float,
    n_steps: int,
    random_state: int,
) -> dict:
    """What the evaluation and the plots need to know, as plain h5ad-writable types."""
    c = model.config
    params = {
        "geometry": c.geometry,
        K.USE_REP: c.use_rep,
        "n_per_condition": counts.tolist(),
        "guidance_scale": float(guidance_scale),
        "n_steps": int(n_steps),
        "random_state": int(random_state),
    }
    if c.condition_key is not None:
        params.update(condition_key=c.condition_key, conditions=names)
    if n_points is not None:
        params["n_points"] = int(n_points)
    return params
