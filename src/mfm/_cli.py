"""The ``mfm fit`` and ``mfm predict`` commands (``python -m mfm``, ``torchrun -m mfm``).

``mfm fit`` reads an h5ad file, defines the populations (`mfm.pp.populations`), splits them
(`mfm.pp.split`), trains (`mfm.tl.fit`) and saves the model (``model.save``). Every keyword
option of `mfm.tl.fit` is an option of the command, read from its signature and docstring, so
the command follows the function. Launched by ``torchrun --nproc_per_node=N -m mfm fit ...``,
it joins the process group (gloo on CPU, nccl on GPU, one GPU per local rank) and the trainer
averages the gradients of the ranks (DDP); rank 0 writes the model.

``mfm predict`` reads the data and a saved model, defines the populations with the model's
sample/condition keys when the file has none, and writes the prediction (`mfm.tl.predict`).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import torch

import mfm

from . import _keys as K

logger = logging.getLogger("mfm.cli")

#: `mfm.tl.fit` parameters that are not command options (set by the command itself).
FIT_FIXED = ("adata", "key_added", "progress")


def add_fit_command(commands: argparse._SubParsersAction) -> None:
    """Register ``mfm fit``."""
    parser = commands.add_parser(
        "fit",
        help="define populations, split, train a model and save it (torchrun: DDP)",
        description="Train a model on an h5ad file and save it (see `mfm.tl.fit`).",
    )
    parser.add_argument("data", type=Path, help="h5ad file of cells")
    _add_population_options(parser)
    parser.add_argument("--split-by", nargs="+", help="obs column(s) of the split (pp.split)")
    parser.add_argument("--test", nargs="+", default=[], help="test values of --split-by")
    parser.add_argument("--val", nargs="+", default=[], help="validation values of --split-by")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace a saved model at --out")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument(
        "--backed", action="store_true", help="read the data with backed='r' (out of core)"
    )
    options = parser.add_argument_group("options of mfm.tl.fit")
    for name, add in _function_options(mfm.tl.fit, FIT_FIXED).items():
        add(options, name)
    parser.set_defaults(run=run_fit)


def add_predict_command(commands: argparse._SubParsersAction) -> None:
    """Register ``mfm predict``."""
    parser = commands.add_parser(
        "predict",
        help="predict treated populations with a saved model, write an h5ad",
        description="Predict with a saved model and write the prediction (see `mfm.tl.predict`).",
    )
    parser.add_argument("data", type=Path, help="h5ad file of cells")
    parser.add_argument("model", type=Path, help="model directory written by `mfm fit`")
    parser.add_argument("--out", type=Path, required=True, help="h5ad file of predicted cells")
    parser.add_argument(
        "--populations",
        nargs="+",
        help="population ids to predict (default: every treated population of a trained "
        "treatment, or of the --test values of --split-by)",
    )
    parser.add_argument("--split-by", nargs="+", help="obs column(s) of the split (pp.split)")
    parser.add_argument("--test", nargs="+", default=[], help="predict the populations of these")
    parser.add_argument("--min-cells", type=int, default=50, help="see mfm.pp.populations")
    parser.add_argument("--solver", default="midpoint", help="midpoint, rk4, euler or dopri5")
    parser.add_argument("--n-steps", type=int, default=None, help="steps of fixed-step solvers")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="cells per batched solve (8192 CPU, 65536 GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--random-state", type=int, default=0, help="seed")
    parser.add_argument("--key-added", default="mfm", help="key of the populations")
    parser.add_argument(
        "--backed", action="store_true", help="read the data with backed='r' (out of core)"
    )
    parser.set_defaults(run=run_predict)


def run_fit(args: argparse.Namespace) -> None:
    """Read, define populations, split, train; rank 0 saves the model."""
    rank, world, device = _join_process_group(getattr(args, "device", "auto"))
    try:
        adata = ad.read_h5ad(args.data, backed="r" if args.backed else None)
        _populations(adata, args)
        if args.split_by:
            mfm.pp.split(adata, by=args.split_by, test=args.test, val=args.val)
        options = {
            name: getattr(args, name)
            for name in _function_options(mfm.tl.fit, FIT_FIXED)
            if hasattr(args, name)
        }
        if device is not None:
            options["device"] = device
        model = mfm.tl.fit(adata, **options, progress=args.progress and rank == 0)
        if rank == 0:
            model.save(args.out, overwrite=args.overwrite)
            keys = K.Keys()  # `mfm fit` keeps the default `key_added`
            kept = adata.uns[keys.uns][keys.history]
            logger.info("wrote %s (%d ranks; last rows of the history:)", args.out, world)
            logger.info("%s", kept.tail(3).to_string(index=False))
        if world > 1:
            torch.distributed.barrier()
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def run_predict(args: argparse.Namespace) -> None:
    """Read the data and the model, define populations if needed, predict and write."""
    if int(os.environ.get("RANK", "0")) != 0:
        return  # prediction is not distributed: one writer
    model = mfm.tl.load(args.model, device=args.device)
    adata = ad.read_h5ad(args.data, backed="r" if args.backed else None)
    keys = K.Keys(args.key_added)
    if keys.populations not in adata.uns.get(keys.uns, {}):
        config = model.config
        mfm.pp.populations(
            adata,
            sample_key=config.sample_key,
            condition_key=config.condition_key,
            control=config.control,
            use_rep=None if config.use_rep == "X" else config.use_rep,
            min_cells=args.min_cells,
            key_added=args.key_added,
        )
    table = adata.uns[keys.uns][keys.populations]
    populations = args.populations
    if populations is None:
        chosen = table[K.CONDITION].astype(str).isin(model.config.treatments)
        if args.split_by:
            mfm.pp.split(adata, by=args.split_by, test=args.test, key_added=args.key_added)
            table = adata.uns[keys.uns][keys.populations]
            chosen &= table[K.SPLIT].astype(str) == K.TEST
        populations = table.index[chosen].tolist()
    pred = mfm.tl.predict(
        adata,
        model,
        populations=populations,
        solver=args.solver,
        n_steps=args.n_steps,
        chunk_size=args.chunk_size,
        random_state=args.random_state,
        out=args.out,  # written population by population
        key_added=args.key_added,
    )
    logger.info(
        "wrote %s: %d predicted cells of %d populations", args.out, pred.n_obs, len(populations)
    )


def _add_population_options(parser: argparse.ArgumentParser) -> None:
    """Options of `mfm.pp.populations`."""
    parser.add_argument(
        "--sample-key", nargs="+", required=True, help="obs column(s) naming the sample"
    )
    parser.add_argument("--condition-key", required=True, help="obs column of the condition")
    parser.add_argument("--control", required=True, help="the control value of --condition-key")
    parser.add_argument("--use-rep", default=None, help="layer or obsm key (default: X)")
    parser.add_argument("--min-cells", type=int, default=50, help="smallest population kept")


def _populations(adata: ad.AnnData, args: argparse.Namespace) -> None:
    mfm.pp.populations(
        adata,
        sample_key=args.sample_key,
        condition_key=args.condition_key,
        control=args.control,
        use_rep=args.use_rep,
        min_cells=args.min_cells,
    )


def _join_process_group(device: str) -> tuple[int, int, str | None]:
    """Under torchrun (``WORLD_SIZE`` > 1) initialise torch.distributed; rank, world, device.

    The backend is nccl when the ranks train on GPUs (one per local rank), gloo on the CPU.
    Returns ``device=None`` (keep the option) without torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, None
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    rank = torch.distributed.get_rank()
    logger.info("rank %d of %d on %s", rank, world, device)
    return rank, world, device


def _function_options(
    function: Callable, fixed: tuple[str, ...]
) -> dict[str, Callable[[argparse._ArgumentGroup, str], None]]:
    """Keyword parameters of ``function`` -> adder of the matching ``--option``.

    Types come from the default and the annotation (``int``, ``float``, ``str``, ``None``,
    booleans as ``--x/--no-x``), the help from the numpy docstring. Options not given are
    not passed, so the function's own defaults apply.
    """
    docs = _parameter_docs(function.__doc__ or "")
    adders = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in fixed or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        annotation = str(parameter.annotation)
        default = parameter.default
        help_text = f"{docs.get(name, '')} (default: {default})"

        def add(group, name=name, default=default, annotation=annotation, help_text=help_text):
            flag = "--" + name.replace("_", "-")
            if isinstance(default, bool):
                group.add_argument(
                    flag,
                    action=argparse.BooleanOptionalAction,
                    default=argparse.SUPPRESS,
                    help=help_text,
                )
                return
            group.add_argument(
                flag,
                type=_value_parser(annotation, default),
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=help_text,
            )

        adders[name] = add
    return adders


def _value_parser(annotation: str, default: object) -> Callable[[str], object]:
    """Parse a command-line value as the annotation allows: ``none``, int, float, else text."""
    types = set(re.findall(r"\b(int|float|None)\b", annotation))
    if isinstance(default, int):
        types.add("int")
    elif isinstance(default, float):
        types.add("float")
    numbers_only = types & {"int", "float"} and not re.search(
        r"\b(str|Literal|Path|Device)\b", annotation
    )

    def parse(text: str) -> object:
        if "None" in types and text.lower() == "none":
            return None
        for name, kind in (("int", int), ("float", float)):
            if name in types:
                try:
                    return kind(text)
                except ValueError:
                    pass
        if numbers_only:
            msg = f"expected {' or '.join(sorted(types))}, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return text

    return parse


def _parameter_docs(docstring: str) -> dict[str, str]:
    """First sentence of each parameter's description in a numpy docstring."""
    lines = inspect.cleandoc(docstring).splitlines()
    if "Parameters" not in lines:
        return {}
    docs: dict[str, str] = {}
    name = None
    for line in lines[lines.index("Parameters") + 2 :]:
        if line.strip() and set(line.strip()) == {"-"}:
            docs.pop(name, None)  # the title of the next section
            break
        if line.strip() and not line.startswith(" "):
            name = line.strip()
            docs[name] = ""
        elif name is not None and line.strip():
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    return {k: v.split(". ")[0].rstrip(".").replace("%", "%%") for k, v in docs.items()}
