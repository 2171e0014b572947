"""Activation functions by name, shared by every module that takes ``activation=``."""

from __future__ import annotations

from torch import nn

from .._checks import check_choice

#: Accepted activation names and the `torch.nn` module each one builds.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


def make_activation(name: str) -> nn.Module:
    """Build the activation module called ``name``.

    Parameters
    ----------
    name
        One of ``"relu"``, ``"silu"``, ``"selu"``, ``"gelu"``, ``"tanh"``.

    Returns
    -------
    A fresh (parameter-free) `torch.nn.Module`.
    """
    check_choice("activation", name, list(ACTIVATIONS))
    return ACTIVATIONS[name]()
