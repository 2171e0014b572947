"""Batched entropic OT targets (POT ``ot.batch``) vs. a Python loop of ``ot.sinkhorn``.

Both solve the same problems on the same device in the same process: for each of B niches,
entropic OT between a Gaussian noise cloud and the niche (n points in d dims), cost scaled by its
mean, log-domain Sinkhorn for a fixed number of iterations (``--tol 0``), then the same rounding
to a matching (or the barycentric map). The loop solves the transposed problem so that its
iterates equal the batched ones (POT's loop updates v before u, ``ot.batch`` u before v), which
lets the script check that both give the same targets. Timings are interleaved after warm-up.

    python benchmarks/ot_batch.py                    # 64 niches x 16 points x 16 dims, CPU
    python benchmarks/ot_batch.py --device cuda
    python benchmarks/ot_batch.py --quick            # CI smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import ot
import torch
from _common import torch_device
from scipy.optimize import linear_sum_assignment

from mfm.flows.point_clouds import _entropic_log_plan, entropic_ot_targets, sample_noise_clouds


def make_niches(n_clouds: int, n_points: int, dim: int, device: torch.device, seed: int = 0):
    """Niche-like clouds (points around a few cell-type centres) and Gaussian noise clouds."""
    g = torch.Generator().manual_seed(seed)
    centres = 2 * torch.randn(8, dim, generator=g)
    types = torch.randint(0, 8, (n_clouds, n_points), generator=g)
    x1 = (centres[types] + 0.5 * torch.randn(n_clouds, n_points, dim, generator=g)).to(device)
    x0 = sample_noise_clouds(x1, generator=torch.Generator(device=device).manual_seed(seed + 1))
    return x0, x1


def loop_targets(x0, x1, *, reg: float, n_iter: int, tol: float, mode: str) -> torch.Tensor:
    """Per-niche ``ot.sinkhorn`` + the same post-processing (works on torch or numpy inputs)."""
    out = []
    for a_points, b_points in zip(x0, x1, strict=True):
        cost = ot.dist(a_points, b_points)
        cost = cost / cost.mean()
        weights = ot.unif(len(a_points), type_as=cost)
        plan = ot.sinkhorn(
            weights,
            weights,
            cost.T,
            reg,
            method="sinkhorn_log",
            numItermax=n_iter,
            stopThr=tol,
            warn=False,
        ).T
        out.append(_post_process(plan, b_points, mode))
    return torch.stack([torch.as_tensor(o) for o in out])


def _post_process(plan, points, mode: str):
    if mode == "barycentric":
        return (
            plan @ points / plan.sum(1, keepdims=True)
            if isinstance(plan, np.ndarray)
            else (plan @ points / plan.sum(1, keepdim=True))
        )
    match = plan.argmax(1)
    match_np = match.cpu().numpy() if isinstance(match, torch.Tensor) else match
    if len(np.unique(match_np)) < len(match_np):
        plan_np = plan.cpu().numpy() if isinstance(plan, torch.Tensor) else plan
        match = linear_sum_assignment(plan_np, maximize=True)[1]
        match = (
            torch.as_tensor(match, device=points.device)
            if isinstance(points, torch.Tensor)
            else match
        )
    return points[match]


def time_call(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-clouds", type=int, default=64)
    parser.add_argument("--n-points", type=int, default=16)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--reg", type=float, default=0.01)
    parser.add_argument("--n-iter", type=int, default=200)
    parser.add_argument("--tol", type=float, default=0.0)
    parser.add_argument("--mode", choices=["matching", "barycentric"], default="matching")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy (CPU) loop")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_clouds, args.n_iter, args.repeats, args.warmup = 8, 20, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    x0, x1 = make_niches(args.n_clouds, args.n_points, args.dim, device)
    x0, x1 = x0.to(getattr(torch, args.dtype)), x1.to(getattr(torch, args.dtype))
    options = {"reg": args.reg, "n_iter": args.n_iter, "tol": args.tol, "mode": args.mode}
    methods = {
        f"ot.batch ({device.type})": lambda: entropic_ot_targets(x0, x1, **options),
        f"loop of ot.sinkhorn ({device.type}, torch)": lambda: loop_targets(x0, x1, **options),
    }
    if not args.no_numpy:
        x0_np, x1_np = x0.cpu().double().numpy(), x1.cpu().double().numpy()
        methods["loop of ot.sinkhorn (cpu, numpy float64)"] = lambda: loop_targets(
            x0_np, x1_np, **options
        )

    times: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, torch.Tensor] = {}
    for repeat in range(args.warmup + args.repeats):
        names = list(methods) if repeat % 2 == 0 else list(reversed(methods))
        for name in names:
            elapsed, outputs[name] = time_call(methods[name], device)
            if repeat >= args.warmup:
                times[name].append(elapsed)
    report(args, device, times, outputs)
    rounding_quality(x0, x1, reg=args.reg, n_iter=args.n_iter)


def report(args, device, times: dict[str, list[float]], outputs: dict[str, torch.Tensor]) -> None:
    batched_name = next(iter(times))
    batched = outputs[batched_name].cpu().double()
    base = statistics.median(times[batched_name])
    print(
        f"\n{args.n_clouds} niches x {args.n_points} points x {args.dim} dims, reg={args.reg} "
        f"(x mean cost), {args.n_iter} iterations (tol={args.tol}), mode={args.mode}, "
        f"{args.dtype}, device={device}, torch threads={torch.get_num_threads()}, "
        f"{args.repeats} interleaved repeats after {args.warmup} warm-up\n"
    )
    print(
        "| method | median (ms) | min (ms) | time / ot.batch | max abs diff vs ot.batch "
        "| same target rows |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        other = outputs[name].cpu().double()
        diff = (other - batched).abs().max().item()
        same_rows = (other - batched).abs().amax(-1).lt(1e-4).double().mean().item()
        print(
            f"| {name} | {1e3 * statistics.median(values):.2f} | {1e3 * min(values):.2f} | "
            f"{statistics.median(values) / base:.1f}x | {diff:.1e} | {100 * same_rows:.1f} % |"
        )


def rounding_quality(x0: torch.Tensor, x1: torch.Tensor, *, reg: float, n_iter: int) -> None:
    """How often the row argmax collides, and the cost of each rounding vs. the exact assignment."""
    mask = torch.ones(x0.shape[:2], dtype=torch.bool, device=x0.device)
    log_plan = _entropic_log_plan(x0, x1, mask, reg=reg, n_iter=n_iter, tol=0.0)
    argmax = log_plan.argmax(-1).cpu().numpy()
    collided = np.mean([len(np.unique(row)) < len(row) for row in argmax])
    cost = torch.cdist(x0.double(), x1.double()).pow(2).cpu().numpy()
    exact = np.array([c[linear_sum_assignment(c)].mean() for c in cost])
    print(f"\nrow argmax of the plan collides in {100 * collided:.0f} % of the clouds\n")
    print(
        "| rounding | transport cost / exact OT assignment - 1 | clouds with the exact assignment |"
    )
    print("| --- | ---: | ---: |")
    for rounding in ("assignment", "greedy"):
        targets = entropic_ot_targets(x0, x1, reg=reg, n_iter=n_iter, tol=0.0, rounding=rounding)
        matched = ((targets.double() - x0.double()) ** 2).sum(-1).mean(-1).cpu().numpy()
        gap = matched / exact - 1
        print(f"| {rounding} | {100 * gap.mean():.3f} % | {100 * np.mean(gap < 1e-6):.0f} % |")


if __name__ == "__main__":
    main()
