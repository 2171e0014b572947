"""`benchmarks/bcrxl_table.py`: the summary of saved scores (no training, no data file needed)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bcrxl_table(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bcrxl_table

    return bcrxl_table


def _scores(bcrxl_table) -> pd.DataFrame:
    """2 seeds x 2 populations x 3 methods with known values; floors per population."""
    rows = []
    energy = {"identity": [1.0, 1.0], "FM": [0.3, 0.1], "MFM": [0.2, 0.2]}
    for seed in (0, 1):
        for i, population in enumerate(["a", "b"]):
            for method, values in energy.items():
                row = {m: float(seed) for m in bcrxl_table.METRICS}
                row |= {f"{m}_floor": 0.5 + i for m in bcrxl_table.METRICS}
                row |= {"method": method, "seed": seed, "population": population}
                row["energy"] = values[i] + 0.1 * seed
                rows.append(row)
    return pd.DataFrame(rows)


def test_summary_means_floor_and_win_share(bcrxl_table):
    table = bcrxl_table.summarise(_scores(bcrxl_table))
    assert list(table.index) == ["identity", "FM", "MFM", "noise floor"]
    # per-seed means 0.2 (seed 0) and 0.3 (seed 1) for MFM: mean 0.25, std 0.07071
    assert table.loc["MFM", "energy"] == "0.25 ± 0.071"
    assert table.loc["noise floor", "energy"] == "1"  # mean of the floors 0.5 and 1.5
    # MFM beats FM on population a (0.2 < 0.3), not on b (0.2 > 0.1), in both seeds
    assert table.loc["FM", "MFM better (energy)"] == "50%"
    assert table.loc["identity", "MFM better (energy)"] == "100%"
    assert table.loc["MFM", "MFM better (energy)"] == ""
    assert np.all(table.loc["noise floor"] != "nan")
