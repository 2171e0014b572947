"""Feature scaling of point sets: one mean per feature, one scale for all (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureScaling:
    r"""The map :math:`x \mapsto (x - m) / s` with one mean per feature and one overall scale.

    A single scale :math:`s = \sqrt{\operatorname{mean}_j \operatorname{Var}(x_{\cdot j})}`
    (the root mean feature variance) keeps the geometry of point clouds, unlike a scale per
    feature; the scaled points have mean 0 and mean feature variance 1.

    Attributes
    ----------
    mean
        ``(d,)`` float64 mean of each feature.
    scale
        The overall scale (1 when every feature is constant).

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
    scale: float

    @classmethod
    def fit(cls, points: np.ndarray) -> FeatureScaling:
        """Mean and scale of ``(n, d)`` points, computed in float64.

        Parameters
        ----------
        points
            ``(n, d)`` points (e.g. all points of all training clouds).

        Returns
        -------
        The fitted scaling.
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or len(points) == 0:
            msg = f"`points` must be a non-empty (n, d) array, got shape {points.shape}."
            raise ValueError(msg)
        mean = points.mean(axis=0)
        return cls(mean, float(np.sqrt(points.var(axis=0).mean())) or 1.0)

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
        mean = np.asarray(self.mean, dtype=dtype)
        return ((x - mean) / dtype(self.scale)).astype(dtype)

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
        mean = np.asarray(self.mean, dtype=dtype)
        return (x * dtype(self.scale) + mean).astype(dtype)
