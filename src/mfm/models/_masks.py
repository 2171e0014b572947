"""Padding masks of point-cloud batches, checked in one place."""

from __future__ import annotations

import torch
from torch import Tensor


def check_mask(x: Tensor, mask: Tensor | None) -> None:
    """Raise a `ValueError` unless ``mask`` is None or a bool ``(B, n)`` of ``x (B, n, d)``."""
    if mask is not None and (mask.dtype != torch.bool or mask.shape != x.shape[:2]):
        expected, got = tuple(x.shape[:2]), f"{mask.dtype} {tuple(mask.shape)}"
        msg = f"`mask` must be a bool tensor of shape {expected}, got {got}."
        raise ValueError(msg)


def resolve_mask(x: Tensor, mask: Tensor | None) -> Tensor:
    """Checked ``(B, n)`` mask of ``x (B, n, d)``; all True (no padding) when ``mask`` is None."""
    check_mask(x, mask)
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return mask
