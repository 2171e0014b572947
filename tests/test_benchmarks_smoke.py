"""Smoke tests of the speed benchmarks (``benchmarks/*.py --quick``) and the reference model."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def needs_bench(module: str) -> None:
    """Skip, with the reason, when ``module`` of the optional `bench` extra is not installed."""
    reason = f"needs {module} from the optional `bench` extra: pip install -e '.[test,bench]'"
    pytest.importorskip(module, reason=reason)


@pytest.fixture(autouse=True)
def _benchmarks_on_path(monkeypatch):
    """Scripts import ``_common``, ``ot_batch`` and ``reference`` by name, as when run."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_reference_knn_edges_match_brute_force():
    needs_bench("torch_geometric")
    from reference.model import knn_edge_index

    points = np.random.default_rng(0).normal(size=(30, 2))
    edges = knn_edge_index(points, 4).numpy()
    distance = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    expected = np.argsort(distance, axis=1)[:, :4]
    # row 1 is the centre i, row 0 its neighbours j (edges j -> i), nearest first
    assert (edges[1] == np.repeat(np.arange(30), 4)).all()
    assert (edges[0].reshape(30, 4) == expected).all()


def test_reference_gcn_equals_normalised_adjacency():
    """PyG's GCNConv on the kNN graph equals our dense normalised operator (same weights)."""
    needs_bench("torch_geometric")
    from reference.model import ReferenceGNNFlow

    from mfm.models import gcn_graph, knn_graph

    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ReferenceGNNFlow(2, gnn_hidden=8, knn=3, decoder_hidden=16, generator=generator)
    x = torch.randn(2, 12, 2, generator=generator)
    operator = gcn_graph(knn_graph(x, 3)).operator
    h = x
    for i, conv in enumerate(net.gcn_convs):
        h = operator @ conv.lin(h) + conv.bias
        h = h.relu() if i < len(net.gcn_convs) - 1 else h
    pooled = h.mean(1)
    expected = pooled / pooled.norm(dim=1, keepdim=True)
    torch.testing.assert_close(net.embed_source(x), expected, atol=1e-5, rtol=1e-5)
    velocity = net.flow(expected[:1], torch.rand(5, generator=generator), torch.randn(5, 2))
    assert velocity.shape == (5, 2)


def test_reference_trainer_alternates_optimisers():
    needs_bench("torch_geometric")
    from reference.model import ReferenceGNNFlow
    from reference.trainer import ReferenceLoader, ReferenceTrainer

    rng = np.random.default_rng(0)
    cells = [rng.normal(size=(20, 2)).astype(np.float32) for _ in range(3)]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ReferenceGNNFlow(2, gnn_hidden=8, knn=3, decoder_hidden=16)
    loader = ReferenceLoader(cells, [c + 1 for c in cells], batch_size=2, n_cells=10)
    trainer = ReferenceTrainer(net, generator=torch.Generator().manual_seed(0))
    gcn, mlp = net.gcn_convs[0].lin.weight, net.decoder.input_layer.weight
    before = gcn.detach().clone(), mlp.detach().clone()
    trainer.step(*loader())  # flow step: only the velocity MLP moves
    assert torch.equal(gcn, before[0]) and not torch.equal(mlp, before[1])
    after_flow = mlp.detach().clone()
    trainer.step(*loader())  # GCN step: only the GCN moves
    assert not torch.equal(gcn, before[0]) and torch.equal(mlp, after_flow)
    assert len(trainer.embeddings) >= 2


def test_reference_integrate_solves_linear_ode():
    from reference.solve import reference_integrate

    x0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    out = reference_integrate(lambda x, t, c: -x, x0)
    torch.testing.assert_close(out, x0 * np.exp(-1.0), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_mfm_step_quick(capsys):
    needs_bench("torch_geometric")
    import mfm_step

    mfm_step.main(["--quick", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert out.count("| ours,") == 2 and "| reference" in out and "1.00x" in out


@pytest.mark.slow
def test_predict_quick(capsys):
    import predict

    predict.main(["--quick", "--threads", "1", "--device", "cpu", "--datasets", "organoid"])
    out = capsys.readouterr().out
    assert "| reference: dopri5" in out and "ours: rk4, n=2" in out
    assert "| per population: embed + dopri5 1e-5 each" in out and "batched: midpoint, n=2" in out


@pytest.mark.slow
def test_scale_quick(capsys, tmp_path):
    import scale

    scale.main(["--cells", "5000", "--cells-per-population", "60", "--steps", "2",
                "--dir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert "wrote 4,992 cells x 40 markers (4 patients, 96 populations of 52 cells" in out
    for stage in ("read", "pp", "fit", "predict", "evaluate"):
        assert f"| {stage} |" in out
    assert "36 populations, mean W1" in out  # 2 test patients x 18 treated
    assert not list(tmp_path.glob("*.h5ad"))  # the data is deleted


@pytest.mark.slow
def test_ot_cost_quick(capsys):
    import ot_cost

    ot_cost.main(["--quick", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "| 8 x 16 x 16 |" in out and out.count("organoid |") == 2


def test_budget_clock_scores_after_every_k_steps():
    needs_bench("torch_geometric")  # letters_budget imports the reference model
    from letters_budget import Curve, _Clock, first_below

    batches = []
    clock = _Clock(2, score=lambda: 1.0 / (1 + len(batches)))
    next_batch = clock.wrap(lambda: batches.append(1) or ())
    for _ in range(5):
        next_batch()
    clock.finish(5)
    curve = clock.curve("x")
    # scored once 2 and 4 batches were trained on (before the next draw), and at the end
    assert curve.steps == [2, 4, 5]
    assert curve.w1 == [1 / 3, 1 / 5, 1 / 6]
    assert first_below(Curve("c", [2, 4], [60.0, 120.0], [0.3, 0.1]), 0.2) == "step 4 (2.0 min)"
    assert first_below(Curve("c", [2], [60.0], [0.3]), 0.2) == "not reached"


@pytest.mark.slow
def test_letters_budget_quick(capsys):
    needs_bench("torch_geometric")
    import letters_budget

    letters_budget.main(["--quick", "--threads", "1"])
    out = capsys.readouterr().out
    assert "| ours (fit defaults, 4 steps) | 4 |" in out
    assert "| reference (lr 1e-4, alternating, 4 steps) | 4 |" in out


@pytest.mark.slow
def test_letters_table_quick(capsys, tmp_path):
    needs_bench("tabulate")  # the markdown tables it checks
    import letters_table

    argv = ["--budget", "3", "--seeds", "0", "--n-points", "60", "--max-cells", "60"]
    argv += ["--solver", "euler", "--n-steps", "2", "--models", "FM", "FM w/N", "MFM (k=10)"]
    letters_table.main([*argv, "--save", str(tmp_path / "scores.csv")])
    out = capsys.readouterr().out
    letters_table.main(["--summarise", str(tmp_path / "scores.csv")])
    assert capsys.readouterr().out.split("\n\n")[-1] == out.split("\n\n")[-1]
    rows = [("identity (noisy source)", "test X"), ("FM w/N", "test Y"), ("mean shift", "train")]
    rows += [("nearest population", "test Y"), ("noise floor (two halves)", "test X")]
    for model, subset in rows:
        assert re.search(rf"\|\s*{re.escape(model)}\s*\|\s*{subset}\s*\|", out)
    assert re.search(r"\|\s*MFM \(k=10\)\s*\|\s*train\s*\|", out)
    assert "0.201/0.248/2.20e-03" in out  # the paper's MFM values printed beside ours


@pytest.mark.slow
def test_interpolants_quick(capsys):
    needs_bench("tabulate")  # the markdown table
    import interpolants

    interpolants.main(["--quick", "--threads", "1"])
    out = capsys.readouterr().out
    for row in ("| letters  |     0   |   0   |", "| organoid |     0.5 |   0.5 |"):
        assert row in out
    assert "| letters  |     0   |   0.5 |" not in out  # no score without sigma
