"""Label dropout and classifier-free guidance, shared by the niche velocity networks."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor, nn

from .._checks import check_positive_int

#: A velocity: one tensor (point clouds) or a tuple of tensors (a Gaussian's ``(v_m, S_v)``).
Velocity = TypeVar("Velocity", Tensor, tuple[Tensor, ...])


class GuidedVelocity(nn.Module):
    r"""Base of velocity networks conditioned on a label with a null label for guidance.

    Labels are ``0 .. n_conditions - 1``; the null label ``n_conditions`` stands for "no
    label". In training mode, :meth:`drop_labels` replaces each label by the null label with
    probability ``cfg_dropout``, so one network learns the conditional and the unconditional
    velocity; :meth:`guide` combines them at generation (classifier-free guidance):

    .. math:: v_w = (1 + w)\, v(\cdot \mid c) - w\, v(\cdot \mid \varnothing)

    Parameters
    ----------
    n_conditions
        Number of labels; ``0`` for an unconditional velocity.
    cfg_dropout
        Probability of replacing a label by the null label in training mode.
    """

    def __init__(self, n_conditions: int, cfg_dropout: float) -> None:
        super().__init__()
        check_positive_int("n_conditions", n_conditions, minimum=0)
        if not 0.0 <= cfg_dropout <= 1.0:
            msg = f"`cfg_dropout` must be a probability in [0, 1], got {cfg_dropout!r}."
            raise ValueError(msg)
        self.n_conditions, self.cfg_dropout = n_conditions, cfg_dropout

    @property
    def null_label(self) -> int:
        """Index of the null (unconditional) label, equal to ``n_conditions``."""
        return self.n_conditions

    def drop_labels(
        self, labels: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """In training mode, replace each label by the null label with probability ``cfg_dropout``.

        Parameters
        ----------
        labels
            ``(B,)`` integer labels, or ``None``.
        generator
            Torch generator of the dropout (``None``: torch's default generator, as
            ``nn.Dropout``).

        Returns
        -------
        The labels (unchanged in eval mode, without dropout or without labels).
        """
        if labels is None or not self.training or self.cfg_dropout <= 0:
            return labels
        drop = torch.rand(labels.shape, generator=generator, device=labels.device)
        return torch.where(drop < self.cfg_dropout, self.null_label, labels)

    @staticmethod
    def guide(conditional: Velocity, unconditional: Velocity, guidance_scale: float) -> Velocity:
        r"""Classifier-free guidance :math:`(1 + w) v_c - w v_\varnothing` of one or more tensors.

        Parameters
        ----------
        conditional
            Velocity given the labels: a tensor or a tuple of tensors.
        unconditional
            Velocity given the null label, of the same structure.
        guidance_scale
            ``w``; 0 gives the conditional velocity.

        Returns
        -------
        The guided velocity, of the same structure.
        """
        w = guidance_scale
        if isinstance(conditional, Tensor):
            return (1 + w) * conditional - w * unconditional
        return tuple((1 + w) * c - w * u for c, u in zip(conditional, unconditional, strict=True))
