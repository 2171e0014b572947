import math

import pytest
import torch

from mfm.models import GCNEncoder, GCNLayer, gcn_graph, knn_graph
from mfm.models._activations import make_activation


def _identity_layer(features: int) -> GCNLayer:
    layer = GCNLayer(features, features)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.eye(features))
    return layer


def _dense_gcn(layer: GCNLayer, x: torch.Tensor, neighbors: torch.Tensor, symmetric: bool):
    """Reference: D^-1/2 (A + I) D^-1/2 X W + b with a dense (B, n, n) adjacency."""
    batch, n, _ = neighbors.shape
    adjacency = torch.zeros(batch, n, n, dtype=x.dtype)
    for b in range(batch):
        for i in range(n):
            for j in neighbors[b, i].tolist():
                if j >= 0 and j != i:
                    adjacency[b, i, j] += 1.0  # edge j -> i: row i aggregates column j
    if symmetric:  # union of both directions, each edge once
        adjacency = ((adjacency + adjacency.transpose(1, 2)) > 0).to(x.dtype)
    a_hat = adjacency + torch.eye(n, dtype=x.dtype)
    inv_sqrt = a_hat.sum(-1).rsqrt()
    norm = inv_sqrt[:, :, None] * a_hat * inv_sqrt[:, None, :]
    return norm @ layer.linear(x) + layer.bias


def test_hand_drawn_directed_graph():
    # edges 1->0, 0->1, 1->2, 1->3: every node has in-degree 1, so out_i = (x_i + x_j) / 2
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [4.0, 4.0], [-2.0, 6.0]]])
    neighbors = torch.tensor([[[1], [0], [1], [1]]])
    out = _identity_layer(2)(x, neighbors)
    expected = torch.tensor([[[0.5, 1.0], [0.5, 1.0], [2.0, 3.0], [-1.0, 4.0]]])
    torch.testing.assert_close(out, expected)


def test_hand_drawn_symmetric_graph():
    # undirected star {0-1, 1-2, 1-3}: degrees (with self loop) 2, 4, 2, 2
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    neighbors = torch.tensor([[[1], [0], [1], [1]]])
    out = _identity_layer(1)(x, neighbors, symmetric_graph=True)
    r8 = math.sqrt(8.0)
    expected = torch.tensor(
        [[[1 / 2 + 2 / r8], [2 / 4 + (1 + 3 + 4) / r8], [3 / 2 + 2 / r8], [4 / 2 + 2 / r8]]]
    )
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("symmetric", [False, True])
def test_layer_equals_dense_reference(symmetric):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 12, 4, generator=generator, dtype=torch.float64)
    neighbors = knn_graph(x, 3)
    torch.manual_seed(0)
    layer = GCNLayer(4, 5).double()
    with torch.no_grad():
        layer.bias.normal_()
    out = layer(x, neighbors, symmetric_graph=symmetric)
    torch.testing.assert_close(out, _dense_gcn(layer, x, neighbors, symmetric))


@pytest.mark.parametrize("symmetric", [False, True])
def test_layer_random_graph_with_padding_and_self_loops(symmetric):
    # arbitrary neighbour lists: self references, -1 padding, repeated entries (directed:
    # a repeated neighbour is a repeated edge, as in PyG; symmetric: each edge once)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 9, 3, generator=generator, dtype=torch.float64)
    neighbors = torch.randint(-1, 9, (2, 9, 4), generator=generator)
    neighbors[..., 0] = torch.arange(9)  # self references are dropped (self loop added once)
    torch.manual_seed(1)
    layer = GCNLayer(3, 2, bias=False).double()
    layer.bias = torch.zeros(2, dtype=torch.float64)  # for the reference only
    out = layer(x, neighbors, symmetric_graph=symmetric)
    torch.testing.assert_close(out, _dense_gcn(layer, x, neighbors, symmetric))


def test_graph_is_flat_edge_list():
    neighbors = knn_graph(torch.randn(2, 50, 3), 4)
    graph = gcn_graph(neighbors)
    assert graph.source.shape == (2 * 50 * 4,)
    torch.testing.assert_close(graph.self_weight, torch.full((100,), 1 / 5))


def test_layer_bad_neighbors_raise():
    with pytest.raises(ValueError, match="neighbors"):
        GCNLayer(3, 2)(torch.randn(2, 5, 3), torch.zeros(2, 4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="n=5"):
        GCNLayer(3, 2)(torch.randn(2, 5, 3), torch.full((2, 5, 1), 5))
    with pytest.raises(ValueError, match="long"):
        GCNLayer(3, 2)(torch.randn(2, 5, 3), torch.zeros(2, 5, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_encoder_on_cuda_matches_cpu():
    x = torch.randn(2, 300, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.manual_seed(0)
    encoder = GCNEncoder(4, knn=5, symmetric_graph=True).double()
    expected = encoder(x)
    out = encoder.cuda()(x.cuda())
    torch.testing.assert_close(out.cpu(), expected)


def test_encoder_shape_and_unit_norm():
    encoder = GCNEncoder(6, hidden=16, out_features=8, knn=4)
    out = encoder(torch.randn(3, 30, 6))
    assert out.shape == (3, 8)
    assert encoder.out_features == 8
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))


def test_encoder_defaults_out_features_to_hidden():
    encoder = GCNEncoder(6, hidden=16, normalize=False, n_layers=1)
    assert encoder.out_features == 16
    assert encoder(torch.randn(2, 20, 6)).shape == (2, 16)


@pytest.mark.parametrize("symmetric", [False, True])
def test_encoder_permutation_invariant(symmetric):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 40, 5, generator=generator)
    torch.manual_seed(0)
    encoder = GCNEncoder(5, knn=6, normalize=False, symmetric_graph=symmetric)
    permuted = x[:, torch.randperm(40, generator=generator)]
    torch.testing.assert_close(encoder(permuted), encoder(x), atol=1e-5, rtol=1e-5)


def test_encoder_knn_zero_is_pointwise_mlp_and_mean():
    x = torch.randn(2, 15, 3, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    encoder = GCNEncoder(3, hidden=8, n_layers=3, knn=0, activation="tanh")
    with torch.no_grad():
        for layer in encoder.layers:
            layer.bias.normal_()
    h = x
    for i, layer in enumerate(encoder.layers):
        h = h @ layer.linear.weight.T + layer.bias
        h = torch.tanh(h) if i < 2 else h
    expected = torch.nn.functional.normalize(h.mean(dim=1), dim=-1)
    torch.testing.assert_close(encoder(x), expected)


def test_encoder_mask_equals_unpadded_clouds():
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2, 20, 3, generator=generator)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 12:] = False
    x[1, 12:] = 1e3  # padding values must not matter
    torch.manual_seed(0)
    encoder = GCNEncoder(3, knn=4, symmetric_graph=True)
    out = encoder(x, mask=mask)
    torch.testing.assert_close(out[0], encoder(x[:1])[0])
    torch.testing.assert_close(out[1], encoder(x[1:, :12])[0])


def test_encoder_gradients_reach_all_layers():
    encoder = GCNEncoder(3, hidden=8, knn=3)
    encoder(torch.randn(2, 10, 3)).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_encoder_bad_activation_raises():
    with pytest.raises(ValueError, match="activation.*relu"):
        GCNEncoder(3, activation="swish")
    with pytest.raises(ValueError, match="activation"):
        make_activation("ReLU")


def test_encoder_too_few_points_raises():
    with pytest.raises(ValueError, match="k=10"):
        GCNEncoder(3, knn=10)(torch.randn(1, 10, 3))
