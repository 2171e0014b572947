"""`NicheModel`: a trained Wasserstein flow matching generator of niches (clouds or Gaussians)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..data import FeatureScaling
from ..flows.generate import generate_clouds, generate_gaussian_clouds
from ..flows.niche_objectives import BuresWassersteinObjective, PointCloudObjective
from ..models import GaussianVelocity, SetTransformerVelocity
from ._base import BaseModel, register

GEOMETRIES = ("point_cloud", "gaussian")
NOISES = ("normal", "chol_normal")
MODES = ("matching", "barycentric")


@dataclass(frozen=True)
class NicheConfig:
    """Everything needed to rebuild a :class:`NicheModel` (plain types, JSON-ready).

    The model works on standardised features ``(x - feature_mean) / feature_scale`` (one scale
    for all features, so the geometry of the clouds is kept) and maps generated points back.

    Parameters
    ----------
    geometry
        ``"point_cloud"`` (set transformer on the points) or ``"gaussian"`` (MLP on the
        niche's mean and covariance, Bures-Wasserstein geometry).
    condition_key
        Column of ``adata.obs`` whose value at the centre cell labels a niche (``None``:
        unconditional).
    conditions
        Condition names, in code order.
    use_rep
        Features the niches are made of (``"X"``, a layer or an obsm key).
    key_added
        Key of :func:`mfm.pp.niches` (``uns`` entry, ``obsm['{key}_indices']``).
    niche_sizes
        Distinct numbers of points of the training niches.
    size_counts
        Number of training niches of each size in ``niche_sizes``.
    feature_mean
        Mean of each feature over all points of all training niches (standardisation).
    feature_scale
        Root mean feature variance over the same points (standardisation).
    noise
        ``"normal"`` (N(0, I) points) or ``"chol_normal"`` (points of the pooled Gaussian of
        the training niches, in standardised space).
    noise_mean
        Mean of the ``"chol_normal"`` noise (empty otherwise).
    noise_cov
        Covariance of the ``"chol_normal"`` noise (empty otherwise).
    ot_reg
        Entropic regularisation of the OT targets, relative to the mean cost.
    ot_iter
        Sinkhorn iterations.
    mode
        ``"matching"`` or ``"barycentric"`` OT targets.
    shrinkage
        Covariance shrinkage of the Gaussian geometry.
    hidden
        Width of the velocity network.
    n_layers
        Depth of the velocity network (as ``hidden`` is its width): its transformer blocks
        (point clouds) or hidden layers (Gaussians), as in :func:`mfm.tl.fit`'s MLP.
    n_heads
        Attention heads (point clouds).
    time_features
        Size of the time embedding.
    cfg_dropout
        Probability of training a niche with the null label (classifier-free guidance).

    Examples
    --------
    >>> niche_model = mfm.tl.fit_niches(adata, condition_key="cell_type", geometry="gaussian")
    >>> niche_model.config.geometry
    'gaussian'
    """

    geometry: Literal["point_cloud", "gaussian"] = "point_cloud"
    condition_key: str | None = None
    conditions: list[str] = field(default_factory=list)
    use_rep: str = "X"
    key_added: str = "niche"
    niche_sizes: list[int] = field(default_factory=list)
    size_counts: list[int] = field(default_factory=list)
    feature_mean: list[float] = field(default_factory=list)
    feature_scale: float = 1.0
    noise: Literal["normal", "chol_normal"] = "normal"
    noise_mean: list[float] = field(default_factory=list)
    noise_cov: list[list[float]] = field(default_factory=list)
    ot_reg: float = 0.01
    ot_iter: int = 200
    mode: Literal["matching", "barycentric"] = "matching"
    shrinkage: float = 0.1
    hidden: int = 128
    n_layers: int = 4
    n_heads: int = 4
    time_features: int = 32
    cfg_dropout: float = 0.1

    def __post_init__(self) -> None:
        # models saved before the N(0, I) noise was renamed "normal" (it was "gaussian", the
        # same word as the geometry) load unchanged
        if self.noise == "gaussian":
            object.__setattr__(self, "noise", "normal")


@register
class NicheModel(BaseModel):
    """A trained niche generator (returned by :func:`mfm.tl.fit_niches`).

    Parameters
    ----------
    config
        The model's :class:`NicheConfig`.
    features
        Feature names of the points (the ``use_rep`` columns).
    device
        Where the module lives.
    seed
        Seed of the weight initialisation.

    Examples
    --------
    Made by :func:`mfm.tl.fit_niches`, reloaded by :func:`mfm.tl.load`:

    >>> niche_model = mfm.tl.fit_niches(adata, condition_key="cell_type", max_steps=500)
    >>> niche_model.config.conditions
    >>> gen = mfm.tl.generate_niches(niche_model, n_per_condition=50)
    """

    config_class = NicheConfig
    config: NicheConfig

    @property
    def label(self) -> str:
        """``"WFM "`` and the geometry, e.g. ``"WFM point_cloud"``."""
        return f"WFM {self.config.geometry}"

    def summary(self) -> str:
        """Geometry of the niches, e.g. ``"point_cloud"``."""
        return self.config.geometry

    def build_module(self) -> nn.Module:
        """Build the velocity network of the configured geometry."""
        c, d = self.config, len(self.features)
        sizes = {
            "n_conditions": len(c.conditions),
            "hidden": c.hidden,
            "n_layers": c.n_layers,
            "time_features": c.time_features,
            "cfg_dropout": c.cfg_dropout,
        }
        if c.geometry == "gaussian":
            return GaussianVelocity(d, **sizes)
        return SetTransformerVelocity(d, n_heads=c.n_heads, **sizes)

    def objective(self) -> PointCloudObjective | BuresWassersteinObjective:
        """The training loss module around ``self.module`` (shares its parameters)."""
        c = self.config
        noise = {"noise": c.noise, "noise_mean": None, "noise_cov": None}
        if c.noise == "chol_normal":
            noise.update(noise_mean=self._tensor(c.noise_mean), noise_cov=self._tensor(c.noise_cov))
        if c.geometry == "gaussian":
            return BuresWassersteinObjective(self.module, shrinkage=c.shrinkage, **noise)
        return PointCloudObjective(
            self.module, reg=c.ot_reg, n_iter=c.ot_iter, mode=c.mode, **noise
        )

    def condition_codes(self, conditions: Sequence[str]) -> np.ndarray:
        """Codes of ``conditions``; `ValueError` naming unknown ones and the known ones."""
        known = self.config.conditions
        unknown = [c for c in conditions if c not in known]
        if unknown:
            msg = f"Conditions {unknown} were not seen in training; known conditions: {known}."
            raise ValueError(msg)
        return np.array([known.index(c) for c in conditions], dtype=np.int64)

    @property
    def scaling(self) -> FeatureScaling:
        """The feature scaling of the training points (``feature_mean``, ``feature_scale``)."""
        return FeatureScaling(np.asarray(self.config.feature_mean), self.config.feature_scale)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Features ``(n, d)`` in the model's standardised space (float32)."""
        return self.scaling.transform(x)

    def unstandardize(self, x: np.ndarray) -> np.ndarray:
        """Standardised points ``(..., d)`` back in the feature space (float32)."""
        return self.scaling.inverse(x)

    @torch.no_grad()
    def sample(
        self,
        labels: np.ndarray | None,
        sizes: np.ndarray,
        *,
        guidance_scale: float = 0.0,
        n_steps: int = 100,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
    ) -> list[np.ndarray]:
        """Generate one niche per entry of ``sizes``, in batches.

        Parameters
        ----------
        labels
            ``(N,)`` condition codes, or ``None`` for an unconditional model.
        sizes
            ``(N,)`` number of points of each niche.
        guidance_scale
            Classifier-free guidance weight ``w`` (0: conditional velocity).
        n_steps
            Euler steps from t = 0 to 1.
        batch_size
            Niches generated at once.
        generator
            Torch generator on the model's device.

        Returns
        -------
        ``N`` arrays ``(sizes[i], d)`` in the feature space.
        """
        self.module.eval()
        objective = self.objective()
        out = []
        for start in range(0, len(sizes), batch_size):
            chunk = np.asarray(sizes[start : start + batch_size])
            mask = torch.as_tensor(np.arange(chunk.max())[None, :] < chunk[:, None])
            mask = mask.to(self.device)
            like = torch.zeros(*mask.shape, len(self.features), device=self.device)
            codes = None
            if labels is not None:
                codes = torch.as_tensor(labels[start : start + batch_size], device=self.device)
            x = self._generate(objective, like, mask, codes, guidance_scale, n_steps, generator)
            x = self.unstandardize(x.cpu().numpy())
            out += [cloud[:size] for cloud, size in zip(x, chunk, strict=True)]
        return out

    def _generate(
        self,
        objective: PointCloudObjective | BuresWassersteinObjective,
        like: Tensor,
        mask: Tensor,
        labels: Tensor | None,
        guidance_scale: float,
        n_steps: int,
        generator: torch.Generator | None,
    ) -> Tensor:
        """``(B, n, d)`` standardised clouds generated from noise clouds."""
        x0 = objective.noise_clouds(like, mask, generator)
        velocity = partial(self.module.guided, guidance_scale=guidance_scale)
        if self.config.geometry == "point_cloud":
            return generate_clouds(velocity, x0, mask, labels, n_steps=n_steps)
        return generate_gaussian_clouds(
            velocity,
            x0,
            mask,
            labels,
            shrinkage=self.config.shrinkage,
            n_steps=n_steps,
            generator=generator,
        )

    def _tensor(self, values: list) -> Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=self.device)
