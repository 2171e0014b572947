"""Wasserstein flow matching of MERFISH niches (Moffitt et al. 2018 hypothalamus), as in WFM.

Preprocessing as Haviv et al. (ICML 2025): ``normalize_total``, ``log1p``, PCA with 16
components (``use_rep="X_pca"``); niches of the 16 nearest other cells within each imaging plane
(``library_key="z"``); each niche labelled by the ``Cell_class`` of its centre cell (classes
with fewer than ``--min-class-cells`` cells are left unlabelled: their cells stay in other
niches but centre none). A point-cloud WFM generator is trained for ``--steps`` steps, then as
many niches are generated per class as the tissue has (scaled to ``--n-generated`` in all) and
compared with the real niches by ``mfm.tl.evaluate_niches``; a markdown table is printed. As a
reference, the same metrics compare ``--n-generated`` random real niches (their centres' labels
hidden from the real pool) with the other real niches.

Paper (WFM, Table 3): label accuracy 63.86 % generated vs 62.19 % real, 1-NNA about 53-56 %.

    MFM_DATA_DIR=/work/shared/data python benchmarks/merfish_niches.py            # ~10 min, CPU
    MFM_DATA_DIR=/work/shared/data python benchmarks/merfish_niches.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
import scanpy as sc
import torch
from anndata import AnnData

import mfm

CLASS_KEY = "cell_class"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=3600, help="training steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ot-iter", type=int, default=100, help="Sinkhorn iterations")
    parser.add_argument("--geometry", default="point_cloud", choices=["point_cloud", "gaussian"])
    parser.add_argument("--noise", default="gaussian", choices=["gaussian", "chol_normal"])
    parser.add_argument("--n-generated", type=int, default=2000, help="generated niches")
    parser.add_argument("--gen-steps", type=int, default=50, help="Euler steps of generation")
    parser.add_argument("--max-niches", type=int, default=500, help="per side, in 1-NNA / W2")
    parser.add_argument("--min-class-cells", type=int, default=10)
    parser.add_argument("--knn", type=int, default=15, help="neighbours of the label classifier")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.n_generated, args.max_niches, args.gen_steps = 20, 100, 50, 5
    return args


def prepare(min_class_cells: int):
    """Load, normalise, log, PCA-16; niches of 16 per plane; centre labels of frequent classes."""
    adata = mfm.datasets.moffitt_hypothalamus()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=16, random_state=0)
    counts = adata.obs["Cell_class"].value_counts()
    frequent = counts.index[counts >= min_class_cells]
    labels = adata.obs["Cell_class"].astype(str).where(adata.obs["Cell_class"].isin(frequent))
    adata.obs[CLASS_KEY] = pd.Categorical(labels, categories=[str(c) for c in frequent])
    adata.obs["z"] = adata.obs["z"].astype(str).astype("category")
    mfm.pp.niches(adata, n_neighbors=16, library_key="z", use_rep="X_pca")
    return adata, counts


def generated_counts(adata, model, total: int) -> dict[str, int]:
    """Niches per class in the tissue's proportions, ``total`` in all (at least 1 each)."""
    freq = adata.obs[CLASS_KEY].value_counts(normalize=True).reindex(model.config.conditions)
    return {c: max(1, round(total * f)) for c, f in freq.items()}


def real_reference(adata, total: int, args) -> pd.DataFrame:
    """The metrics of ``total`` random real niches posing as generated, against the others."""
    rng = np.random.default_rng(args.seed)
    held = rng.choice(np.flatnonzero(adata.obs[CLASS_KEY].notna()), total, replace=False)
    indices = adata.obsm["niche_indices"][held]
    points = adata.obsm["X_pca"][indices].reshape(-1, adata.obsm["X_pca"].shape[1])
    niche = np.repeat(np.arange(total), indices.shape[1])
    obs = pd.DataFrame(
        {
            "niche": pd.Categorical(niche.astype(str)),
            CLASS_KEY: adata.obs[CLASS_KEY].to_numpy()[held][niche],
        },
        index=[f"p{i}" for i in range(len(points))],
    )
    names = [f"X_pca_{i}" for i in range(points.shape[1])]
    posing = AnnData(points.astype(np.float32), obs=obs, var=pd.DataFrame(index=names))
    posing.uns["niche"] = {"params": {"condition_key": CLASS_KEY, "use_rep": "X_pca"}}
    pool = adata.copy()
    pool.obs.loc[pool.obs_names[held], CLASS_KEY] = np.nan  # no longer centres of real niches
    return mfm.tl.evaluate_niches(
        pool, posing, max_niches=args.max_niches, n_neighbors=args.knn, random_state=args.seed
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)  # rare classes, NaN centres

    start = time.perf_counter()
    adata, counts = prepare(args.min_class_cells)
    prep_time = time.perf_counter() - start

    start = time.perf_counter()
    model = mfm.tl.fit_niches(
        adata,
        condition_key=CLASS_KEY,
        geometry=args.geometry,
        noise=args.noise,
        hidden=args.hidden,
        n_layers=args.n_layers,
        ot_iter=args.ot_iter,
        batch_size=args.batch_size,
        max_steps=args.steps,
        lr=args.lr,
        device=args.device,
        random_state=args.seed,
        progress=False,
    )
    train_time = time.perf_counter() - start

    start = time.perf_counter()
    generated = mfm.tl.generate_niches(
        model,
        n_per_condition=generated_counts(adata, model, args.n_generated),
        n_steps=args.gen_steps,
        random_state=args.seed,
    )
    gen_time = time.perf_counter() - start

    start = time.perf_counter()
    table = mfm.tl.evaluate_niches(
        adata, generated, max_niches=args.max_niches, n_neighbors=args.knn, random_state=args.seed
    )
    eval_time = time.perf_counter() - start
    reference = real_reference(adata, args.n_generated, args)

    times = (prep_time, train_time, gen_time, eval_time)
    report(args, adata, counts, model, table, reference.loc["all"], times)


def report(args, adata, counts, model, table, real, times) -> None:
    prep_time, train_time, gen_time, eval_time = times
    overall = table.loc["all"]
    history = adata.uns["niche"]["history"]
    dropped = counts.index[counts < args.min_class_cells].tolist()
    print(f"# MERFISH niches: WFM {args.geometry}, noise={args.noise}")
    print()
    print(
        f"{adata.n_obs} cells, {len(model.config.conditions)} classes "
        f"(unlabelled: {dropped}), niches of 16 in X_pca (16 PCs); "
        f"{args.steps} steps x {args.batch_size} niches, hidden {args.hidden}, "
        f"{args.n_layers} layers, Sinkhorn {args.ot_iter} iterations, "
        f"{torch.get_num_threads()} CPU thread(s), device {model.device}; "
        f"final train loss {history['train_loss'].iloc[-1]:.4f}"
    )
    print()
    print("| metric | mfm | real vs real | WFM paper |")
    print("| --- | --- | --- | --- |")
    print(
        f"| label accuracy, generated | {overall['label_accuracy']:.2%} | "
        f"{real['label_accuracy']:.2%} | 63.86% |"
    )
    print(
        f"| label accuracy, real (5-fold CV) | {overall['label_accuracy_real']:.2%} | "
        f"{real['label_accuracy_real']:.2%} | 62.19% |"
    )
    majority = adata.obs[CLASS_KEY].value_counts(normalize=True).iloc[0]
    print(f"| majority class share, real | {majority:.2%} | | |")
    print(
        f"| 1-NN accuracy (W2, {int(overall['n_real'])} per side) | "
        f"{overall['one_nn_accuracy']:.2%} | {real['one_nn_accuracy']:.2%} | ~53-56% |"
    )
    print(f"| W2 between niche sets | {overall['w2']:.3f} | {real['w2']:.3f} | |")
    print(
        f"| training time | {train_time:.0f} s ({1000 * train_time / args.steps:.0f} ms/step) | | |"
    )
    print(
        f"| generation ({args.n_generated} niches, {args.gen_steps} steps) | {gen_time:.0f} s | | |"
    )
    print(f"| evaluation | {eval_time:.0f} s | | |")
    print(f"| preprocessing | {prep_time:.0f} s | | |")
    print()
    print("Per class (1-NNA and W2 on the balanced subsample):")
    print()
    per_class = table.drop(index="all")[["n_real", "one_nn_accuracy", "w2"]]
    print(per_class.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
