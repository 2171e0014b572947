"""Held-out patients of the Bodenmiller 2012 BCR-XL data: every baseline, FM, CGFM and MFM.

Populations are patient x condition (``--clusters 0``) or patient x cell-type cluster x
condition, clusters found by k-means on the 10 ``type`` markers of all cells (unsupervised, so
no label leaks from held-out patients). Leave-``--test``-patients-out folds. Every method runs
at ``mfm.tl.fit``'s defaults but for ``--steps``; the baselines are learned on the training
patients of each fold: the treatment-wide mean shift, the per-cluster mean shift, and the
response of the nearest training population (energy distance between controls). The table is
the mean over folds and held-out populations of W1, W2, MMD, energy distance and r2 of the
means, as mean +- std over seeds, with the noise floor (each metric between two halves of the
observed stimulated cells; MMD and energy rescaled to the prediction's size, W1/W2 at half
size, an upper estimate), and the share of held-out populations on which MFM beats each
other method on energy distance.

Usage: ``MFM_DATA_DIR=../shared/data python benchmarks/bcrxl_table.py --clusters 8 --seeds 0 1 2``
(``--save`` writes the per-population scores; ``--summarise a.csv b.csv`` tabulates saved runs,
e.g. seeds run in parallel processes). ``--train 2`` trains on two patients per fold and tests
on the other six (a screen with few donors); ``--fit lr=1e-3 coupling='"ot"'`` passes options
to ``mfm.tl.fit``, to measure a default before changing it.
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
import pandas as pd
import torch
from _common import print_table
from sklearn.cluster import KMeans

import mfm

METHODS = ("fm", "cgfm", "mfm")
METRICS = ("w1", "w2", "mmd", "energy", "r2")
FLOOR = "noise floor"


def load(n_clusters: int):
    """BCR-XL after ``pp.populations`` (per patient, or per patient x k-means cluster)."""
    adata = mfm.datasets.bodenmiller_bcrxl()
    sample_key = ["patient_id"]
    if n_clusters:
        types = adata.var_names[adata.var["marker_class"] == "type"]
        x = adata[:, types].layers["arcsinh5"]
        labels = KMeans(n_clusters, n_init=4, random_state=0).fit_predict(x)
        adata.obs["cluster"] = pd.Categorical([f"c{c}" for c in labels])
        sample_key.append("cluster")
    mfm.pp.populations(
        adata,
        sample_key=sample_key,
        condition_key="condition",
        control="Ref",
        use_rep="arcsinh5",
        min_cells=20,
    )
    return adata


def baselines(adata, held_out, clustered: bool, seed: int) -> list:
    """Predictions of every baseline for the held-out populations."""
    kw = {"populations": held_out, "random_state": seed}
    preds = [
        mfm.tl.baseline(adata, method="identity", **kw),
        mfm.tl.baseline(adata, method="mean_shift", **kw),
        mfm.tl.baseline(adata, method="nearest_population", **kw),
    ]
    if clustered:
        preds.append(mfm.tl.baseline(adata, method="mean_shift", groupby="cluster", **kw))
    return preds


def run_fold(adata, test: list[str], seed: int, args) -> pd.DataFrame:
    """Scores of every baseline and method on the held-out patients ``test``."""
    mfm.pp.split(adata, by="patient_id", test=test)
    table = adata.uns["mfm"]["populations"]
    held_out = table.index[(table["split"] == "test") & (table["condition"] != "Ref")]
    preds = baselines(adata, held_out, args.clusters > 0, seed)
    for method in args.methods:
        start = time.perf_counter()
        model = mfm.tl.fit(
            adata,
            method=method,
            max_steps=args.steps,
            progress=False,
            random_state=seed,
            **args.fit,
        )
        # dopri5, as when the README's table was measured (tl.predict's default is now midpoint)
        preds.append(mfm.tl.predict(adata, model, populations=held_out, solver="dopri5"))
        kept = adata.uns["mfm"]["params"]["fit"]["kept_step"]
        print(f"  seed {seed} {model.label}: {time.perf_counter() - start:.0f} s, kept step {kept}")
    # the floor depends on the observed cells only: computed once, with the first prediction
    scores = [
        mfm.tl.evaluate(adata, pred, metrics=METRICS, floor=i == 0, random_state=seed)
        for i, pred in enumerate(preds)
    ]
    result = pd.concat(scores, ignore_index=True)
    result["seed"], result["fold"] = seed, "+".join(test)
    return result


def summarise(results: pd.DataFrame, reference: str = "MFM") -> pd.DataFrame:
    """Mean +- std over seeds of the per-seed means; the floor row; MFM's energy win share."""
    per_seed = results.groupby(["method", "seed"], sort=False)[list(METRICS)].mean()
    mean = per_seed.groupby("method", sort=False).mean()
    std = per_seed.groupby("method", sort=False).std().fillna(0.0)
    table = mean.map("{:.4g}".format) + " ± " + std.map("{:.2g}".format)
    first = results[results["method"] == results["method"].iloc[0]]
    floors = [first[f"{m}_floor"].mean() for m in METRICS]
    table.loc[FLOOR] = [f"{v:.4g}" for v in floors]
    if reference in set(results["method"]):
        table[f"{reference} better (energy)"] = _win_share(results, reference)
    return table.fillna("")


def _win_share(results: pd.DataFrame, reference: str) -> pd.Series:
    """Share of (seed, population) on which ``reference`` has the lower energy distance."""
    wide = results.pivot_table(index=["seed", "population"], columns="method", values="energy")
    share = {m: f"{(wide[reference] < wide[m]).mean():.0%}" for m in wide if m != reference}
    return pd.Series(share).reindex(pd.unique(results["method"])).fillna("")


def _folds(patients: list[str], n_test: int, n_train: int | None) -> list[list[str]]:
    """Held-out patients of each fold: consecutive groups of ``n_test``, or everyone but
    consecutive groups of ``n_train`` training patients."""
    if n_train is None:
        return [patients[i : i + n_test] for i in range(0, len(patients), n_test)]
    groups = [patients[i : i + n_train] for i in range(0, len(patients), n_train)]
    return [[p for p in patients if p not in group] for group in groups]


def _fit_option(option: str) -> tuple[str, object]:
    """``"name=value"`` with the value parsed as a Python literal where it is one."""
    name, _, value = option.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=8, help="0: populations per patient")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--test", type=int, default=2, help="held-out patients per fold")
    parser.add_argument(
        "--train",
        type=int,
        default=None,
        help="training patients per fold instead (all others held out): few-donor screens",
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--fit",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="options of mfm.tl.fit (e.g. lr=1e-3 coupling=ot), for measuring defaults",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--save", default=None, help="write the per-population scores (CSV)")
    parser.add_argument("--summarise", nargs="+", default=None, help="tabulate saved CSVs")
    args = parser.parse_args()
    args.fit = dict(_fit_option(option) for option in args.fit)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.summarise:
        results = pd.concat([pd.read_csv(path) for path in args.summarise], ignore_index=True)
    else:
        adata = load(args.clusters)
        folds = _folds(sorted(adata.obs["patient_id"].unique()), args.test, args.train)
        results = []
        for seed in args.seeds:
            for fold in folds[: args.folds]:
                print(f"seed {seed}, test patients {fold}", flush=True)
                results.append(run_fold(adata, fold, seed, args))
        results = pd.concat(results, ignore_index=True)
        if args.save:
            results.to_csv(args.save, index=False)
    seeds = sorted(int(s) for s in results["seed"].unique())
    print(f"\nBCR-XL held-out patients, {results['fold'].nunique()} folds, seeds {seeds}\n")
    table = summarise(results)
    rows = [[name, *values] for name, values in zip(table.index, table.to_numpy(), strict=True)]
    print_table(["method", *table.columns], rows, "l" + "r" * len(table.columns))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
