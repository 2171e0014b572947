"""Data sets: synthetic generators and loaders of the real files (no downloads)."""

from ._letters import letters
from ._organoid import organoid_screen
from ._real import bodenmiller_bcrxl, moffitt_hypothalamus
from ._tissue import simulated_tissue

__all__ = [
    "bodenmiller_bcrxl",
    "letters",
    "moffitt_hypothalamus",
    "organoid_screen",
    "simulated_tissue",
]
