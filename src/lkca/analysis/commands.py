"""The analysis commands: ``lkca erf``, ``lkca kernels``, ``lkca plot``, ``lkca tables``.

Imports only argparse at module level (the CLI loads it for every command); torch, the data and
matplotlib are imported inside each command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


class _AppendSource(argparse.Action):
    """``--model NAME`` and ``--checkpoint PATH`` both append to ``args.sources`` in command-line
    order, so the ERF panels come out in the order they were asked for."""

    def __call__(self, parser, namespace, value, option_string=None):
        sources = list(getattr(namespace, "sources", None) or [])
        sources.append((self.dest, value))  # ("model" | "checkpoint", value)
        namespace.sources = sources


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``erf``, ``kernels``, ``plot`` and ``tables`` sub-commands."""
    p = sub.add_parser("erf", help="effective receptive fields of models, side by side, to a PNG")
    p.set_defaults(func=_cmd_erf, sources=None)
    p.add_argument("--model", action=_AppendSource, metavar="NAME",
                   help="a registered model at init (seeded); repeat for several")
    p.add_argument("--checkpoint", action=_AppendSource, metavar="PATH",
                   help="a trained model: run directory or .safetensors / .pt; repeatable")
    p.add_argument("--dataset", help="images to average over (default: the checkpoint's data set, "
                                     "else digits)")
    p.add_argument("--data-dir", help="folder holding the data set as distributed")
    p.add_argument("--num-images", type=int, default=64, help="test images averaged (default 64)")
    p.add_argument("--img-size", type=int, help="input side for --model (default: the data set's)")
    p.add_argument("--with-init", action="store_true",
                   help="beside each --checkpoint, the same architecture at init (seeded)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for --model")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", default="erf.png", help="PNG to write (default erf.png)")

    p = sub.add_parser("kernels", help="every block's LKCA kernels, every head, as heat maps")
    p.set_defaults(func=_cmd_kernels)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="run directory or .safetensors / .pt file")
    source.add_argument("--model", help="a registered model: its (seeded) initial kernels")
    p.add_argument("--img-size", type=int, help="input side for --model (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for --model")
    p.add_argument("--out", default="kernels.png", help="PNG to write (default kernels.png)")

    p = sub.add_parser("plot", help="loss, accuracy and learning-rate curves of runs")
    p.set_defaults(func=_cmd_plot)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (their metrics.jsonl)")
    p.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    _add_tables_parser(sub)


# --- lkca erf ------------------------------------------------------------------------------------


def _cmd_erf(args: argparse.Namespace) -> None:
    from lkca.analysis.erf import THRESHOLDS, area_ratios, effective_receptive_field, real_images
    from lkca.analysis.plots import erf_figure, require_matplotlib, save_png
    from lkca.errors import UserError
    from lkca.train.engine import resolve_device

    if not args.sources:
        raise UserError("lkca erf needs at least one --model NAME or --checkpoint PATH "
                        "(e.g. --model vit_lkca_500k)")
    require_matplotlib()  # fail on a missing matplotlib before any work
    device = resolve_device(args.device)
    panels, images = [], {}
    print(f"share of the image area holding {'/'.join(f'{t:.0%}' for t in THRESHOLDS)} of the "
          "ERF mass (smaller = more local):")
    for model, label, dataset, img_size in _erf_models(args, device):
        key = (dataset, img_size)
        if key not in images:
            images[key] = real_images(dataset, args.data_dir, args.num_images, img_size).to(device)
        erf = effective_receptive_field(model, images[key])
        ratios = area_ratios(erf, THRESHOLDS)
        panels.append((label, erf, ratios))
        print(f"  {label:40s} " + "  ".join(f"{r:6.1%}" for r in ratios)
              + f"   ({len(images[key])} {dataset} test images, {img_size}x{img_size})")
    width, height = save_png(erf_figure(panels, THRESHOLDS), args.out)
    print(f"wrote {args.out} ({width}x{height} px)")


def _erf_models(args: argparse.Namespace, device):
    """(model in eval mode, panel label, data set, image side) for each --model / --checkpoint
    (and its init twin with --with-init), in command-line order."""
    import torch

    from lkca.data import dataset_info
    from lkca.models.registry import create_model
    from lkca.train.engine import build_model, load_for_eval

    for kind, value in args.sources:
        if kind == "checkpoint":
            model, meta = load_for_eval(Path(value), device)  # refuses segmentation checkpoints
            dataset, size = args.dataset or meta.get("dataset", "digits"), meta["img_size"]
            yield model, f"{meta['model']} ({_run_name(Path(value))})", dataset, size
            if args.with_init:  # the same architecture (model_args included) before training
                torch.manual_seed(args.seed)
                yield build_model(meta).to(device).eval(), f"{meta['model']} (init)", dataset, size
            continue
        info = dataset_info(args.dataset or "digits")
        img_size = args.img_size or info.img_size
        torch.manual_seed(args.seed)
        model = create_model(value, num_classes=info.num_classes, img_size=img_size)
        yield model.to(device).eval(), f"{value} (init)", info.name, img_size


def _run_name(path: Path) -> str:
    """The run folder's name for a run dir or a file in it (``run/checkpoints/last.pt`` -> run)."""
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.stem


# --- lkca kernels --------------------------------------------------------------------------------


def _cmd_kernels(args: argparse.Namespace) -> None:
    import torch

    from lkca.analysis.plots import kernel_figure, lkca_kernels, require_matplotlib, save_png
    from lkca.errors import UserError
    from lkca.models.registry import create_model

    require_matplotlib()  # fail on a missing matplotlib before any work
    if args.checkpoint:
        model, name = _load_trained(Path(args.checkpoint))
        title = f"{name} ({_run_name(Path(args.checkpoint))})"
    else:
        torch.manual_seed(args.seed)
        model = create_model(args.model, img_size=args.img_size)
        name, title = args.model, f"{args.model} (init, seed {args.seed})"
    kernels = lkca_kernels(model)
    if not kernels:
        layout = getattr(model, "layout", "")
        raise UserError(f"{name} has no LKCA blocks{f' (layout {layout})' if layout else ''}; "
                        "pass an LKCA model, e.g. vit_lkca_500k, or a run that trained one")
    width, height = save_png(kernel_figure(title, kernels), args.out)
    heads = max(w.shape[0] for _, w in kernels)
    print(f"wrote {args.out} ({width}x{height} px): {len(kernels)} LKCA blocks x {heads} heads, "
          f"kernels {'x'.join(map(str, kernels[0][1].shape[1:]))}")


def _load_trained(path: Path) -> tuple[Any, str]:
    """(model, name) from a classification or a segmentation checkpoint / run directory."""
    import torch

    from lkca.errors import CheckpointError
    from lkca.seg.engine import load_segmentor
    from lkca.train.engine import load_for_eval

    try:
        model, meta = load_segmentor(path, torch.device("cpu"))
        return model, f"{meta['backbone']} + {meta['head']}"
    except CheckpointError:  # not a segmentation checkpoint: a classifier's (or its clear error)
        classifier, meta = load_for_eval(path, torch.device("cpu"))
        return classifier, meta["model"]


# --- lkca plot -----------------------------------------------------------------------------------


def _cmd_plot(args: argparse.Namespace) -> None:
    from lkca.analysis.plots import curves_figure, read_run, require_matplotlib, save_png

    require_matplotlib()  # fail on a missing matplotlib before reading anything
    runs = [read_run(path) for path in args.runs]
    width, height = save_png(curves_figure(runs), args.out)
    print(f"wrote {args.out} ({width}x{height} px): {len(runs)} {runs[0].kind} run(s)")


# --- lkca tables ---------------------------------------------------------------------------------


def _add_tables_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="the paper's Tables 1-7 as Markdown, ours beside the paper's")
    p.set_defaults(func=_cmd_tables)
    p.add_argument("--runs", help="folder searched (any depth) for finished runs (default runs/)")
    p.add_argument("--table", type=int, action="append", choices=range(1, 8), metavar="N",
                   help="only table N (1-5 classification, 6-7 segmentation); repeatable")
    p.add_argument("--out", help="write the Markdown to this file instead of printing it")


def _cmd_tables(args: argparse.Namespace) -> None:
    from lkca.analysis.paper_report import render_tables
    from lkca.errors import UserError

    if args.runs is not None and not Path(args.runs).is_dir():
        raise UserError(f"--runs {args.runs} is not a folder; point --runs at the folder holding "
                        "the run directories (default runs/)")
    text = render_tables(args.runs or "runs", sorted(set(args.table or [])) or None)
    if args.out is None:
        print(text, end="")
        return
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
