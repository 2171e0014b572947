"""Population conditioners: what MFM, CGFM and FM know about the source population.

The three methods share one velocity network and one loss; they differ only here:

- :class:`GCNConditioner` (MFM): a kNN-GCN embedding of the control cells themselves,
  so unseen populations get a meaningful embedding.
- :class:`OneHotConditioner` (CGFM): a one-hot code of the training population; unseen
  populations get the mean one-hot.
- :class:`NullConditioner` (FM): nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .gcn import GCNEncoder


class NullConditioner(nn.Module):
    """No population information (flow matching conditioned on the treatment only)."""

    out_features = 0

    def forward(self, cells: Tensor, population: Tensor) -> Tensor:
        """Return an empty ``(B, 0)`` embedding.

        Parameters
        ----------
        cells
            ``(B, n, d)`` control cells (unused).
        population
            ``(B,)`` population codes (unused).
        """
        return cells.new_zeros(cells.shape[0], 0)


class OneHotConditioner(nn.Module):
    """One-hot code of the training population (CGFM); code ``-1`` maps to the mean one-hot.

    Parameters
    ----------
    n_populations
        Number of training (control) populations.
    """

    def __init__(self, n_populations: int) -> None:
        super().__init__()
        self.out_features = n_populations

    def forward(self, cells: Tensor, population: Tensor) -> Tensor:
        """Return ``(B, n_populations)`` one-hot rows; unseen (``-1``) rows are uniform.

        Parameters
        ----------
        cells
            ``(B, n, d)`` control cells (only their device and dtype are used).
        population
            ``(B,)`` long codes in ``[0, n_populations)``, or ``-1`` for unseen populations.
        """
        n = self.out_features
        codes = torch.full((len(population), n), 1.0 / n, device=cells.device, dtype=cells.dtype)
        seen = population >= 0
        codes[seen] = nn.functional.one_hot(population[seen], n).to(cells.dtype)
        return codes


class GCNConditioner(nn.Module):
    """kNN-GCN embedding of the control population (MFM).

    Parameters
    ----------
    features
        Number of cell features ``d``.
    hidden
        Width of the GCN layers.
    n_layers
        Number of GCN layers.
    out_features
        Embedding dimension.
    knn
        Neighbours per cell in the kNN graph (0: no edges).
    normalize
        L2-normalise the pooled embedding.
    """

    def __init__(
        self,
        features: int,
        *,
        hidden: int = 64,
        n_layers: int = 3,
        out_features: int = 64,
        knn: int = 10,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = GCNEncoder(
            features,
            hidden=hidden,
            n_layers=n_layers,
            out_features=out_features,
            knn=knn,
            normalize=normalize,
        )
        self.out_features = out_features

    def forward(self, cells: Tensor, population: Tensor) -> Tensor:
        """Return the ``(B, out_features)`` embedding h of each population.

        Parameters
        ----------
        cells
            ``(B, n, d)`` control cells of each population.
        population
            ``(B,)`` population codes (unused: h is computed from the cells alone).
        """
        return self.encoder(cells)
