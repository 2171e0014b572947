"""The reference training step (``LettersMFM``) and its letters batches.

Manual optimisation with two Adam optimisers (lr 1e-4): odd steps ("flow steps") update the
velocity MLP with the populations' *cached* embeddings (the GCN runs only for populations not
seen before); even steps ("GCN steps") embed the batch with the GCN, refresh the cache, and
update the GCN only (the backward pass still goes through the MLP). The loss is the reference's
:math:`\\lVert b \\rVert^2 - 2 \\langle b, u \\rangle` (the squared error minus
:math:`\\lVert u \\rVert^2`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .model import ReferenceGNNFlow


class ReferenceLoader:
    """Letters batches as the reference's data loader yields them.

    Each epoch visits the training populations in a random order, ``batch_size`` at a time;
    each population contributes ``n_cells`` rows drawn without replacement, the same rows of
    its source and its (row-paired) target.

    Parameters
    ----------
    sources, targets
        Per population, ``(n_i, d)`` float32 source and target cells (row-paired).
    batch_size
        Populations per batch.
    n_cells
        Rows per population (``<= n_i``).
    device
        Where the batches go.
    random_state
        Seed of the shuffles and draws.
    """

    def __init__(
        self,
        sources: list[np.ndarray],
        targets: list[np.ndarray],
        *,
        batch_size: int = 10,
        n_cells: int = 700,
        device: torch.device | str = "cpu",
        random_state: int = 0,
    ):
        self.sources, self.targets = sources, targets
        self.batch_size, self.n_cells, self.device = batch_size, n_cells, torch.device(device)
        self.rng = np.random.default_rng(random_state)
        self._order: list[int] = []

    def __call__(self) -> tuple[Tensor, Tensor, Tensor]:
        """Next batch: population ids ``(B,)``, sources and targets ``(B, n_cells, d)``."""
        if len(self._order) < self.batch_size:
            self._order = list(self.rng.permutation(len(self.sources)))
        idx = [self._order.pop() for _ in range(self.batch_size)]
        rows = [self.rng.choice(len(self.sources[i]), self.n_cells, replace=False) for i in idx]
        x0 = torch.stack(
            [torch.from_numpy(self.sources[i][r]) for i, r in zip(idx, rows, strict=True)]
        )
        x1 = torch.stack(
            [torch.from_numpy(self.targets[i][r]) for i, r in zip(idx, rows, strict=True)]
        )
        return torch.tensor(idx), x0.to(self.device), x1.to(self.device)


class ReferenceTrainer:
    """Alternating flow / GCN steps of ``LettersMFM`` with an embedding cache.

    Parameters
    ----------
    model
        The reference network.
    flow_lr, gnn_lr
        Learning rates of the two Adam optimisers.
    generator
        Draws the flow times (the reference uses the global RNG).
    """

    def __init__(
        self,
        model: ReferenceGNNFlow,
        *,
        flow_lr: float = 1e-4,
        gnn_lr: float = 1e-4,
        generator: torch.Generator | None = None,
    ):
        self.model = model
        self.flow_optimizer = torch.optim.Adam(model.decoder.parameters(), lr=flow_lr)
        self.gnn_optimizer = torch.optim.Adam(model.gcn_convs.parameters(), lr=gnn_lr)
        self.generator = generator
        self.embeddings: dict[int, Tensor] = {}
        self.batch_idx = 0

    def step(self, idx: Tensor, x0: Tensor, x1: Tensor) -> float:
        """One training step (GCN step when the batch index is odd, as ``(i + 1) % 2 == 0``)."""
        gnn = (self.batch_idx + 1) % 2 == 0
        self.batch_idx += 1
        return self.gnn_step(idx, x0, x1) if gnn else self.flow_step(idx, x0, x1)

    def flow_step(self, idx: Tensor, x0: Tensor, x1: Tensor) -> float:
        """Update the velocity MLP with cached embeddings ``(B, n, h)``."""
        embedding = self.cached_embeddings(idx, x0)
        loss = self.loss(embedding.reshape(-1, embedding.shape[-1]), x0, x1)
        self.flow_optimizer.zero_grad()
        loss.backward()
        self.flow_optimizer.step()
        return float(loss.detach())

    def gnn_step(self, idx: Tensor, x0: Tensor, x1: Tensor) -> float:
        """Embed the batch with the GCN, refresh the cache, update the GCN."""
        embedding = self.model.embed_source(x0).unsqueeze(1).expand(-1, x0.shape[1], -1)
        for i, population in enumerate(idx.tolist()):
            self.embeddings[population] = embedding[i].detach()
        loss = self.loss(embedding.reshape(-1, embedding.shape[-1]), x0, x1)
        self.gnn_optimizer.zero_grad()
        loss.backward()
        self.gnn_optimizer.step()
        return float(loss.detach())

    def cached_embeddings(self, idx: Tensor, x0: Tensor) -> Tensor:
        """``(B, n, h)`` embeddings, running the GCN (no grad kept) for unseen populations."""
        rows = []
        for i, population in enumerate(idx.tolist()):
            if population not in self.embeddings:
                self.embeddings[population] = self.model.embed_source(x0[i]).detach()
            rows.append(self.embeddings[population].expand(x0.shape[1], -1))
        return torch.stack(rows)

    def loss(self, embedding: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
        """Reference loss of flattened pairs ``(B * n, d)`` with embeddings ``(B * n, h)``."""
        x0, x1 = x0.reshape(-1, x0.shape[-1]), x1.reshape(-1, x1.shape[-1])
        t = torch.rand((len(x0), 1), generator=self.generator, device=x0.device, dtype=x0.dtype)
        y = (1.0 - t) * x0 + t * x1
        u = x1 - x0
        b = self.model.flow(embedding, t.squeeze(-1), y)
        return (b.norm(dim=-1) ** 2 - 2.0 * (b * u).sum(dim=-1)).mean()

    def fill_cache(self, loader: ReferenceLoader) -> None:
        """Embed every population once (the state after the first epoch of training)."""
        with torch.no_grad():
            for population, cells in enumerate(loader.sources):
                rows = loader.rng.choice(len(cells), loader.n_cells, replace=False)
                x = torch.from_numpy(cells[rows]).to(loader.device)
                self.embeddings[population] = self.model.embed_source(x).detach()
