"""Every tutorial notebook runs top to bottom, in a temporary folder, without an error.

The notebooks are executed with nbclient in an ipykernel of the Python running the tests (a
kernel spec written for the test names ``sys.executable``), so they use the same ``mfm``.
Notebooks that read real data (``mfm.datasets.bodenmiller_bcrxl``, ``moffitt_hypothalamus``)
skip without ``MFM_DATA_DIR``.
The stored outputs are not compared (they are the documentation's); only errors fail.
"""

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: Loaders of real data: a notebook calling one needs ``MFM_DATA_DIR``.
REAL_DATA = ("bodenmiller_bcrxl", "moffitt_hypothalamus")
#: Name of the kernel spec the test writes (this interpreter's ipykernel).
KERNEL = "mfm-tutorial-test"
#: Seconds one cell may take (a whole notebook runs in a few minutes on 2 CPU cores).
CELL_TIMEOUT = 600


def needs_real_data(notebook) -> bool:
    return any(
        name in cell.source
        for cell in notebook.cells
        if cell.cell_type == "code"
        for name in REAL_DATA
    )


def test_there_are_tutorials():
    names = [path.name for path in NOTEBOOKS]
    assert names[:1] == ["01_organoid_screen.ipynb"] and len(names) >= 4, names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    if needs_real_data(notebook) and not os.environ.get("MFM_DATA_DIR"):
        pytest.skip("needs real data: set MFM_DATA_DIR")
    # a kernel of this interpreter, found first on JUPYTER_PATH; the kernel inherits the
    # environment (PYTHONPATH, MFM_DATA_DIR)
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    if os.environ.get("MFM_DATA_DIR"):  # the kernel runs in a temporary folder: no relative path
        monkeypatch.setenv("MFM_DATA_DIR", str(Path(os.environ["MFM_DATA_DIR"]).resolve()))
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(workdir)}},  # the working folder of the kernel
    )
    client.execute()  # raises CellExecutionError, with the cell and the traceback, on an error
    assert not [p for p in TUTORIALS.iterdir() if p.suffix not in {".ipynb", ".md"}], (
        "a tutorial wrote into tutorials/"
    )
