"""Cost of optimal transport in training: batched entropic OT (WFM) and exact minibatch OT (MFM).

1. Batched entropic OT targets (``mfm.flows.entropic_ot_targets``, POT ``ot.batch``) vs. a
   Python loop of ``ot.sinkhorn`` (torch and numpy float64) at the sizes WFM trains with
   (64 and 256 niches x 16 points x 16 dims), using ``benchmarks/ot_batch.py``'s niches,
   loop and settings (fixed number of log-domain iterations, matching targets).
2. Exact minibatch OT (``mfm.flows.ot_coupling``: ``ot.emd`` per population on the CPU) at the
   batch sizes of the MFM trainer (8 x 256 with ``mfm.tl.fit``'s default model, 10 x 700 with
   the reference's sizes) in 2-D (letters) and 40-D (organoid simulator): its time per training
   step and its share of a training step with ``coupling="ot"`` (our whole training loop).

All timings are interleaved rounds after warm-up, in one process.

This file is not called ``ot.py``: run as a script, that name would shadow POT's ``ot``.

    python benchmarks/ot_cost.py --threads 1
    python benchmarks/ot_cost.py --quick            # CI smoke test
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from itertools import cycle

import torch
from _common import (
    OURS_DEFAULT,
    OURS_REFERENCE_SIZES,
    OursSizes,
    OursTrainer,
    interleaved_times,
    letters_adata,
    median,
    organoid_adata,
    print_table,
    torch_device,
)
from ot_batch import loop_targets, make_niches

from mfm.flows import entropic_ot_targets, ot_coupling


def entropic_table(args, device: torch.device) -> None:
    options = {"reg": args.reg, "n_iter": args.n_iter, "tol": 0.0, "mode": "matching"}
    rows = []
    for n_clouds in args.n_clouds:
        x0, x1 = make_niches(n_clouds, args.n_points, args.dim, device)
        x0_np, x1_np = x0.cpu().double().numpy(), x1.cpu().double().numpy()
        methods = {
            "ot.batch": lambda x0=x0, x1=x1: entropic_ot_targets(x0, x1, **options),
            "loop torch": lambda x0=x0, x1=x1: loop_targets(x0, x1, **options),
        }
        if n_clouds <= args.numpy_max_clouds:
            methods["loop numpy"] = lambda a=x0_np, b=x1_np: loop_targets(a, b, **options)
        times = interleaved_times(methods, repeats=args.repeats, warmup=1, device=device)
        ms = {name: 1e3 * median(values) for name, values in times.items()}
        batched, loop, loop_np = ms["ot.batch"], ms["loop torch"], ms.get("loop numpy")
        size = f"{n_clouds} x {args.n_points} x {args.dim}"
        rows.append(
            [size, f"{batched:.1f}", f"{loop:.1f}", _ms(loop_np), f"{loop / batched:.1f}x",
             "skipped" if loop_np is None else f"{loop_np / batched:.1f}x"]
        )  # fmt: skip
    print(
        f"\n## Entropic OT targets: reg={args.reg} (x mean cost), {args.n_iter} log-domain "
        f"iterations, matching; device={device}, torch threads={torch.get_num_threads()}, "
        f"{args.repeats} interleaved rounds after 1 warm-up\n"
    )
    header = [
        "niches x points x dims", "ot.batch (ms)", "loop of ot.sinkhorn, torch (ms)",
        "loop, numpy float64 (ms)", "loop torch / batch", "loop numpy / batch",
    ]  # fmt: skip
    print_table(header, rows, "lrrrrr")


def _ms(value: float | None) -> str:
    return "skipped" if value is None else f"{value:.1f}"


def exact_row(adata, sizes: OursSizes, dims: str, args, device: torch.device) -> list[str]:
    """Step times with independent and OT coupling, and ``ot_coupling`` alone, at ``sizes``."""
    plain = OursTrainer(adata, sizes, device=device, random_state=args.seed)
    with_ot = OursTrainer(adata, sizes, coupling="ot", device=device, random_state=args.seed)
    batches = cycle([plain.next_batch()[:2] for _ in range(4)])
    generator = torch.Generator().manual_seed(args.seed)
    k = args.steps
    methods = {
        "independent": lambda: plain.run(k),
        "ot": lambda: with_ot.run(k),
        "coupling": lambda: [ot_coupling(*next(batches), generator=generator) for _ in range(k)],
    }
    times = interleaved_times(methods, repeats=args.repeats, warmup=1, device=device)
    step, step_ot, coupling = (1e3 * median(times[name]) / k for name in methods)
    shape = f"{sizes.batch_populations} x {sizes.cells_per_population}"
    return [
        f"{shape}, {dims}", sizes.label().split(", ", 1)[1], f"{coupling:.1f}", f"{step:.1f}",
        f"{step_ot:.1f}", f"{coupling / step_ot:.0%}", f"{step_ot / step:.2f}x",
    ]  # fmt: skip


def exact_table(args, device: torch.device) -> None:
    sizes, organoid_cells = [OURS_DEFAULT, OURS_REFERENCE_SIZES], 700
    if args.quick:
        sizes = [replace(s, cells_per_population=40, knn=5, hidden=32) for s in sizes]
        organoid_cells = 40
    data = {
        "2-D letters": letters_adata(args.n_letter_points, args.seed),
        "40-D organoid": organoid_adata(
            n_patients=4, n_cells=organoid_cells, random_state=args.seed
        ),
    }
    rows = [
        exact_row(adata, size, dims, args, device) for dims, adata in data.items() for size in sizes
    ]
    print(
        f"\n## Exact minibatch OT (ot.emd per population, CPU float64) in MFM training steps; "
        f"device={device}, torch threads={torch.get_num_threads()}, {args.repeats} interleaved "
        f"rounds of {args.steps} steps after 1 warm-up; steps include the batch draw\n"
    )
    header = [
        "batch, data", "model", "ot_coupling (ms / step)", "step, independent (ms)",
        "step, coupling='ot' (ms)", "OT share of the OT step", "OT step / independent step",
    ]  # fmt: skip
    print_table(header, rows, "llrrrrr")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-clouds", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--n-points", type=int, default=16)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--reg", type=float, default=0.01)
    parser.add_argument("--n-iter", type=int, default=200)
    parser.add_argument(
        "--numpy-max-clouds", type=int, default=64, help="largest batch for the numpy loop (slow)"
    )
    parser.add_argument("--n-letter-points", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-exact", action="store_true", help="entropic table only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_clouds, args.n_iter, args.repeats, args.steps = [8], 20, 1, 1
        args.n_letter_points = 60
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    entropic_table(args, device)
    if not args.skip_exact:
        exact_table(args, device)


if __name__ == "__main__":
    main()
