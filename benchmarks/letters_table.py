"""The MFM paper's synthetic letters table with our letters data.

Trains FM, CGFM, MFM (k = 0, 1, 10, 50; control or noise source) on 24 letters x 10
rotations, predicts every population, and reports W1 / W2 / MMD on train, test-X (letter X)
and test-Y (letter Y) as mean +- std over seeds, beside the paper's values, with the wall time
per model. ``--budget`` sets the training steps. Models with a control source train on the
row-paired noisy/clean points (``coupling="paired"``, the paper's protocol; ``--coupling``
changes it); the "w/N" models start from noise, so their coupling is independent. The
identity row scores the noisy source itself as the prediction; the mean-shift and
nearest-population rows are ``mfm.tl.baseline``'s; the noise floor is each metric between two
halves of the clean points (W1/W2 at half size; MMD rescaled to the prediction's size).

Usage: ``python benchmarks/letters_table.py --budget 2000 --seeds 0 1 2``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

import mfm

#: (method, source, knn) of the table's rows, and their names.
MODELS = {
    "FM": ("fm", "control", 0),
    "FM w/N": ("fm", "noise", 0),
    "CGFM": ("cgfm", "control", 0),
    "CGFM w/N": ("cgfm", "noise", 0),
    "MFM w/N (k=10)": ("mfm", "noise", 10),
    "MFM (k=0)": ("mfm", "control", 0),
    "MFM (k=1)": ("mfm", "control", 1),
    "MFM (k=10)": ("mfm", "control", 10),
    "MFM (k=50)": ("mfm", "control", 50),
}
IDENTITY = "identity (noisy source)"
#: The baselines (``tl.baseline`` methods) and their row names.
BASELINES = {
    IDENTITY: "identity",
    "mean shift": "mean_shift",
    "nearest population": "nearest_population",
}
FLOOR = "noise floor (two halves)"
#: The paper's values (Atanackovic et al. 2024, synthetic letters): W1, W2, MMD.
PAPER = {
    ("MFM (k=10)", "train"): (0.088, 0.109, 0.21e-3),
    ("MFM (k=10)", "test X"): (0.201, 0.248, 2.20e-3),
    ("MFM (k=10)", "test Y"): (0.208, 0.252, 3.55e-3),
    ("CGFM", "train"): (0.090, 0.113, 0.25e-3),
    ("CGFM", "test X"): (0.334, 0.407, 5.55e-3),
    ("CGFM", "test Y"): (0.327, 0.405, 6.85e-3),
    ("FM", "train"): (0.209, 0.277, 2.54e-3),
    ("FM", "test X"): (0.234, 0.309, 2.45e-3),
    ("FM", "test Y"): (0.238, 0.316, 3.32e-3),
}


def letters_adata(n_points: int, seed: int):
    adata = mfm.datasets.letters(n_points=n_points, random_state=seed)
    mfm.pp.populations(
        adata, sample_key=["letter", "rotation"], condition_key="condition", control="source"
    )
    mfm.pp.split(adata, by="letter", val=["X"], test=["Y"])
    return adata


def evaluated_populations(adata, args) -> list[str]:
    """Every ``train_every``-th training target population, and all held-out targets."""
    table = adata.uns["mfm"]["populations"]
    targets = table.index[table["condition"] == "target"]
    train = targets[table.loc[targets, "split"] == "train"][:: args.train_every]
    return list(train) + list(targets[table.loc[targets, "split"] != "train"])


def scored(
    adata, pred, name: str, args, seed: int, seconds: float, floor: bool = False
) -> pd.DataFrame:
    metrics = ("w1", "w2", "mmd")
    result = mfm.tl.evaluate(adata, pred, metrics=metrics, floor=floor, max_cells=args.max_cells)
    result["set"] = result["split"].map({"train": "train", "val": "test X", "test": "test Y"})
    result["model"], result["seed"], result["seconds"] = name, seed, seconds
    result["budget"], result["coupling"] = args.budget, args.coupling
    return result


def evaluate_baselines(adata, args, seed: int) -> list[pd.DataFrame]:
    """Scores of every baseline, and the noise floor of the evaluated populations."""
    populations = evaluated_populations(adata, args)
    results = []
    for name, method in BASELINES.items():
        pred = mfm.tl.baseline(adata, method=method, populations=populations, random_state=seed)
        # the floor depends on the observed cells only: computed once, with the identity
        results.append(scored(adata, pred, name, args, seed, 0.0, floor=not results))
    floor = results[0].copy()
    for metric in ("w1", "w2", "mmd"):
        floor[metric] = floor[f"{metric}_floor"]
    floor["model"] = FLOOR
    return [*results, floor]


def evaluate_model(adata, name: str, args, seed: int) -> pd.DataFrame:
    method, source, knn = MODELS[name]
    start = time.perf_counter()
    model = mfm.tl.fit(
        adata,
        method=method,
        source=source,
        knn=knn,
        coupling="independent" if source == "noise" else args.coupling,
        max_steps=args.budget,
        progress=False,
        random_state=seed,
    )
    seconds = time.perf_counter() - start
    pred = mfm.tl.predict(
        adata,
        model,
        populations=evaluated_populations(adata, args),
        solver=args.solver,
        n_steps=args.n_steps,
    )
    print(f"{name} seed {seed}: {seconds:.0f} s", flush=True)
    return scored(adata, pred, name, args, seed, seconds)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    per_seed = results.groupby(["model", "set", "seed"])[["w1", "w2", "mmd", "seconds"]].mean()
    grouped = per_seed.groupby(["model", "set"])
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    rows = []
    for (model, subset), row in mean.iterrows():
        paper = PAPER.get((model, subset))
        spread = std.loc[(model, subset)]
        rows.append(
            {
                "model": model,
                "set": subset,
                "W1": f"{row['w1']:.3f} +- {spread['w1']:.3f}",
                "W2": f"{row['w2']:.3f} +- {spread['w2']:.3f}",
                "MMD": f"{row['mmd']:.2e} +- {spread['mmd']:.2e}",
                "paper W1/W2/MMD": "" if paper is None else f"{paper[0]}/{paper[1]}/{paper[2]:.2e}",
                "train s": f"{row['seconds']:.0f}",
            }
        )
    order = {name: i for i, name in enumerate([FLOOR, *BASELINES, *MODELS])}
    return pd.DataFrame(rows).sort_values(["model", "set"], key=lambda s: s.map(order).fillna(s))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=2000, help="training steps per model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--n-points", type=int, default=1000)
    parser.add_argument("--max-cells", type=int, default=1000)
    parser.add_argument("--train-every", type=int, default=12, help="evaluate every k-th train pop")
    parser.add_argument("--coupling", default="paired", choices=["paired", "independent", "ot"])
    parser.add_argument("--solver", default="dopri5")
    parser.add_argument("--n-steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--save", default=None, help="write the per-population scores (CSV)")
    parser.add_argument(
        "--summarise", nargs="+", default=None, help="train nothing; summarise saved CSVs"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.summarise:
        results = pd.concat([pd.read_csv(path) for path in args.summarise])
        args.seeds = sorted(results["seed"].unique().tolist())
        args.budget, args.coupling = results["budget"].iloc[0], results["coupling"].iloc[0]
    else:
        results = pd.concat(run_all(args))
    if args.save:
        results.to_csv(args.save, index=False)
    table = summarise(results)
    print(f"\nletters, {args.budget} steps, {args.coupling} coupling, seeds {args.seeds}, CPU\n")
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))


def run_all(args) -> list[pd.DataFrame]:
    """Scores of the identity and of every model, for every seed."""
    results = []
    for seed in args.seeds:
        adata = letters_adata(args.n_points, seed)
        results += evaluate_baselines(adata, args, seed)
        results += [evaluate_model(adata, name, args, seed) for name in args.models]
    return results


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
