"""Graph convolutions (Kipf & Welling) on kNN graphs and the GCN population encoder."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int
from ._activations import make_activation
from .knn import knn_graph


@dataclass(frozen=True)
class GCNGraph:
    r"""Symmetrically normalised edge list of ``B`` graphs of ``n`` nodes, flattened.

    Node ``i`` of graph ``b`` has the flat index ``b * n + i``. Self loops are kept apart
    (``self_weight``) so that the edge list holds only the ``E`` graph edges.

    Attributes
    ----------
    source
        ``(E,)`` long, flat index of the node each edge comes from (``j``).
    target
        ``(E,)`` long, flat index of the node each edge points to (``i``).
    weight
        ``(E,)`` float, :math:`\deg_i^{-1/2} \deg_j^{-1/2}`.
    self_weight
        ``(B * n,)`` float, :math:`\deg_i^{-1}`, the weight of each node's self loop.
    operator
        The normalised :math:`\hat D^{-1/2} (A + I) \hat D^{-1/2}` itself, self loops
        included: dense ``(B, n, n)`` for small graphs (a batched matmul is ~10x faster on
        CPU than scattering edges, see ``benchmarks/gcn_aggregation.py``), else a sparse
        block-diagonal ``(B * n, B * n)`` COO matrix (memory :math:`O(B n k)`).
    """

    source: Tensor
    target: Tensor
    weight: Tensor
    self_weight: Tensor
    operator: Tensor

    def apply(self, h: Tensor) -> Tensor:
        """Multiply node features ``h (B, n, f)`` by the normalised adjacency."""
        if not self.operator.is_sparse:
            return torch.bmm(self.operator, h)
        n_batch, n, f = h.shape
        return torch.sparse.mm(self.operator, h.reshape(n_batch * n, f)).reshape(n_batch, n, f)


#: Graphs with at most this many nodes use a dense normalised adjacency.
DENSE_MAX_NODES = 2048


def gcn_graph(
    neighbors: Tensor, *, symmetric: bool = False, dtype: torch.dtype = torch.float32
) -> GCNGraph:
    r"""Normalised GCN graph of kNN neighbour lists, with directed edges ``j -> i``.

    Edge ``j -> i`` exists for every ``j`` in ``neighbors[b, i]`` (PyTorch Geometric's
    ``knn_graph(flow="source_to_target")``). Like ``GCNConv``, self loops are added,
    :math:`\deg_i = 1 + \#\{\text{edges into } i\}` and an edge is weighted
    :math:`\deg_i^{-1/2} \deg_j^{-1/2}`. Negative entries (padding) and self references are
    dropped.

    Parameters
    ----------
    neighbors
        ``(B, n, k)`` long neighbour indices, as returned by `knn_graph`.
    symmetric
        Use the union of ``j -> i`` and ``i -> j`` (each edge once) instead of the directed graph.
    dtype
        Floating point type of the weights (that of the features).

    Returns
    -------
    The flattened `GCNGraph` on the device of ``neighbors``.
    """
    if neighbors.ndim != 3 or neighbors.dtype != torch.long:
        got = f"{neighbors.dtype} {tuple(neighbors.shape)}"
        msg = f"`neighbors` must be a long tensor (B, n, k), got {got}."
        raise ValueError(msg)
    n_batch, n, _ = neighbors.shape
    if neighbors.numel() and int(neighbors.max()) >= n:
        # a flat index past node n - 1 would silently land in the next graph of the batch
        msg = f"`neighbors` holds index {int(neighbors.max())}; graphs have n={n} nodes."
        raise ValueError(msg)
    n_nodes = n_batch * n
    nodes = torch.arange(n_nodes, device=neighbors.device).view(n_batch, n, 1)
    offsets = nodes[:, :1]  # b * n, the flat index of node 0 of graph b
    valid = (neighbors >= 0) & (neighbors + offsets != nodes)
    source = (neighbors + offsets)[valid]
    target = nodes.expand_as(neighbors)[valid]
    if symmetric:
        # one key per edge: unique() keeps each undirected pair once in each direction
        keys = torch.cat([target * n_nodes + source, source * n_nodes + target]).unique()
        target, source = keys.div(n_nodes, rounding_mode="floor"), keys.remainder(n_nodes)
    degree = torch.ones(n_nodes, dtype=dtype, device=neighbors.device)
    degree.index_add_(0, target, torch.ones_like(target, dtype=dtype))
    inv_sqrt = degree.rsqrt()
    weight, self_weight = inv_sqrt[target] * inv_sqrt[source], degree.reciprocal()
    operator = _operator(source, target, weight, self_weight, n_batch, n)
    return GCNGraph(source, target, weight, self_weight, operator)


def _operator(
    source: Tensor, target: Tensor, weight: Tensor, self_weight: Tensor, n_batch: int, n: int
) -> Tensor:
    """The normalised adjacency with self loops, dense per graph or sparse block-diagonal."""
    nodes = torch.arange(n_batch * n, device=source.device)
    rows, cols = torch.cat([target, nodes]), torch.cat([source, nodes])
    values = torch.cat([weight, self_weight])
    if n <= DENSE_MAX_NODES:
        dense = torch.zeros(n_batch * n * n, dtype=values.dtype, device=values.device)
        # flat index of (graph b, row i, col j) is b n^2 + i n + j with rows = b n + i
        dense.index_put_((rows * n + cols.remainder(n),), values, accumulate=True)
        return dense.view(n_batch, n, n)
    size = (n_batch * n, n_batch * n)
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, size).coalesce()


class GCNLayer(nn.Module):
    r"""Graph convolution of Kipf & Welling (2017) on a kNN graph.

    .. math::
        \mathrm{out} = \hat D^{-1/2} (A + I) \hat D^{-1/2} X W + b,
        \qquad A_{ij} = 1 \text{ if } j \in \mathrm{neighbors}[i],

    with :math:`\hat D` the in-degree (plus one) computed on the target node, i.e. PyTorch
    Geometric's ``GCNConv`` applied to ``knn_graph(flow="source_to_target")``. Aggregation uses a
    dense batched matmul for graphs up to ``DENSE_MAX_NODES`` nodes, a sparse one above.

    Parameters
    ----------
    in_features
        Input feature size ``f``.
    out_features
        Output feature size.
    bias
        Add a learnable bias ``b`` (initialised to zero) after aggregation.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: Tensor, neighbors: Tensor, *, symmetric_graph: bool = False) -> Tensor:
        """Convolve ``x`` over the graph given by ``neighbors``.

        Parameters
        ----------
        x
            Node features ``(B, n, f)``.
        neighbors
            ``(B, n, k)`` long: edges ``neighbors[b, i, :] -> i`` (negative entries are ignored).
        symmetric_graph
            Symmetrise the edges (union, each edge once) before normalising.

        Returns
        -------
        ``(B, n, out_features)``.
        """
        if neighbors.shape[:2] != x.shape[:2]:
            msg = f"`neighbors` {tuple(neighbors.shape)} does not match `x` {tuple(x.shape)}."
            raise ValueError(msg)
        return self.propagate(x, gcn_graph(neighbors, symmetric=symmetric_graph, dtype=x.dtype))

    def propagate(self, x: Tensor, graph: GCNGraph) -> Tensor:
        """Convolve ``x`` over a prebuilt `GCNGraph` (reuse one graph for several layers).

        Parameters
        ----------
        x
            Node features ``(B, n, f)``, with ``B * n`` the number of nodes of ``graph``.
        graph
            Normalised edge list from `gcn_graph`.

        Returns
        -------
        ``(B, n, out_features)``.
        """
        if x.ndim != 3 or x.shape[0] * x.shape[1] != graph.self_weight.shape[0]:
            n_nodes = graph.self_weight.shape[0]
            msg = f"`x` must be (B, n, f) with B * n = {n_nodes} nodes, got {tuple(x.shape)}."
            raise ValueError(msg)
        out = graph.apply(self.linear(x))
        return out if self.bias is None else out + self.bias


class GCNEncoder(nn.Module):
    r"""Permutation-invariant embedding of a point cloud (population) by a GCN on its kNN graph.

    .. math::
        h = \frac{\mathrm{pool}(H_L)}{\|\mathrm{pool}(H_L)\|},\quad
        H_{l} = \sigma(\mathrm{GCN}_l(H_{l-1})),\quad H_0 = X,

    with no activation after the last layer and mean pooling over the points. With ``knn=0``
    the graph has no edges and every layer is a per-point linear map (a per-cell MLP + mean pool).

    Parameters
    ----------
    in_features
        Dimension ``d`` of the points.
    hidden
        Width of the hidden layers.
    n_layers
        Number of GCN layers (>= 1).
    out_features
        Embedding size (default ``hidden``).
    knn
        Neighbours per point in the kNN graph (``0`` for no edges).
    normalize
        L2-normalise the pooled embedding.
    activation
        ``"relu"``, ``"silu"``, ``"selu"``, ``"gelu"`` or ``"tanh"``, between layers.
    symmetric_graph
        Symmetrise the kNN edges (union, each edge once) before normalising.
    """

    def __init__(
        self,
        in_features: int,
        *,
        hidden: int = 64,
        n_layers: int = 3,
        out_features: int | None = None,
        knn: int = 10,
        normalize: bool = True,
        activation: str = "relu",
        symmetric_graph: bool = False,
    ):
        super().__init__()
        check_positive_int("n_layers", n_layers)
        check_positive_int("knn", knn, minimum=0)
        self.in_features = in_features
        self.out_features = hidden if out_features is None else out_features
        self.knn = knn
        self.normalize = normalize
        self.symmetric_graph = symmetric_graph
        sizes = [in_features] + [hidden] * (n_layers - 1) + [self.out_features]
        self.layers = nn.ModuleList(GCNLayer(a, b) for a, b in pairwise(sizes))
        self.activation = make_activation(activation)

    def forward(self, x: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Embed each cloud of ``x``.

        Parameters
        ----------
        x
            Point clouds ``(B, n, d)``; needs ``n > knn``.
        mask
            Optional ``(B, n)`` bool, ``False`` for padding: padded points are neither
            neighbours nor pooled.

        Returns
        -------
        ``(B, out_features)`` embeddings (unit L2 norm when ``normalize``).
        """
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            msg = f"`x` must be (B, n, {self.in_features}), got {tuple(x.shape)}."
            raise ValueError(msg)
        neighbors = knn_graph(x.detach(), self.knn, mask=mask)
        graph = gcn_graph(neighbors, symmetric=self.symmetric_graph, dtype=x.dtype)
        h = x
        for i, layer in enumerate(self.layers):
            h = layer.propagate(h, graph)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        pooled = _mean_pool(h, mask)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled


def _mean_pool(h: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``h`` (B, n, f) over the (unmasked) points -> (B, f)."""
    if mask is None:
        return h.mean(dim=1)
    weights = mask.to(h.dtype)[..., None]
    return (h * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
