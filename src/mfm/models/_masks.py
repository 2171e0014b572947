"""Padding masks of point-cloud batches: re-exported from the neutral :mod:`mfm._masks`."""

from __future__ import annotations

from .._masks import check_mask, resolve_mask

__all__ = ["check_mask", "resolve_mask"]
