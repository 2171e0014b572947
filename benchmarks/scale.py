"""Time and peak memory of the whole population workflow on a simulated screen of N cells on disk.

Writes ``mfm.datasets.organoid_screen`` data of ``--cells`` cells x 40 markers to an h5ad file
patient by patient (the simulator never holds more than one patient: 24 populations), then
runs each stage in a fresh process on that file read with ``backed="r"``:

- ``read``: ``anndata.read_h5ad(backed="r")``;
- ``pp``: read, ``mfm.pp.populations`` + ``mfm.pp.split`` (last two patients test, the one
  before val);
- ``fit``: read, pp, ``mfm.tl.fit`` for ``--steps`` steps (fixed; defaults otherwise), saved;
- ``predict``: read, pp, load, ``mfm.tl.predict`` of every test population with
  ``out=pred.h5ad``;
- ``evaluate``: read, pp, ``mfm.tl.evaluate`` of that prediction (W1, MMD, energy; 1000-cell
  subsamples).

Each stage reports its own wall time (the read and pp before it excluded), the peak RSS of
its process (``resource.getrusage``) and the peak's growth over the process's RSS after
``import mfm``. Steps/s and cells/s are of the stage itself.

    python benchmarks/scale.py --cells 1000000 --dir /tmp/scale
    python benchmarks/scale.py --cells 200000 --steps 20      # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("read", "pp", "fit", "predict", "evaluate")
#: Stages run in child processes (the writer too, so the parent stays small).
CHILD_STAGES = ("write", *STAGES)
#: Populations per patient of the simulator: 3 cultures x 2 replicates x (control + 3 drugs).
POPULATIONS_PER_PATIENT = 24


def _rss_mb() -> float:
    """Current resident set size (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak resident set size (MB) of this process.

    ``VmHWM`` of /proc/self/status where there is one: Linux carries ``ru_maxrss`` across
    ``execve``, so a child process started by a large parent would report the parent's
    peak; the high-water mark of the process's own memory map starts afresh.
    """
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_screen(path: Path, n_cells: int, cells_per_population: int, seed: int) -> dict:
    """Write the simulated screen patient by patient; returns its size."""
    import anndata as ad
    import h5py
    import pandas as pd
    from anndata.io import write_elem

    import mfm

    n_patients = max(4, round(n_cells / (POPULATIONS_PER_PATIENT * cells_per_population)))
    per_population = max(50, round(n_cells / (POPULATIONS_PER_PATIENT * n_patients)))
    total = n_patients * POPULATIONS_PER_PATIENT * per_population
    columns = ["patient", "culture", "replicate", "treatment"]
    codes = {c: np.empty(total, dtype=np.int16) for c in columns}
    categories: dict[str, list[str]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        file.attrs["encoding-type"], file.attrs["encoding-version"] = "anndata", "0.1.0"
        x = None
        start = 0
        for p in range(n_patients):
            chunk = mfm.datasets.organoid_screen(
                n_patients=1, n_cells=per_population, random_state=np.random.default_rng([seed, p])
            )
            if x is None:
                shape = (total, chunk.n_vars)
                x = file.create_dataset("X", shape=shape, dtype=np.float32, chunks=(4096, shape[1]))
                x.attrs["encoding-type"], x.attrs["encoding-version"] = "array", "0.2.0"
                var = chunk.var.copy()
                categories = {c: list(chunk.obs[c].cat.categories) for c in columns[1:]}
                categories["patient"] = [f"P{q + 1:03d}" for q in range(n_patients)]
            stop = start + chunk.n_obs
            x[start:stop] = np.asarray(chunk.X, dtype=np.float32)
            codes["patient"][start:stop] = p
            for c in columns[1:]:
                codes[c][start:stop] = chunk.obs[c].cat.codes.to_numpy()
            start = stop
            del chunk
        _write_obs(file, {c: pd.Categorical.from_codes(codes[c], categories[c]) for c in columns})
        write_elem(file, "var", var)
        for name in ("uns", "obsm", "varm", "obsp", "varp", "layers"):
            write_elem(file, name, {})
    ad.read_h5ad(path, backed="r").file.close()  # readable
    return {"cells": total, "patients": n_patients, "cells_per_population": per_population}


def _write_obs(file, columns: dict, block: int = 1_000_000) -> None:
    """``obs`` of categorical columns and names ``c0, c1, ...``, the names in blocks."""
    import h5py
    from anndata.io import write_elem

    total = len(next(iter(columns.values())))
    obs = file.create_group("obs")
    obs.attrs["encoding-type"], obs.attrs["encoding-version"] = "dataframe", "0.2.0"
    obs.attrs["_index"], obs.attrs["column-order"] = "_index", list(columns)
    index = obs.create_dataset("_index", shape=(total,), dtype=h5py.string_dtype())
    index.attrs["encoding-type"], index.attrs["encoding-version"] = "string-array", "0.2.0"
    for start in range(0, total, block):
        stop = min(total, start + block)
        index[start:stop] = [f"c{i}" for i in range(start, stop)]
    for name, values in columns.items():
        write_elem(obs, name, values)


def _prepare(path: Path):
    import anndata as ad

    import mfm

    adata = ad.read_h5ad(path, backed="r")
    patients = list(adata.obs["patient"].cat.categories)
    mfm.pp.populations(
        adata,
        sample_key=["patient", "culture", "replicate"],
        condition_key="treatment",
        control="control",
    )
    mfm.pp.split(adata, by="patient", test=patients[-2:], val=patients[-3:-2])
    return adata


def run_stage(stage: str, args) -> dict:
    """One stage in this process; returns its seconds, counts and memory."""
    import torch

    import mfm

    torch.set_num_threads(args.threads)
    base = _rss_mb()
    path, out = args.dir / "screen.h5ad", args.dir
    result: dict = {"stage": stage, "rss_after_import_mb": base}
    if stage == "read":
        import anndata as ad

        start = time.perf_counter()
        adata = ad.read_h5ad(path, backed="r")
        result["seconds"] = time.perf_counter() - start
        result["cells"] = adata.n_obs
    elif stage == "pp":
        start = time.perf_counter()
        adata = _prepare(path)
        result["seconds"] = time.perf_counter() - start
        result["populations"] = len(adata.uns["mfm"]["populations"])
    else:
        adata = _prepare(path)
        start = time.perf_counter()
        if stage == "fit":
            model = mfm.tl.fit(
                adata, max_steps=args.steps, val_every=max(1, args.steps // 4),
                device=args.device, progress=False,
            )  # fmt: skip
            result["seconds"] = time.perf_counter() - start
            result["steps_per_s"] = args.steps / result["seconds"]
            model.save(out / "model", overwrite=True)
        elif stage == "predict":
            model = mfm.tl.load(out / "model", device=args.device)
            table = adata.uns["mfm"]["populations"]
            test = table.index[(table["split"] == "test") & (table["condition"] != "control")]
            pred = mfm.tl.predict(adata, model, populations=list(test), out=out / "pred.h5ad")
            result["seconds"] = time.perf_counter() - start
            result["cells"] = pred.n_obs
            result["cells_per_s"] = pred.n_obs / result["seconds"]
        elif stage == "evaluate":
            import anndata as ad

            pred = ad.read_h5ad(out / "pred.h5ad", backed="r")
            scores = mfm.tl.evaluate(
                adata, pred, metrics=("w1", "mmd", "energy"), max_cells=1000, floor=False
            )
            result["seconds"] = time.perf_counter() - start
            result["w1"] = float(scores["w1"].mean())
            result["populations"] = len(scores)
    result["peak_rss_mb"] = _peak_mb()
    result["growth_mb"] = result["peak_rss_mb"] - base
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--cells-per-population", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=100, help="training steps (fixed)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/scale"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    parser.add_argument("--stage", choices=CHILD_STAGES, help=argparse.SUPPRESS)  # children
    args = parser.parse_args(argv)
    if args.stage == "write":
        start = time.perf_counter()
        size = write_screen(
            args.dir / "screen.h5ad", args.cells, args.cells_per_population, args.seed
        )
        size |= {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_mb()}
        print(json.dumps(size))
        return
    if args.stage:
        print(json.dumps(run_stage(args.stage, args)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    size = _child("write", args)
    gb = (args.dir / "screen.h5ad").stat().st_size / 1e9
    print(
        f"wrote {size['cells']:,} cells x 40 markers ({size['patients']} patients, "
        f"{size['patients'] * POPULATIONS_PER_PATIENT} populations of "
        f"{size['cells_per_population']:,} cells; {gb:.2f} GB) in "
        f"{size['seconds']:.0f} s, peak RSS {size['peak_rss_mb']:,.0f} MB\n"
    )
    rows = [_child(stage, args) for stage in STAGES]
    print("| stage | seconds | rate | peak RSS (MB) | growth over import (MB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        rate = ""
        if "steps_per_s" in row:
            rate = f"{row['steps_per_s']:.1f} steps/s"
        elif "cells_per_s" in row:
            rate = f"{row['cells_per_s']:,.0f} cells/s ({row['cells']:,} cells)"
        elif "w1" in row:
            rate = f"{row['populations']} populations, mean W1 {row['w1']:.3f}"
        print(
            f"| {row['stage']} | {row['seconds']:.1f} | {rate} | {row['peak_rss_mb']:,.0f} | "
            f"{row['growth_mb']:,.0f} |"
        )
    print(f"\nimport mfm: {rows[0]['rss_after_import_mb']:,.0f} MB RSS")
    if not args.keep:
        for name in ("screen.h5ad", "pred.h5ad"):
            (args.dir / name).unlink(missing_ok=True)


def _child(stage: str, args) -> dict:
    """Run ``stage`` in a fresh process; its JSON result."""
    command = [
        sys.executable, __file__, "--stage", stage, "--dir", str(args.dir),
        "--steps", str(args.steps), "--device", args.device, "--threads", str(args.threads),
        "--cells", str(args.cells), "--cells-per-population", str(args.cells_per_population),
        "--seed", str(args.seed),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit(f"stage {stage} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
