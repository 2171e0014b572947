"""Feature scaling: one mean per feature, one scale for all or one per feature (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureScaling:
    r"""The map :math:`x \mapsto (x - m) / s` with one mean per feature.

    ``"global"`` scaling divides every feature by one scale
    :math:`s = \sqrt{\operatorname{mean}_j \operatorname{Var}(x_{\cdot j})}` (the root mean
    feature variance), which keeps the geometry of the data (relative feature scales, point
    clouds) while removing its units; the scaled points have mean 0 and mean feature variance 1.
    ``"feature"`` scaling divides each feature by its own standard deviation. A zero scale
    (constant data) is replaced by 1: such features are only centred.

    Attributes
    ----------
    mean
        ``(d,)`` float64 mean of each feature.
    scale
        The overall scale (``"global"``) or ``(d,)`` scales (``"feature"``).

    Examples
    --------
    >>> import numpy as np
    >>> from mfm.data import FeatureScaling
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 4))
    >>> scaling = FeatureScaling.fit(x)
    >>> np.allclose(scaling.inverse(scaling.transform(x)), x, atol=1e-5)
    True
    """

    mean: np.ndarray
    scale: float | np.ndarray

    @classmethod
    def from_moments(
        cls, mean: np.ndarray, var: np.ndarray, kind: str = "global"
    ) -> FeatureScaling:
        """The scaling of data with per-feature ``mean`` and (population) variance ``var``.

        Parameters
        ----------
        mean
            ``(d,)`` feature means.
        var
            ``(d,)`` feature variances.
        kind
            ``"global"`` (one scale) or ``"feature"`` (one per feature).

        Returns
        -------
        The scaling.
        """
        if kind == "global":
            return cls(mean, float(np.sqrt(np.mean(var))) or 1.0)
        if kind == "feature":
            std = np.sqrt(var)
            return cls(mean, np.where(std > 0, std, 1.0))
        msg = f"`kind` must be 'global' or 'feature', got {kind!r}."
        raise ValueError(msg)

    @classmethod
    def fit(cls, points: np.ndarray, kind: str = "global") -> FeatureScaling:
        """Mean and scale of ``(n, d)`` points, computed in float64.

        Parameters
        ----------
        points
            ``(n, d)`` points (e.g. all points of all training clouds).
        kind
            ``"global"`` or ``"feature"`` (see the class description).

        Returns
        -------
        The fitted scaling.
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or len(points) == 0:
            msg = f"`points` must be a non-empty (n, d) array, got shape {points.shape}."
            raise ValueError(msg)
        return cls.from_moments(points.mean(axis=0), points.var(axis=0), kind)

    def transform(self, x: np.ndarray, dtype: type[np.floating] = np.float32) -> np.ndarray:
        """``(x - mean) / scale`` of ``(..., d)`` points, computed and returned in ``dtype``.

        Parameters
        ----------
        x
            ``(..., d)`` points.
        dtype
            Floating type of the computation and the result.

        Returns
        -------
        The scaled points.
        """
        mean, scale = (np.asarray(v, dtype=dtype) for v in (self.mean, self.scale))
        return ((x - mean) / scale).astype(dtype)

    def inverse(self, x: np.ndarray, dtype: type[np.floating] = np.float32) -> np.ndarray:
        """``x * scale + mean``: scaled points back in the feature space, in ``dtype``.

        Parameters
        ----------
        x
            ``(..., d)`` scaled points.
        dtype
            Floating type of the computation and the result.

        Returns
        -------
        The points in the feature space.
        """
        mean, scale = (np.asarray(v, dtype=dtype) for v in (self.mean, self.scale))
        return (x * scale + mean).astype(dtype)
