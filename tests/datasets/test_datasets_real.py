import numpy as np
import pytest

from mfm.datasets import bodenmiller_bcrxl, moffitt_hypothalamus


def test_bodenmiller_bcrxl(data_dir):
    adata = bodenmiller_bcrxl(data_dir)
    assert adata.shape == (23926, 24)
    assert {"patient_id", "condition", "sample_id"} <= set(adata.obs.columns)
    assert sorted(adata.obs["patient_id"].unique()) == [f"Patient{i}" for i in range(1, 9)]
    assert set(adata.obs["condition"]) == {"Ref", "BCRXL"}
    assert adata.var["marker_class"].value_counts().to_dict() == {"state": 14, "type": 10}
    np.testing.assert_allclose(
        adata.layers["arcsinh5"], np.arcsinh(np.asarray(adata.X) / 5), rtol=1e-5, atol=1e-5
    )
    sizes = adata.obs.groupby(["patient_id", "condition"], observed=True).size()
    assert sizes.min() >= 700 and sizes.max() <= 2500


def test_moffitt_hypothalamus(data_dir):
    adata = moffitt_hypothalamus(str(data_dir))
    assert adata.shape == (11162, 161)
    assert adata.obsm["spatial"].shape == (11162, 2)
    assert adata.obs["Cell_class"].nunique() == 16
    assert sorted(adata.obs["z"].unique()) == pytest.approx([0.21, 0.26])


def test_environment_variable_locates_files(data_dir, monkeypatch):
    monkeypatch.setenv("MFM_DATA_DIR", str(data_dir))
    assert bodenmiller_bcrxl().n_obs == 23926


@pytest.mark.parametrize(
    ("loader", "filename"),
    [
        (bodenmiller_bcrxl, "bodenmiller2012_bcrxl.h5ad"),
        (moffitt_hypothalamus, "moffitt2018_hypothalamus_merfish.h5ad"),
    ],
)
def test_missing_file_names_file_and_variable(tmp_path, monkeypatch, loader, filename):
    with pytest.raises(FileNotFoundError, match=filename) as info:
        loader(tmp_path)
    assert "MFM_DATA_DIR" in str(info.value)
    monkeypatch.delenv("MFM_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="MFM_DATA_DIR"):
        loader()
    monkeypatch.setenv("MFM_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=filename):
        loader()
