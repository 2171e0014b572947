"""Held-out patients of the Bodenmiller 2012 BCR-XL data: identity, mean shift, FM, CGFM, MFM.

Populations are patient x condition (``--clusters 0``) or patient x cell-type cluster x
condition, clusters found by k-means on the 10 ``type`` markers of all cells (unsupervised, so
no label leaks from held-out patients). Leave-``--test``-patients-out folds; the table is the
mean over folds and held-out populations of W1, W2, MMD and r2 (of the means).

Usage: ``MFM_DATA_DIR=../shared/data python benchmarks/bcrxl_table.py --clusters 8 --folds 4``
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from sklearn.cluster import KMeans

import mfm

METHODS = ("fm", "cgfm", "mfm")


def load(n_clusters: int, random_state: int):
    adata = mfm.datasets.bodenmiller_bcrxl()
    sample_key = ["patient_id"]
    if n_clusters:
        types = adata.var_names[adata.var["marker_class"] == "type"]
        x = adata[:, types].layers["arcsinh5"]
        labels = KMeans(n_clusters, n_init=4, random_state=random_state).fit_predict(x)
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


def run_fold(adata, test, args) -> list[pd.DataFrame]:
    mfm.pp.split(adata, by="patient_id", test=test)
    table = adata.uns["mfm"]["populations"]
    held_out = table.index[(table["split"] == "test") & (table["condition"] != "Ref")]
    results = [
        mfm.tl.evaluate(adata, mfm.tl.baseline(adata, method=b, populations=held_out))
        for b in ("identity", "mean_shift")
    ]
    for method in args.methods:
        start = time.perf_counter()
        model = mfm.tl.fit(
            adata,
            method=method,
            max_steps=args.steps,
            knn=args.knn,
            cells_per_population=args.cells,
            batch_populations=args.batch,
            progress=False,
            random_state=args.seed,
        )
        pred = mfm.tl.predict(adata, model, populations=held_out)
        results.append(mfm.tl.evaluate(adata, pred))
        print(f"  {model.label}: {time.perf_counter() - start:.0f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--test", type=int, default=2, help="held-out patients per fold")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--knn", type=int, default=10)
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    adata = load(args.clusters, args.seed)
    patients = sorted(adata.obs["patient_id"].unique())
    folds = [patients[i : i + args.test] for i in range(0, len(patients), args.test)]
    results = []
    for fold in folds[: args.folds]:
        print(f"fold: test patients {fold}", flush=True)
        results += run_fold(adata, fold, args)
    table = pd.concat(results).groupby("method", sort=False)[["w1", "w2", "mmd", "r2"]].mean()
    print(
        f"\nBCR-XL, held-out patients ({len(folds[: args.folds])} folds x {args.test}), "
        f"{args.clusters or 'no'} clusters, {args.steps} steps, seed {args.seed}\n"
    )
    print(table.to_string(float_format="{:.4g}".format))


if __name__ == "__main__":
    main()
