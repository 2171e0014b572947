"""`mfm fit` / `mfm predict` on an h5ad file, in one process and with torchrun (2 CPU ranks)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import torch

import mfm
from mfm.__main__ import main
from mfm._cli import _parameter_docs, _value_parser

POPULATIONS = ["--sample-key", "patient", "--condition-key", "treatment", "--control", "control"]
SPLIT = ["--split-by", "patient", "--test", "P2", "--val", "P1"]
TINY = {
    "max_steps": 12, "hidden": 16, "n_layers": 2, "gcn_hidden": 8, "gcn_layers": 2,
    "embedding_dim": 4, "knn": 3, "cells_per_population": 16, "batch_populations": 2,
    "val_every": 4, "device": "cpu",
}  # fmt: skip


def _flags(options: dict) -> list[str]:
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


@pytest.fixture
def data(tmp_path, make) -> Path:
    path = tmp_path / "data.h5ad"
    make(n_cells=60).write_h5ad(path)
    return path


def test_fit_and_predict_commands_match_the_functions(data, tmp_path):
    main(["fit", str(data), *POPULATIONS, *SPLIT, "--out", str(tmp_path / "model"), *_flags(TINY)])
    main(["predict", str(data), str(tmp_path / "model"), "--out", str(tmp_path / "pred.h5ad"),
          "--split-by", "patient", "--test", "P2", "--solver", "euler",
          "--n-steps", "3", "--backed"])  # fmt: skip
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    written = ad.read_h5ad(tmp_path / "pred.h5ad")

    adata = ad.read_h5ad(data)
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    model = mfm.tl.fit(adata, **TINY, progress=False)
    for name, value in model.module.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[name], value, rtol=0, atol=0)
    pred = mfm.tl.predict(adata, model, populations=["P2|drugA", "P2|drugB"], solver="euler",
                          n_steps=3)  # fmt: skip
    np.testing.assert_array_equal(written.X, pred.X)
    assert written.obs["mfm_population"].astype(str).unique().tolist() == ["P2|drugA", "P2|drugB"]


def test_fit_command_passes_options_through(data, tmp_path):
    out = tmp_path / "model"
    options = {**TINY, "method": "cgfm", "lr": "1e-3", "early_stopping": "none"}
    main(["fit", str(data), *POPULATIONS, "--out", str(out), *_flags(options),
          "--no-restore-best"])  # fmt: skip
    assert mfm.tl.load(out, device="cpu").config.method == "cgfm"
    with pytest.raises(SystemExit):
        main(["fit", str(data), *POPULATIONS, "--out", str(out), "--max-steps", "many"])


def test_option_parsing():
    assert _value_parser("int | None", None)("none") is None
    assert _value_parser("int | None", None)("7") == 7
    assert _value_parser("float | Literal['auto']", "auto")("auto") == "auto"
    assert _value_parser("float | Literal['auto']", "auto")("1e-3") == 1e-3
    assert _value_parser("float", 0.5)("2") == 2.0
    assert _value_parser("str | Path | None", None)("ckpt") == "ckpt"
    with pytest.raises(Exception, match="expected int"):
        _value_parser("int", 3)("3.5")
    docs = _parameter_docs(mfm.tl.fit.__doc__)
    assert docs["max_steps"] == "Training steps"
    assert "Returns" not in docs and "adata" in docs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_torchrun_fit_with_two_ranks(data, tmp_path):
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
        f"--master-port={_free_port()}", "-m", "mfm", "fit", str(data), *POPULATIONS, *SPLIT,
        "--out", str(out), *_flags(TINY),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 of 2 on cpu" in done.stderr and "rank 1 of 2 on cpu" in done.stderr
    model = mfm.tl.load(out, device="cpu")  # written once, by rank 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5ad", "model"]
    fresh = mfm.tl.MetaFlowModel(model.config, model.features, device="cpu")
    state = model.module.state_dict()
    assert any(not torch.equal(fresh.module.state_dict()[k], state[k]) for k in state)
    # two ranks average the gradients of different batches: not the one-process model
    main(["fit", str(data), *POPULATIONS, *SPLIT, "--out", str(tmp_path / "one"), *_flags(TINY)])
    one = mfm.tl.load(tmp_path / "one", device="cpu").module.state_dict()
    assert any(not torch.equal(one[k], state[k]) for k in state)
