import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder, from ``MFM_DATA_DIR``; skips when unset."""
    path = os.environ.get("MFM_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("MFM_DATA_DIR is not set to the shared data folder")
    return Path(path)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test models run fastest on one thread (and never oversubscribe a shared CPU)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
