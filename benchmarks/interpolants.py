"""Stochastic interpolants: MFM trained at several sigma, sampled by the ODE or the SDE.

For the letters (``letters_table.letters_adata``: train on 22 letters, held out X and Y, row-
paired coupling) and the simulated organoid screen (``_common.organoid_adata``: one validation
and one test patient, independent coupling), trains MFM (``mfm.tl.fit`` defaults) with
``interpolant_sigma`` in ``--sigmas``, predicts every held-out population with the ODE
(``sde_eps=0``, ``predict``'s default solver) and the SDE (``sde_eps`` in ``--eps``,
``--sde-steps`` Euler-Maruyama steps), and prints held-out W1 / MMD / energy distance as
mean +- std over ``--seeds``. An SDE needs a score, so sigma = 0 rows have eps = 0 only.

Usage: ``python benchmarks/interpolants.py --steps 500 --seeds 0 --threads 1``
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from _common import organoid_adata
from letters_table import letters_adata

import mfm

METRICS = ("w1", "mmd", "energy")


def datasets(args) -> dict:
    """Name -> (builder of the AnnData for a seed, ``fit`` coupling)."""
    return {
        "letters": (lambda seed: letters_adata(args.n_points, seed), "paired"),
        "organoid": (
            lambda seed: organoid_adata(
                n_patients=args.patients, n_cells=args.cells, random_state=seed
            ),
            "independent",
        ),
    }


def held_out(adata) -> list[str]:
    """Treated populations outside the training split."""
    table = adata.uns["mfm"]["populations"]
    treated = table[table["source"].astype(str) != table.index.astype(str)]
    return list(treated.index[treated["split"].astype(str) != "train"])


def scores(adata, model, populations, args, eps: float, seed: int) -> dict:
    """Mean held-out metrics and seconds of one prediction."""
    start = time.perf_counter()
    options = {"sde_eps": eps, "sde_steps": args.sde_steps} if eps > 0 else {}
    pred = mfm.tl.predict(adata, model, populations=populations, random_state=seed, **options)
    seconds = time.perf_counter() - start
    table = mfm.tl.evaluate(adata, pred, metrics=METRICS, max_cells=args.max_cells)
    return {**table[list(METRICS)].mean().to_dict(), "predict s": seconds}


def run(args) -> pd.DataFrame:
    """One row per dataset, seed, sigma and eps."""
    rows = []
    for name in args.datasets:
        build, coupling = datasets(args)[name]
        for seed in args.seeds:
            adata = build(seed)
            populations = held_out(adata)
            for sigma in args.sigmas:
                start = time.perf_counter()
                model = mfm.tl.fit(
                    adata, method="mfm", coupling=coupling, interpolant_sigma=sigma,
                    max_steps=args.steps, random_state=seed, progress=False, device="cpu",
                )  # fmt: skip
                fit_seconds = time.perf_counter() - start
                for eps in [e for e in args.eps if sigma > 0 or e == 0]:
                    result = scores(adata, model, populations, args, eps, seed)
                    rows.append(
                        {"data": name, "sigma": sigma, "eps": eps, "seed": seed, **result,
                         "fit s": fit_seconds}
                    )  # fmt: skip
                    print(f"{name} seed {seed} sigma {sigma} eps {eps}: {result}", flush=True)
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds of every (data, sigma, eps)."""
    grouped = results.groupby(["data", "sigma", "eps"], sort=True)
    mean, std = grouped.mean(numeric_only=True), grouped.std(numeric_only=True).fillna(0.0)
    table = pd.DataFrame(index=mean.index)
    for metric, label, form in (
        ("w1", "W1", ".3f"),
        ("mmd", "MMD", ".2e"),
        ("energy", "energy", ".3f"),
    ):
        table[label] = [
            f"{m:{form}} +- {s:{form}}" for m, s in zip(mean[metric], std[metric], strict=True)
        ]
    table["fit s"] = mean["fit s"].map("{:.0f}".format)
    table["predict s"] = mean["predict s"].map("{:.1f}".format)
    return table.reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["letters", "organoid"])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.1, 0.5])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.1, 0.5, 1.0])
    parser.add_argument("--sde-steps", type=int, default=100, help="Euler-Maruyama steps")
    parser.add_argument("--n-points", type=int, default=1000, help="points per letter")
    parser.add_argument("--patients", type=int, default=8, help="organoid patients")
    parser.add_argument("--cells", type=int, default=300, help="organoid cells per population")
    parser.add_argument("--max-cells", type=int, default=1000, help="cells per metric")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.seeds, args.sigmas, args.eps = 3, [0], [0.0, 0.5], [0.0, 0.5]
        args.sde_steps, args.n_points, args.patients, args.cells, args.max_cells = 4, 60, 3, 60, 60
    if args.threads:
        torch.set_num_threads(args.threads)
    table = summarise(run(args))
    print(f"\nheld-out populations, MFM, {args.steps} steps, seeds {args.seeds}, "
          f"SDE {args.sde_steps} Euler-Maruyama steps, CPU\n")  # fmt: skip
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
