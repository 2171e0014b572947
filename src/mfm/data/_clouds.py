"""`PointClouds`: variable-size point clouds (e.g. cellular niches), padded into torch batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .._checks import check_finite


class PointClouds:
    """A collection of point clouds of varying sizes, stored flat, with one label per cloud.

    Cloud ``i`` is ``points[offsets[i]:offsets[i + 1]]``.

    Parameters
    ----------
    points
        ``(n_points, d)`` points of all clouds, concatenated (stored as float32).
    offsets
        ``(n_clouds + 1,)`` non-decreasing start offsets, from 0 to ``n_points``.
    labels
        ``(n_clouds,)`` integer labels (e.g. the cell type of each niche's centre), or ``None``.
    """

    def __init__(self, points: np.ndarray, offsets: np.ndarray, labels: np.ndarray | None = None):
        points = np.asarray(points, dtype=np.float32)
        offsets = np.asarray(offsets, dtype=np.int64)
        if points.ndim != 2:
            msg = f"`points` must be a (n_points, d) array, got shape {points.shape}."
            raise ValueError(msg)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(points):
            msg = f"`offsets` must be a 1-D array from 0 to n_points={len(points)}, got {offsets}."
            raise ValueError(msg)
        if np.any(np.diff(offsets) < 1):
            msg = "`offsets` must be strictly increasing: every cloud needs at least one point."
            raise ValueError(msg)
        check_finite(points, "`points`")
        self.points, self.offsets = points, offsets
        self.labels = None if labels is None else _check_labels(labels, len(offsets) - 1)

    @classmethod
    def from_list(
        cls, clouds: Sequence[np.ndarray], labels: np.ndarray | None = None
    ) -> PointClouds:
        """Build from a list of ``(n_i, d)`` arrays.

        Parameters
        ----------
        clouds
            The point clouds, all with the same ``d``.
        labels
            ``(n_clouds,)`` integer labels, or ``None``.

        Returns
        -------
        The collection.
        """
        if len(clouds) == 0:
            msg = "`clouds` must hold at least one point cloud."
            raise ValueError(msg)
        sizes = [len(cloud) for cloud in clouds]
        return cls(np.concatenate(clouds), np.concatenate([[0], np.cumsum(sizes)]), labels)

    @classmethod
    def from_neighbors(
        cls, features: np.ndarray, neighbors: np.ndarray, labels: np.ndarray | None = None
    ) -> PointClouds:
        """Build one cloud per row of a neighbour table (e.g. the k spatial neighbours of cells).

        Parameters
        ----------
        features
            ``(n_obs, d)`` features of every cell.
        neighbors
            ``(n_clouds, k)`` row indices into ``features``; ``-1`` marks a missing neighbour
            (that cloud then has fewer than ``k`` points).
        labels
            ``(n_clouds,)`` integer labels, or ``None``.

        Returns
        -------
        The collection: cloud ``i`` holds ``features[neighbors[i][neighbors[i] >= 0]]``.
        """
        neighbors = np.asarray(neighbors)
        if neighbors.ndim != 2 or not np.issubdtype(neighbors.dtype, np.integer):
            got = f"{neighbors.dtype} {neighbors.shape}"
            msg = f"`neighbors` must be a (n_clouds, k) integer array, got {got}."
            raise ValueError(msg)
        if neighbors.size and neighbors.max() >= len(features):
            msg = f"`neighbors` holds indices >= n_obs={len(features)}."
            raise ValueError(msg)
        valid = neighbors >= 0
        offsets = np.concatenate([[0], np.cumsum(valid.sum(1))])
        return cls(np.asarray(features)[neighbors[valid]], offsets, labels)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_features(self) -> int:
        """Dimension ``d`` of the points."""
        return int(self.points.shape[1])

    @property
    def sizes(self) -> np.ndarray:
        """``(n_clouds,)`` number of points of each cloud."""
        return np.diff(self.offsets)

    def __getitem__(self, index: int) -> np.ndarray:
        """``(n_i, d)`` points of cloud ``index``."""
        return self.points[self.offsets[index] : self.offsets[index + 1]]

    def pad(
        self,
        indices: np.ndarray | Sequence[int],
        *,
        n_max: int | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        """Stack clouds ``indices`` into a zero-padded tensor and its mask.

        Parameters
        ----------
        indices
            ``(B,)`` cloud indices.
        n_max
            Padded size (default: the largest selected cloud); must fit every selected cloud.
        device
            Device of the returned tensors.

        Returns
        -------
        ``x`` ``(B, n_max, d)`` float32 (0 on padding) and ``mask`` ``(B, n_max)`` bool.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            got = f"{indices.min()}..{indices.max()}"
            msg = f"`indices` must be cloud indices in [0, {len(self)}), got {got}."
            raise IndexError(msg)
        starts, sizes = self.offsets[indices], self.sizes[indices]
        width = int(sizes.max(initial=0)) if n_max is None else n_max
        if sizes.size and width < sizes.max():
            msg = f"`n_max={n_max}` is below the largest selected cloud ({sizes.max()} points)."
            raise ValueError(msg)
        mask = np.arange(width)[None, :] < sizes[:, None]
        rows = np.where(mask, starts[:, None] + np.arange(width)[None, :], 0)
        x = np.where(mask[..., None], self.points[rows], np.float32(0))
        return torch.as_tensor(x, device=device), torch.as_tensor(mask, device=device)


def _check_labels(labels: np.ndarray, n_clouds: int) -> np.ndarray:
    """``labels`` as an ``(n_clouds,)`` int64 array of non-negative codes."""
    labels = np.asarray(labels)
    if (
        labels.shape != (n_clouds,)
        or not np.issubdtype(labels.dtype, np.integer)
        or np.any(labels < 0)
    ):
        msg = (
            f"`labels` must be ({n_clouds},) non-negative integer codes (one per cloud), "
            f"got {labels.dtype} {labels.shape}."
        )
        raise ValueError(msg)
    return labels.astype(np.int64)
