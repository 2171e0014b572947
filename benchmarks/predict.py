"""Prediction speed and accuracy: our ODE solvers vs. the reference's dopri5 with 500 output times.

For a letters model and an organoid-simulator model (each trained briefly here with
``mfm.tl.fit``), evenly spaced held-out (val + test) treated populations (``--cells`` cells in
all) are predicted from their control cells with the same trained velocity field and
embedding, by

- the reference setting: adaptive dopri5, atol = rtol = 1e-4, output times
  ``linspace(0, 1, 500)`` (torchdiffeq ``odeint``, standing in for the published torchdyn
  call), all cells of a population at once;
- ours, ``mfm.tl.MetaFlowModel.transport`` (``mfm.flows.integrate``): dopri5 with only the end
  time at atol = rtol = 1e-4 and 1e-5, and midpoint / rk4 / euler with n steps.

Integration times (after embedding) are interleaved over rounds after warm-up; cells/s is the
number of predicted cells over the median round time. W1 is the exact 1-Wasserstein distance
(``mfm.metrics.w1``) between predicted and observed treated cells, averaged over populations;
"cell error" is the mean distance between a cell's prediction and the reference's; "evals"
counts velocity evaluations per population. The last lines name, per data set, the fastest
setting whose W1 is within 2 % of the reference's and its speed-up, and time the reference as
published once on one population: torchdyn without an interpolator makes each of the 500
output times a dopri5 step (~3000 evaluations); torchdiffeq's ``step_t`` reproduces that.

The first table ("whole prediction") compares the prediction path of ``mfm.tl.predict`` before
batching (per population: embedding, then dopri5 1e-5) with the batched path it uses now (all
embeddings in batched GCN passes, the cells of many populations in one solve of
``--chunk-size`` cells) for dopri5 and ``--batched-solvers``, on every held-out population
(``--batched-cells``), embeddings included in the times; W1 and cell error are against the
path before.

    python benchmarks/predict.py --threads 1
    python benchmarks/predict.py --threads 1 --datasets organoid --batched-only
    python benchmarks/predict.py --quick            # CI smoke test
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _common import (
    interleaved_times,
    letters_adata,
    median,
    organoid_adata,
    print_table,
    torch_device,
)
from reference.solve import reference_integrate

import mfm
from mfm import _keys as K
from mfm.tl import MetaFlowModel
from mfm.tl._io import population_pairs

REFERENCE = "reference: dopri5 1e-4, 500 output times"
#: W1 may exceed the reference's by this fraction.
W1_TOLERANCE = 0.02


@dataclass
class Task:
    """Held-out populations of one data set: control cells, embeddings, observed cells."""

    x0: list[np.ndarray]
    embedding: list[np.ndarray]
    treatment: list[str]
    observed: list[np.ndarray]
    source: list[str]

    @property
    def n_cells(self) -> int:
        return sum(len(x) for x in self.x0)


def held_out_task(adata, model: MetaFlowModel, random_state: int, n_cells: int) -> Task:
    """Evenly spaced val/test treated populations, enough for ``n_cells`` predicted cells."""
    pairs, table, _ = population_pairs(adata, K.Keys("mfm"), model.config.treatments)
    held_out = pairs.treated(np.flatnonzero(table[K.SPLIT].astype(str).isin([K.VAL, K.TEST])))
    sizes = [len(pairs.cells[pairs.control[target]]) for target in held_out]
    count = min(len(held_out), max(1, int(np.ceil(n_cells / np.mean(sizes)))))
    task = Task([], [], [], [], [])
    for target in held_out[np.linspace(0, len(held_out) - 1, count).round().astype(int)]:
        source = pairs.control[target]
        task.x0.append(pairs.population_cells(source))
        task.embedding.append(
            model.embed(pairs.population_cells(source), pairs.names[source], random_state)
        )
        task.treatment.append(pairs.treatments[pairs.treatment[target]])
        task.observed.append(pairs.population_cells(target))
        task.source.append(pairs.names[source])
    return task


def reference_transport(
    model: MetaFlowModel,
    x0: np.ndarray,
    embedding: np.ndarray,
    treatment: str,
    step_to_outputs: bool = False,
) -> np.ndarray:
    """``model.transport`` with the reference's integrator in place of ``mfm.flows.integrate``."""
    h = torch.as_tensor(embedding, dtype=torch.float32, device=model.device)[None]
    code = torch.tensor([model.treatment_code(treatment)], device=model.device)
    condition = model.module.condition(h, code).expand(len(x0), -1)
    x = torch.as_tensor(x0, dtype=torch.float32, device=model.device)
    model.module.eval()
    out = reference_integrate(
        model.module, model.to_model_space(x), condition, step_to_outputs=step_to_outputs
    )
    return model.to_data_space(out).cpu().numpy()


def solver_settings(model: MetaFlowModel, steps: list[int]) -> dict[str, Callable]:
    """Name -> ``f(x0, embedding, treatment) -> prediction``, the reference first."""
    settings: dict[str, Callable] = {
        REFERENCE: lambda x0, h, c: reference_transport(model, x0, h, c)
    }
    for label, tol in (("1e-4", 1e-4), ("1e-5", 1e-5)):
        settings[f"ours: dopri5 {label}, end time only"] = lambda x0, h, c, tol=tol: (
            model.transport(x0, h, c, atol=tol, rtol=tol)
        )
    for method in ("midpoint", "rk4", "euler"):
        for n in steps:
            settings[f"ours: {method}, n={n}"] = lambda x0, h, c, m=method, n=n: model.transport(
                x0, h, c, solver=m, n_steps=n
            )
    return settings


def predict_all(solve: Callable, task: Task) -> list[np.ndarray]:
    return [solve(*args) for args in zip(task.x0, task.embedding, task.treatment, strict=True)]


@dataclass
class Timings:
    """Round times (s), last outputs and velocity evaluations per population, per setting."""

    times: dict[str, list[float]]
    outputs: dict[str, list[np.ndarray]]
    evals: dict[str, float]


def time_settings(model, settings: dict[str, Callable], task: Task, args, device) -> Timings:
    """Interleaved timings of every setting on ``task``; a forward hook counts evaluations."""
    result = Timings({}, {}, {})
    calls = [0]

    def timed(label: str) -> Callable[[], None]:
        def run() -> None:
            before = calls[0]
            result.outputs[label] = predict_all(settings[label], task)
            result.evals[label] = (calls[0] - before) / len(task.x0)

        return run

    hook = model.module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        result.times = interleaved_times(
            {label: timed(label) for label in settings},
            repeats=args.repeats,
            warmup=args.warmup,
            device=device,
        )
    finally:
        hook.remove()
    return result


def published_reference(model, task: Task, args, device) -> Timings:
    """The stand-in and the published stepping (every output time a step) on population 0."""
    one = Task(
        task.x0[:1], task.embedding[:1], task.treatment[:1], task.observed[:1], task.source[:1]
    )
    settings = {
        "stand-in": lambda x0, h, c: reference_transport(model, x0, h, c),
        "published": lambda x0, h, c: reference_transport(model, x0, h, c, step_to_outputs=True),
    }
    once = argparse.Namespace(repeats=1, warmup=0)
    return time_settings(model, settings, one, once, device)


def benchmark(name: str, adata, args, device: torch.device) -> None:
    model = mfm.tl.fit(
        adata, max_steps=args.steps, device=device, random_state=args.seed, progress=False
    )
    task = held_out_task(adata, model, args.seed, args.cells)
    if args.batched_cells:
        every = held_out_task(adata, model, args.seed, args.batched_cells)
        batched_comparison(name, model, every, args, device)
    if args.batched_only:
        return
    timings = time_settings(model, solver_settings(model, args.n_steps), task, args, device)
    report(name, args, device, task, timings)
    if not args.skip_published:
        published = published_reference(model, task, args, device)
        report_published(name, args, task, timings, published)


#: The per-population path of ``mfm.tl.predict`` before batching (its defaults then).
PER_POPULATION = "per population: embed + dopri5 1e-5 each (tl.predict before)"


def batched_settings(model: MetaFlowModel, args) -> dict[str, Callable[[Task], list]]:
    """Name -> ``f(task) -> predictions`` of whole prediction paths, embeddings included.

    The first is ``tl.predict`` before batching: one embedding and one dopri5 solve (atol =
    rtol = 1e-5, 8192 cells per chunk) per population. The others embed every control
    population in one batched GCN pass and integrate ``args.chunk_size`` cells of many
    populations per solve (``MetaFlowModel.embed_populations`` / ``transport_populations``,
    what ``tl.predict`` calls now).
    """

    def per_population(task: Task) -> list[np.ndarray]:
        return [
            model.transport(x0, model.embed(x0, name, args.seed), c)
            for x0, name, c in zip(task.x0, task.source, task.treatment, strict=True)
        ]

    def batched(task: Task, **kwargs) -> list[np.ndarray]:
        h = model.embed_populations(task.x0, task.source, args.seed)
        return model.transport_populations(
            task.x0, h, task.treatment, chunk_size=args.chunk_size, **kwargs
        )

    settings: dict[str, Callable[[Task], list]] = {PER_POPULATION: per_population}
    settings["batched: dopri5 1e-5"] = batched
    for method, n in args.batched_solvers:
        settings[f"batched: {method}, n={n}"] = lambda task, m=method, n=n: batched(
            task, solver=m, n_steps=n
        )
    return settings


def batched_comparison(name: str, model: MetaFlowModel, task: Task, args, device) -> None:
    """Old per-population path vs batched paths, interleaved in this process, with W1."""
    settings = batched_settings(model, args)
    outputs: dict[str, list[np.ndarray]] = {}

    def timed(label: str) -> Callable[[], None]:
        def run() -> None:
            outputs[label] = settings[label](task)

        return run

    times = interleaved_times(
        {label: timed(label) for label in settings},
        repeats=args.repeats,
        warmup=args.warmup,
        device=device,
    )
    rate = {label: task.n_cells / median(values) for label, values in times.items()}
    w1 = {label: mean_w1(out, task.observed, args) for label, out in outputs.items()}
    old = PER_POPULATION
    print(
        f"\n{name}: whole prediction (embedding + integration) of {len(task.x0)} held-out "
        f"populations, {task.n_cells} cells; batched solves of {args.chunk_size} cells; "
        f"device={device}, torch threads={torch.get_num_threads()}\n"
    )
    rows = [
        [
            label,
            f"{rate[label]:,.0f}",
            f"{rate[label] / rate[old]:.1f}x",
            f"{w1[label]:.4f}",
            f"{100 * (w1[label] / w1[old] - 1):+.2f} %",
            f"{cell_error(outputs[label], outputs[old]):.1e}",
        ]
        for label in settings
    ]
    header = ["path", "cells / s", "speed-up", "W1", "W1 vs before", "cell error vs before"]
    print_table(header, rows, "lrrrrr")
    close = [
        label for label in rate if label != old and abs(w1[label] / w1[old] - 1) <= W1_TOLERANCE
    ]
    best = max(close, key=rate.get, default=None)
    if best is None:
        print(f"\n{name}: no batched path within {W1_TOLERANCE:.0%} of the W1 before")
        return
    print(
        f"\n{name}: fastest batched path within {W1_TOLERANCE:.0%} of the W1 before: {best}, "
        f"{rate[best]:,.0f} cells/s, {rate[best] / rate[old]:.1f}x tl.predict before batching"
    )


def mean_w1(predicted: list[np.ndarray], observed: list[np.ndarray], args) -> float:
    """Mean over populations of the exact W1 (same cell subsample for every solver)."""
    kwargs = {"max_cells": args.max_cells, "random_state": args.seed}
    pairs = zip(predicted, observed, strict=True)
    return float(np.mean([mfm.metrics.w1(p, y, **kwargs) for p, y in pairs]))


def cell_error(predicted: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Mean Euclidean distance between a cell's prediction and the reference's."""
    return float(
        np.linalg.norm(np.concatenate(predicted) - np.concatenate(reference), axis=1).mean()
    )


def report(name, args, device, task: Task, timings: Timings) -> None:
    rate = {label: task.n_cells / median(values) for label, values in timings.times.items()}
    w1 = {label: mean_w1(out, task.observed, args) for label, out in timings.outputs.items()}
    reference = timings.outputs[REFERENCE]
    print(
        f"\n{name}: {len(task.x0)} held-out populations, {task.n_cells} cells, model trained "
        f"{args.steps} steps; device={device}, torch threads={torch.get_num_threads()}, "
        f"{args.repeats} interleaved rounds after {args.warmup} warm-up\n"
    )
    rows = [
        [
            label,
            f"{timings.evals[label]:.0f}",
            f"{rate[label]:,.0f}",
            f"{rate[label] / rate[REFERENCE]:.1f}x",
            f"{w1[label]:.4f}",
            f"{100 * (w1[label] / w1[REFERENCE] - 1):+.2f} %",
            f"{cell_error(timings.outputs[label], reference):.1e}",
        ]
        for label in timings.times
    ]
    header = [
        "solver", "evals / population", "cells / s", "speed-up", "W1", "W1 vs reference",
        "cell error vs reference",
    ]  # fmt: skip
    print_table(header, rows, "lrrrrrr")
    best = fastest_within(rate, w1)
    if best is None:
        print(f"\n{name}: no setting of ours within {W1_TOLERANCE:.0%} of the reference's W1")
        return
    print(
        f"\n{name}: fastest within {W1_TOLERANCE:.0%} of the reference's W1: {best}, "
        f"{rate[best]:,.0f} cells/s, {rate[best] / rate[REFERENCE]:.1f}x the reference"
    )


def fastest_within(rate: dict[str, float], w1: dict[str, float]) -> str | None:
    """Our fastest setting whose W1 differs from the reference's by at most ``W1_TOLERANCE``."""
    close = [
        label
        for label in rate
        if label != REFERENCE and abs(w1[label] / w1[REFERENCE] - 1) <= W1_TOLERANCE
    ]
    return max(close, key=rate.get, default=None)


def report_published(name, args, task: Task, timings: Timings, published: Timings) -> None:
    n = len(task.x0[0])
    seconds = {label: median(values) for label, values in published.times.items()}
    w1 = {label: mean_w1(out, task.observed[:1], args) for label, out in published.outputs.items()}
    rate = {label: task.n_cells / median(values) for label, values in timings.times.items()}
    w1_all = {label: mean_w1(out, task.observed, args) for label, out in timings.outputs.items()}
    best = fastest_within(rate, w1_all)
    slower = seconds["published"] / seconds["stand-in"]
    print(
        f"\n{name}: the reference as published steps dopri5 onto each of the 500 output times "
        f"(torchdyn without interpolator; here torchdiffeq's step_t). Once, on 1 population of "
        f"{n} cells: {published.evals['published']:.0f} evaluations vs "
        f"{published.evals['stand-in']:.0f}, {n / seconds['published']:,.0f} cells/s, "
        f"{slower:.0f}x slower than the stand-in reference; W1 on that population "
        f"{100 * (w1['published'] / w1['stand-in'] - 1):+.2f} % vs the stand-in."
    )
    if best is not None:
        print(
            f"{name}: {best} is then about {slower * rate[best] / rate[REFERENCE]:.0f}x faster "
            f"than the published reference."
        )


def _solver_steps(text: str) -> tuple[str, int]:
    """``"midpoint:4"`` -> ``("midpoint", 4)``."""
    method, _, n = text.partition(":")
    return method, int(n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per model")
    parser.add_argument("--n-steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument(
        "--datasets", nargs="+", choices=["letters", "organoid"], default=["letters", "organoid"]
    )
    parser.add_argument("--n-points", type=int, default=1000, help="cells per letter population")
    parser.add_argument("--max-cells", type=int, default=1000, help="W1 subsample size")
    parser.add_argument(
        "--cells", type=int, default=3000, help="cells to predict per data set (whole populations)"
    )
    parser.add_argument(
        "--batched-cells",
        type=int,
        default=30000,
        help="cells for the per-population vs batched comparison (0: skip it)",
    )
    parser.add_argument(
        "--batched-solvers",
        type=_solver_steps,
        nargs="+",
        default=[("euler", 4), ("midpoint", 2), ("midpoint", 4), ("rk4", 1), ("rk4", 2)],
        help="fixed-step solvers of the batched paths, as method:n",
    )
    parser.add_argument("--chunk-size", type=int, default=8192, help="cells per batched solve")
    parser.add_argument(
        "--batched-only", action="store_true", help="only the per-population vs batched table"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-published", action="store_true", help="skip the torchdyn-style stepping (slow)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke test")
    args = parser.parse_args(argv)
    organoid = {"n_patients": 8, "n_cells": 300}
    if args.quick:
        args.steps, args.n_steps, args.repeats, args.n_points = 5, [2], 1, 60
        args.cells, args.batched_cells = 200, 400
        args.batched_solvers = [("midpoint", 2)]
        organoid = {"n_patients": 3, "n_cells": 60}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    for name in args.datasets:
        if name == "letters":
            adata = letters_adata(args.n_points, args.seed)
        else:
            adata = organoid_adata(**organoid, random_state=args.seed)
        benchmark(name, adata, args, device)


if __name__ == "__main__":
    main()
