"""Random states, devices and training options: numpy and torch only.

`mfm.data`, `mfm.metrics` and `mfm.datasets` import this module; AnnData helpers live in
`mfm._anndata`.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import torch

from ._checks import check_number, check_positive_int, check_seed

RandomState: TypeAlias = int | np.random.Generator | None
Device: TypeAlias = Literal["auto", "cpu", "cuda"] | str | torch.device


def as_numpy_rng(random_state: RandomState) -> np.random.Generator:
    """Turn ``random_state`` into a `numpy.random.Generator` (never the global RNG)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def as_torch_generator(
    random_state: RandomState, device: torch.device | str = "cpu"
) -> torch.Generator:
    """Turn ``random_state`` into a seeded `torch.Generator` on ``device``."""
    if isinstance(random_state, int | np.integer):  # np.int64(3) seeds as 3 does
        seed = int(random_state)
    else:
        seed = as_numpy_rng(random_state).integers(2**62)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def resolve_device(device: Device) -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; check that the device exists.

    Raises
    ------
    ValueError
        For a name torch does not know (e.g. ``"gpu"``).
    RuntimeError
        For ``"cuda"`` when no GPU is visible to torch.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        msg = f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r} ({error})."
        raise ValueError(msg) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = (
            f"`device={device!r}` asks for a GPU, but no GPU is visible to torch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Install a "
            "CUDA build of torch (`pip install torch`) on a machine with an NVIDIA GPU and "
            'driver, or pass `device="cpu"` (or "auto").'
        )
        raise RuntimeError(msg)
    return resolved


def check_training_options(
    *, lr: float, val_every: int, random_state: int, device: Device
) -> torch.device:
    """Check the options every training verb shares; return the resolved device.

    Parameters
    ----------
    lr
        Peak learning rate: a finite number > 0.
    val_every
        Steps between history rows: an integer >= 1.
    random_state
        Integer seed >= 0.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` (a GPU must be visible) or a `torch.device`.

    Returns
    -------
    The device training will use.
    """
    check_number("lr", lr)
    check_positive_int("val_every", val_every)
    check_seed("random_state", random_state)
    return resolve_device(device)
