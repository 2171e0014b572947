"""MFM training steps per second: ours vs. a re-implementation of the published reference code.

Three trainers on the same letters data (24 training letters x 10 rotations), in one process,
timed in interleaved rounds after warm-up (each round runs ``--steps`` steps of each):

- ours, ``mfm.tl.fit``'s defaults: MetaFlowNet + MetaFlowObjective + the package's training
  loop (AdamW, schedule, clipping), 8 populations x 256 cells, kNN k=10, GCN 3x64 -> 32,
  velocity MLP 256 x 4;
- ours at the reference's sizes: 10 x 700 cells, k=50, GCN 3x64 -> 64, MLP 512 x 4, 128-d
  time embedding;
- the reference (``benchmarks/reference``): PyTorch Geometric GCNConv layers on kNN graphs
  built on the CPU each GCN step, Fourier-feature residual SELU MLP, two Adam optimisers on
  alternating steps with cached embeddings between GCN steps (the cache is filled before
  timing, as it is after the first epoch of training).

Each step includes drawing its batch. ``--profile`` adds cProfile and torch.profiler hot spots
of ours (reference sizes) and of the reference.

    python benchmarks/mfm_step.py --threads 1
    python benchmarks/mfm_step.py --device cuda
    python benchmarks/mfm_step.py --quick            # CI smoke test
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import numpy as np
import torch
from _common import (
    OURS_DEFAULT,
    OURS_REFERENCE_SIZES,
    OursSizes,
    OursTrainer,
    interleaved_times,
    letters_adata,
    median,
    print_table,
    seeded_generator,
    synchronize,
    torch_device,
)
from reference.model import ReferenceGNNFlow
from reference.trainer import ReferenceLoader, ReferenceTrainer

from mfm import _keys as K
from mfm.tl._io import population_pairs

REFERENCE = "reference (PyG GCNConv, 2 Adams, alternating)"


class ReferenceRun:
    """The reference trainer on the letters training populations, timed step by step."""

    def __init__(self, adata, sizes: OursSizes, args, device: torch.device):
        pairs, table, _ = population_pairs(adata, K.Keys("mfm"))
        train = pairs.treated(np.flatnonzero(table[K.SPLIT].astype(str) == K.TRAIN))
        with torch.random.fork_rng():  # seed the layers' init, leave the global RNG as it was
            torch.manual_seed(args.seed)
            self.model = ReferenceGNNFlow(
                pairs.n_features,
                gnn_hidden=sizes.gcn_hidden,
                gnn_layers=sizes.gcn_layers,
                decoder_hidden=sizes.hidden,
                decoder_layers=sizes.n_layers,
                knn=sizes.knn,
                skip_connections=not args.reference_plain_mlp,
            ).to(device)
        self.loader = ReferenceLoader(
            [pairs.population_cells(pairs.control[i]) for i in train],
            [pairs.population_cells(i) for i in train],
            batch_size=sizes.batch_populations,
            n_cells=sizes.cells_per_population,
            device=device,
            random_state=args.seed,
        )
        self.trainer = ReferenceTrainer(self.model, generator=seeded_generator(args.seed, device))
        self.trainer.fill_cache(self.loader)
        self.device = device
        self.step_times: dict[str, list[float]] = {"flow": [], "gcn": []}

    def run(self, n_steps: int) -> None:
        for _ in range(n_steps):
            kind = "gcn" if (self.trainer.batch_idx + 1) % 2 == 0 else "flow"
            start = time.perf_counter()
            self.trainer.step(*self.loader())
            synchronize(self.device)
            self.step_times[kind].append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block (even)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--n-points", type=int, default=1000, help="cells per letter population")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reference-plain-mlp",
        action="store_true",
        help="non-residual MLP, as letters_mfm.yaml sets (one 512x512 layer fewer)",
    )
    parser.add_argument("--profile", action="store_true", help="print hot spots")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke test")
    args = parser.parse_args(argv)
    if args.steps < 2 or args.steps % 2:
        parser.error("--steps must be even (the reference alternates flow and GCN steps)")
    ours_default, ours_large = OURS_DEFAULT, OURS_REFERENCE_SIZES
    if args.quick:
        args.steps, args.repeats, args.warmup, args.n_points = 2, 1, 1, 60
        ours_default = OursSizes(batch_populations=2, cells_per_population=32, knn=4, hidden=32)
        ours_large = OursSizes(
            batch_populations=3, cells_per_population=40, knn=5, hidden=64, embedding_dim=64
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    adata = letters_adata(args.n_points, args.seed)
    ours = {
        f"ours, defaults ({ours_default.label()})": OursTrainer(
            adata, ours_default, device=device, random_state=args.seed
        ),
        f"ours, reference sizes ({ours_large.label()})": OursTrainer(
            adata, ours_large, device=device, random_state=args.seed
        ),
    }
    reference = ReferenceRun(adata, ours_large, args, device)
    methods = {name: (lambda t=t: t.run(args.steps)) for name, t in ours.items()}
    methods[f"{REFERENCE} ({ours_large.label()})"] = lambda: reference.run(args.steps)
    times = interleaved_times(methods, repeats=args.repeats, warmup=args.warmup, device=device)
    report(args, device, times, reference)
    if args.profile:
        profile("ours, reference sizes", lambda: list(ours.values())[1].run(args.steps))
        profile("reference", lambda: reference.run(args.steps))


def report(args, device, times: dict[str, list[float]], reference: ReferenceRun) -> None:
    rate = {name: args.steps / median(values) for name, values in times.items()}
    base = rate[next(name for name in rate if name.startswith(REFERENCE))]
    print(
        f"\nletters ({args.n_points} cells per population), device={device}, torch threads="
        f"{torch.get_num_threads()}, {args.repeats} interleaved rounds of {args.steps} steps "
        f"after {args.warmup} warm-up round(s); each step includes drawing its batch\n"
    )
    rows = [
        [name, f"{1e3 / rate[name]:.1f}", f"{rate[name]:.2f}", f"{rate[name] / base:.2f}x"]
        for name in times
    ]
    print_table(["trainer", "ms / step", "steps / s", "ours / reference"], rows, "lrrr")
    skip = args.warmup * args.steps // 2  # warm-up steps of each kind
    flow = 1e3 * median(reference.step_times["flow"][skip:])
    gcn = 1e3 * median(reference.step_times["gcn"][skip:])
    print(f"\nreference: flow step (cached embeddings) {flow:.1f} ms, GCN step {gcn:.1f} ms")


def profile(label: str, fn, top: int = 18) -> None:
    """Print cProfile (cumulative, per Python function) and torch.profiler (per op) hot spots."""
    fn()  # warm
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = stats.total_tt
    print(f"\n### {label}: cProfile, {total:.2f} s total, top {top} by cumulative time\n")
    print_table(["function", "cumulative s", "share"], _cprofile_rows(stats, total, top), "lrr")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n### {label}: torch.profiler, top {top} ops by self CPU time\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def _cprofile_rows(stats: pstats.Stats, total: float, top: int) -> list[list[str]]:
    rows = []
    entries = sorted(stats.stats.items(), key=lambda item: -item[1][3])
    for (path, line, name), (_, _, _, cumulative, _) in entries[: 4 * top]:
        if path == "~" or "cProfile" in path:
            continue
        short = "/".join(path.split("/")[-2:])
        rows.append([f"{short}:{line}:{name}", f"{cumulative:.3f}", f"{cumulative / total:.0%}"])
    return rows[:top]


if __name__ == "__main__":
    main()
