"""Padding masks of point-cloud batches, checked in one place (torch only).

Used by the set transformer (:mod:`mfm.models`), the point-cloud flows and the generators
(:mod:`mfm.flows`): a batch of clouds of different sizes is padded to ``(B, n, d)`` with a
``(B, n)`` bool mask, True on valid points.
"""

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


def zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` with padded points set to 0 (``torch.where``, so NaN padding does not leak)."""
    if mask is None:
        return x
    return torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
