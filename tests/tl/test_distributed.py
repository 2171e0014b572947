"""DDP through torchrun: two CPU ranks (gloo) train one model with averaged gradients."""

import json
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd, anndata as ad, torch
    import mfm
    from mfm.data import PopulationPairs

    drawn = []  # the populations this rank draws cells of, step by step
    sample = PopulationPairs.sample
    def record(self, chosen, *args, **kwargs):
        drawn.append(sorted(map(int, chosen)))
        return sample(self, chosen, *args, **kwargs)
    PopulationPairs.sample = record

    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    rng = np.random.default_rng(0)
    n = 40
    rows = [(p, c) for p in ("P0", "P1", "P2") for c in ("control", "drug") for _ in range(n)]
    obs = pd.DataFrame(rows, columns=["patient", "treatment"])
    obs.index = [f"c{i}" for i in range(len(rows))]
    x = rng.normal(size=(len(rows), 3)).astype(np.float32)
    x[obs["treatment"].to_numpy() == "drug", 0] += 2.0
    adata = ad.AnnData(x, obs=obs)
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment",
                       control="control", min_cells=10)
    model = mfm.tl.fit(adata, method="mfm", knn=3, max_steps=6, cells_per_population=16,
                       batch_populations=2, hidden=16, n_layers=2, device="cpu", progress=False,
                       val_fraction=0)  # no validation draws among the recorded ones
    model.save(f"{sys.argv[1]}/rank{rank}")
    with open(f"{sys.argv[1]}/drawn{rank}.json", "w") as file:
        json.dump(drawn, file)
    torch.distributed.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_ranks_stay_in_sync(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
        f"--master-port={_free_port()}", str(script), str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    import mfm

    ranks = [mfm.tl.load(tmp_path / f"rank{r}", device="cpu") for r in (0, 1)]
    first, second = (m.module.state_dict() for m in ranks)
    # the ranks drew different populations (6 steps of 2 of the 3 treated ones) ...
    drawn = [json.loads((tmp_path / f"drawn{r}.json").read_text()) for r in (0, 1)]
    assert [len(d) for d in drawn] == [6, 6]
    assert {p for d in drawn for b in d for p in b} <= {1, 3, 5}  # treated populations only
    assert any(a != b for a, b in zip(*drawn, strict=True))
    # ... yet DDP averaged their gradients: same weights
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=1e-6)
    # and training moved them away from the (shared) initialisation
    fresh = mfm.tl.MetaFlowModel(ranks[0].config, ranks[0].features, device="cpu")
    moved = [not torch.equal(fresh.module.state_dict()[k], first[k]) for k in first]
    assert any(moved)
