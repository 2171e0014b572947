"""Torch modules: kNN graphs, GCN population encoder, time embedding, velocity MLP."""

from .conditioners import GCNConditioner, NullConditioner, OneHotConditioner
from .embedding import SinusoidalTimeEmbedding
from .gaussian_velocity import GaussianVelocity
from .gcn import GCNEncoder, GCNGraph, GCNLayer, gcn_graph
from .knn import knn_graph
from .meta_flow import MetaFlowNet
from .mlp import VelocityMLP
from .set_transformer import SetTransformerVelocity

__all__ = [
    "GCNConditioner",
    "MetaFlowNet",
    "NullConditioner",
    "OneHotConditioner",
    "GCNEncoder",
    "GCNGraph",
    "GCNLayer",
    "GaussianVelocity",
    "SinusoidalTimeEmbedding",
    "VelocityMLP",
    "gcn_graph",
    "knn_graph",
    "SetTransformerVelocity",
]
