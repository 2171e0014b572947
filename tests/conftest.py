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
