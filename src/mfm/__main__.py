"""Command line: ``mfm demo``, ``mfm fit``, ``mfm predict`` (or ``python -m mfm ...``).

``mfm fit`` and ``mfm predict`` train on and predict an h5ad file (see `mfm._cli`);
``torchrun --nproc_per_node=N -m mfm fit ...`` trains with DDP.

The demo trains Meta Flow Matching on the letters data, predicts the held-out letters
X (val) and Y (test), prints the metrics beside the identity and mean-shift baselines, FM
and the noise floor (two halves of the observed cells), and writes
``mfm_demo.h5ad`` and ``mfm_demo.png``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

import mfm
from mfm import _keys as K
from mfm._cli import add_fit_command, add_predict_command

logger = logging.getLogger("mfm.demo")


def demo(
    out: Path, *, max_steps: int, n_points: int, device: str, random_state: int
) -> pd.DataFrame:
    """Train FM and MFM on letters, evaluate held-out letters, write an .h5ad and a figure."""
    adata = mfm.datasets.letters(n_points=n_points, random_state=random_state)
    mfm.pp.populations(
        adata, sample_key=["letter", "rotation"], condition_key="condition", control="source"
    )
    mfm.pp.split(adata, by="letter", val=["X"], test=["Y"])
    keys = K.Keys()
    table = adata.uns[keys.uns][keys.populations]
    held_out = table.index[(table[K.SPLIT] != K.TRAIN) & (table[K.CONDITION] == "target")]

    results, pred = (
        [
            mfm.tl.evaluate(adata, mfm.tl.baseline(adata, method=b, populations=held_out))
            for b in ("identity", "mean_shift")
        ],
        None,
    )
    for method in ("fm", "mfm"):
        start = time.perf_counter()
        # each clean point is its noisy point's own target: the paper's paired protocol
        model = mfm.tl.fit(
            adata,
            method=method,
            coupling="paired",
            max_steps=max_steps,
            device=device,
            random_state=random_state,
        )
        logger.info("%s trained in %.0f s", model.label, time.perf_counter() - start)
        pred = mfm.tl.predict(adata, model, populations=held_out)
        results.append(mfm.tl.evaluate(adata, pred))
    model.save(out / "mfm_demo_model", overwrite=True)
    adata.write_h5ad(out / "mfm_demo.h5ad")
    shown = [p for p in held_out if p.startswith(("X|", "Y|"))][:8]
    fig = mfm.pl.predictions(adata, pred, population=shown, show=False, return_fig=True)
    fig.savefig(out / "mfm_demo.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return _summary(pd.concat(results), ["w1", "w2", "mmd", "energy"])


def _summary(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean of each metric per split and method, and a "noise floor" row per split."""
    summary = results.groupby([K.SPLIT, K.METHOD], sort=False)[metrics].mean()
    first = results[results[K.METHOD] == results[K.METHOD].iloc[0]]
    floors = first.groupby(K.SPLIT, sort=False)[[f"{m}_floor" for m in metrics]].mean()
    floors.columns = metrics
    floors.index = pd.MultiIndex.from_product([floors.index, ["noise floor"]])
    return pd.concat([summary, floors]).sort_index(level=0, sort_remaining=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mfm`` command."""
    parser = argparse.ArgumentParser(prog="mfm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train MFM on the letters data and evaluate it")
    run.add_argument("--out", type=Path, default=Path("."), help="output folder")
    run.add_argument("--max-steps", type=int, default=2000, help="training steps per model")
    run.add_argument("--n-points", type=int, default=1000, help="cells per population")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--seed", type=int, default=0, help="random seed")
    add_fit_command(commands)
    add_predict_command(commands)
    args = parser.parse_args(argv)
    mfm.settings.verbosity = "info"  # mfm's handler writes the progress messages to stderr
    if args.command != "demo":
        args.run(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    summary = demo(
        args.out,
        max_steps=args.max_steps,
        n_points=args.n_points,
        device=args.device,
        random_state=args.seed,
    )
    print(summary.to_string(float_format="{:.4g}".format))
    print(f"\nwrote {args.out / 'mfm_demo.h5ad'} and {args.out / 'mfm_demo.png'}")


if __name__ == "__main__":
    main()
