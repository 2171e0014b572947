"""The reference MFM network: GCNConv population encoder + Fourier-feature velocity MLP.

Follows ``GlobalGNN`` of the published code (letters configuration: 3 GCN layers of width 64,
velocity MLP of width 512 with 4 layers, kNN graph with k = 50), with two deliberate
changes that do not touch the arithmetic: the device is an argument (the original hard-codes
CUDA) and the kNN graph is built with scikit-learn instead of ``torch_cluster`` (both query a
KD-tree on the CPU, one population at a time).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neighbors import NearestNeighbors
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GCNConv


def knn_edge_index(points: np.ndarray, k: int) -> Tensor:
    """Edges ``j -> i`` for the ``k`` nearest other points ``j`` of every point ``i``.

    Same graph as ``torch_geometric.nn.pool.knn_graph(x, k)`` (``loop=False``,
    ``flow="source_to_target"``): row 0 holds the neighbour, row 1 the centre.

    Parameters
    ----------
    points
        ``(n, d)`` one population, on the CPU.
    k
        Neighbours per point.

    Returns
    -------
    ``(2, n * k)`` long CPU tensor.
    """
    # kneighbors() without a query excludes each point from its own neighbours
    neighbors = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(return_distance=False)
    centres = np.repeat(np.arange(len(points)), k)
    return torch.from_numpy(np.stack([neighbors.ravel(), centres]))


class SkipMLP(nn.Module):
    r"""Residual SELU MLP of the reference: :math:`z \leftarrow \sigma(W z + b + z)`.

    Parameters
    ----------
    n_in, n_out, hidden, n_layers
        Input size, output size, width, and number of hidden maps + 1 (``n_layers - 1``
        residual ``hidden x hidden`` layers between the input and output layers).
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, n_layers: int):
        super().__init__()
        self.input_layer = nn.Linear(n_in, hidden)
        self.hidden_layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_layers - 1))
        self.output_layer = nn.Linear(hidden, n_out)
        self.activation = nn.SELU()

    def forward(self, z: Tensor) -> Tensor:
        out = self.activation(self.input_layer(z))
        for layer in self.hidden_layers:
            out = self.activation(layer(out) + out)
        return self.output_layer(out)


def plain_mlp(n_in: int, n_out: int, hidden: int, n_layers: int) -> nn.Sequential:
    """The reference's non-residual SELU MLP: ``n_layers - 1`` hidden maps, then the output."""
    sizes = [n_in] + [hidden] * (n_layers - 1)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.SELU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


class ReferenceGNNFlow(nn.Module):
    r"""Population encoder and conditional velocity of the reference letters model.

    Embedding of a population :math:`X` (``n`` points): 3 ``GCNConv`` layers (ReLU between
    them) on its kNN graph, mean pool, L2 normalisation. Velocity at ``(y, t)``:

    .. math::
        v = \mathrm{MLP}([h, e(t), \cos(2\pi y B), \sin(2\pi y B), y]),
        \quad B \sim N(0, 0.01^2)^{d \times 128},

    with :math:`e` the 128-d transformer time embedding (max period :math:`10^4`).

    Parameters
    ----------
    dim
        Feature dimension ``d``.
    gnn_hidden, gnn_layers
        Width and depth of the GCN (the embedding has ``gnn_hidden`` features).
    decoder_hidden, decoder_layers
        Width and depth of the velocity MLP.
    knn
        Neighbours per point of the kNN graph.
    time_features, fourier_features, fourier_scale
        Size of the time embedding, number of random frequencies, their scale.
    skip_connections
        Residual velocity MLP (``GlobalGNN``'s default; ``letters_mfm.yaml`` turns it off).
    generator
        Draws ``B``.
    """

    def __init__(
        self,
        dim: int = 2,
        *,
        gnn_hidden: int = 64,
        gnn_layers: int = 3,
        decoder_hidden: int = 512,
        decoder_layers: int = 4,
        knn: int = 50,
        time_features: int = 128,
        fourier_features: int = 128,
        fourier_scale: float = 0.01,
        skip_connections: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.dim, self.knn, self.time_features = dim, knn, time_features
        sizes = [dim] + [gnn_hidden] * gnn_layers
        self.gcn_convs = nn.ModuleList(
            GCNConv(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        n_in = gnn_hidden + time_features + 2 * fourier_features + dim
        make = SkipMLP if skip_connections else plain_mlp
        self.decoder = make(n_in, dim, decoder_hidden, decoder_layers)
        frequencies = torch.randn(dim, fourier_features, generator=generator) * fourier_scale
        self.register_buffer("B", frequencies)

    def embed_source(self, x: Tensor) -> Tensor:
        """Embeddings ``(B, h)`` of populations ``(B, n, d)``, or ``(1, h)`` of one ``(n, d)``.

        One kNN graph per population on the CPU, each moved to ``x``'s device, then merged
        with ``Batch.from_data_list``, as the reference does at every GCN step.
        """
        if x.ndim == 3:
            edges = [knn_edge_index(xi.detach().cpu().numpy(), self.knn) for xi in x]
            graphs = [Data(x=xi, edge_index=e.to(x.device)) for xi, e in zip(x, edges, strict=True)]
            batch = Batch.from_data_list(graphs)
            z, edge_index = batch.x, batch.edge_index
        else:
            z = x
            edge_index = knn_edge_index(x.detach().cpu().numpy(), self.knn).to(x.device)
        for conv in self.gcn_convs[:-1]:
            z = F.relu(conv(z, edge_index))
        z = self.gcn_convs[-1](z, edge_index)
        if x.ndim == 3:
            z = z.view(x.shape[0], x.shape[1], -1).mean(dim=1)
            return z / torch.norm(z, dim=1, keepdim=True)
        z = z.mean(dim=0, keepdim=True)
        return z / torch.norm(z)

    def time_embedding(self, t: Tensor) -> Tensor:
        """``(N, time_features)`` sin/cos features of times ``(N,)`` (frequencies built on CPU)."""
        half = self.time_features // 2
        scale = torch.tensor(math.log(10_000) / (half - 1))
        frequencies = torch.exp(torch.arange(half) * -scale).to(t)
        angles = t[:, None] * frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    def flow(self, embedding: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """Velocity ``(N, d)`` at ``y (N, d)``, times ``t (N,)``, embeddings ``(N or 1, h)``."""
        time = self.time_embedding(t).expand(*y.shape[:-1], -1)
        angles = 2.0 * torch.pi * y[:, : self.dim] @ self.B
        fourier = torch.cat((angles.cos(), angles.sin()), dim=-1)
        embedding = embedding.expand(y.shape[0], -1)
        return self.decoder(torch.cat((embedding, time, fourier, y), dim=-1))
