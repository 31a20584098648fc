"""The analysis commands: ``lkca profile``, ``lkca list``, ``lkca erf``, ``lkca kernels``,
``lkca plot``, ``lkca tables``.

The CLI imports every command module to build its parser; what these commands use is what
``import lkca`` loads anyway or light (matplotlib is imported by the plotting functions when they
run).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch

from lkca.analysis.erf import (
    ERF_BATCH,
    THRESHOLDS,
    area_ratios,
    effective_receptive_field,
    real_images,
)
from lkca.analysis.paper_report import render_tables
from lkca.analysis.paper_results import SEG_READINGS
from lkca.analysis.plots import (
    curves_figure,
    erf_figure,
    kernel_figure,
    lkca_kernels,
    read_run,
    require_matplotlib,
    save_png,
)
from lkca.atomic_files import write_atomic
from lkca.builder import build_model
from lkca.checkpoint.metadata import check_image_side
from lkca.checkpoint.outputs import check_output
from lkca.data import dataset_info
from lkca.errors import UserError
from lkca.models.profile import paper_comparison, profile
from lkca.models.registry import create_model, list_models, model_aliases, paper_figures
from lkca.pretrained import load_trained
from lkca.runtime.console import plural
from lkca.runtime.device import resolve_device
from lkca.runtime.step_memory import check_forward_memory, meta_copy
from lkca.seg.backbone import BACKBONES
from lkca.seg.segmentor import HEADS, segmentor_params


class _AppendSource(argparse.Action):
    """``--model NAME`` and ``--checkpoint PATH`` both append to ``args.sources`` in command-line
    order, so the ERF panels come out in the order they were asked for."""

    def __call__(self, parser, namespace, value, option_string=None):
        sources = list(getattr(namespace, "sources", None) or [])
        sources.append((self.dest, value))  # ("model" | "checkpoint", value)
        namespace.sources = sources


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``profile``, ``list``, ``erf``, ``kernels``, ``plot`` and ``tables`` sub-commands."""
    p = sub.add_parser("profile", help="print a model's parameters and MACs (paper's 'Flops')")
    p.set_defaults(func=_cmd_profile)
    p.add_argument("--model", required=True, help="registered model name or alias")
    p.add_argument("--img-size", type=int, default=None, help="input side (default: model's)")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: model's)")
    p.add_argument("--head", choices=("upernet", "fpn"),
                   help="segmentation head, with --model vit_s_seg | lkca_s_seg (default: both)")

    p = sub.add_parser("list", help="list registered models, then the segmentation backbones")
    p.set_defaults(func=_cmd_list)
    p.add_argument("pattern", nargs="?", default="*",
                   help="a word any listed name contains ('lkca'), or a shell pattern the whole "
                        "name matches ('vit_lkca*'); exit code 1 when nothing matches")
    p.add_argument("--aliases", action="store_true",
                   help="also list the aliases, as 'alias -> name'")

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
    p.add_argument("--out", help="PNG to write (default: erf.png in the first --checkpoint's run "
                                 "folder, else runs/erf.png)")

    p = sub.add_parser("kernels", help="every block's LKCA kernels, every head, as heat maps")
    p.set_defaults(func=_cmd_kernels)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="run directory or .safetensors / .pt file")
    source.add_argument("--model", help="a registered model: its (seeded) initial kernels")
    p.add_argument("--img-size", type=int, help="input side for --model (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for --model")
    p.add_argument("--out", help="PNG to write (default: kernels.png in the checkpoint's run "
                                 "folder; with --model, runs/kernels-NAME.png)")

    p = sub.add_parser("plot", help="loss, accuracy and learning-rate curves of runs")
    p.set_defaults(func=_cmd_plot)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (their metrics.jsonl)")
    p.add_argument("--out", help="PNG to write (default: curves.png in the run folder; for "
                                 "several runs in one folder, in that folder, else in the first "
                                 "run's folder)")
    _add_tables_parser(sub)


# --- lkca profile, lkca list ----------------------------------------------------------------------


def _cmd_profile(args: argparse.Namespace) -> None:
    check_image_side(args.img_size)
    if args.model in BACKBONES or args.head is not None:
        return _profile_segmentor(args)
    paper = paper_figures(args.model)
    # the paper counts every ViT / ViT-LKCA row at 32 x 32 and 10 classes (counted_at)
    img0, classes0 = paper.get("counted_at", (paper.get("img_size", 32), paper.get("num_classes")))
    img = args.img_size or img0
    classes = args.num_classes or classes0
    # profile() runs one image through the model on the CPU, LKCA as its matrix (toeplitz)
    check_forward_memory(lambda: create_model(args.model, num_classes=classes, img_size=img),
                         (1, 3, img, img), "cpu", args.model, impl="toeplitz")
    model = create_model(args.model, num_classes=classes, img_size=img)
    stats = profile(model, img)
    at_paper = img == img0 and classes == classes0  # the paper's figures hold there only
    c = paper_comparison(stats, paper if at_paper else {})
    print(f"model   {args.model}  (input {img}x{img}, {_num_classes(model)} classes)")
    print(f"params  {c['params']:,}"
          + (f"   (paper: {c['paper_params'] / 1e6:.2f}M, {100 * c['params_diff']:+.1f}%)"
             if c["paper_params"] else ""))
    # the paper's "Flops" are ptflops' count (the authors' count.py): compared with ours counted so
    print(f"MACs    {c['ptflops_macs'] / 1e6:.2f}M counted as the paper (ptflops' module hooks)"
          + (f"   (paper 'Flops': {c['paper_macs'] / 1e6:.2f}M, {100 * c['ptflops_diff']:+.2f}%)"
             if c["paper_macs"] else ""))
    print(f"        {c['macs'] / 1e6:.2f}M with every product (attention QK^T and AV, LKCA's "
          "kernel)")


def _num_classes(model: object) -> object:
    return getattr(getattr(model, "cfg", None), "num_classes", "?")


def _profile_segmentor(args: argparse.Namespace) -> None:
    """Params of the segmentor(s) with ``args.model`` as backbone, beside the paper's Table 7."""
    classes = args.num_classes or 150
    for row in segmentor_params(classes, combos=[(args.model, h) for h in [args.head] if h] or
                                [(args.model, h) for h in HEADS]):
        paper = row["paper_params"] if classes == 150 else None
        note = f"   (paper Table 7: {paper / 1e6:.2f}M)" if paper else ""
        parts = {"backbone": row["backbone_params"], "neck": row["neck_params"],
                 "head": row["head_params"], "aux head": row["aux_params"]}
        print(f"model   {args.model} + {row['head']}  ({classes} classes)")
        print(f"params  {row['params'] / 1e6:.3f}M{note}")
        print("        " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in parts.items() if v))


def _cmd_list(args: argparse.Namespace) -> int:
    """Matching names, then (``--aliases``) every alias whose own name or target matches, as
    ``alias -> name``; exit code 1 and a line on stderr when nothing matches (as ``grep``)."""
    names = list_models(args.pattern)
    lines = list(names)
    if args.aliases:
        matched = set(list_models(args.pattern, aliases=True))
        lines += [f"{alias} -> {name}" for alias, name in model_aliases().items()
                  if alias in matched or name in names]
    lines += [f"{name}  (segmentation backbone: lkca seg, lkca profile)"
              for name in _matching(sorted(BACKBONES), args.pattern)]
    if not lines:
        print(f"no model matches {args.pattern!r}; `lkca list` shows them all", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _matching(names: list[str], pattern: str) -> list[str]:
    """``list_models``' rule for other names: a shell pattern matches the whole name, a plain word
    any name containing it."""
    import fnmatch

    pattern = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


# --- lkca erf ------------------------------------------------------------------------------------


def _cmd_erf(args: argparse.Namespace) -> None:
    if not args.sources:
        raise UserError("lkca erf needs at least one --model NAME or --checkpoint PATH "
                        "(e.g. --model vit_lkca_500k)")
    check_image_side(args.img_size)
    if args.out is not None:
        check_output(args.out, [v for kind, v in args.sources if kind == "checkpoint"])
    require_matplotlib()  # fail on a missing matplotlib before any work
    device = resolve_device(args.device)
    models = list(_erf_models(args, device))  # names, checkpoints and data checked before printing
    images = {}
    for _, _, dataset, img_size in models:
        if (dataset, img_size) not in images:
            images[dataset, img_size] = real_images(dataset, args.data_dir, args.num_images,
                                                    img_size).to(device)
    panels = []
    width = max(len(label) for _, label, _, _ in models)
    print(f"share of the image area holding {'/'.join(f'{t:.0%}' for t in THRESHOLDS)} of the "
          "ERF mass (smaller = more local):")
    print(f"  {'model':{width}s} " + "  ".join(f"{t:>6.0%}" for t in THRESHOLDS))
    for model, label, dataset, img_size in models:
        key = (dataset, img_size)
        erf = effective_receptive_field(model, images[key])
        ratios = area_ratios(erf, THRESHOLDS)
        panels.append((label, erf, ratios))
        print(f"  {label:{width}s} " + "  ".join(f"{r:6.1%}" for r in ratios)
              + f"   ({len(images[key])} {dataset} test images, {img_size}x{img_size})")
    checkpoints = [value for kind, value in args.sources if kind == "checkpoint"]
    out = args.out or (_run_folder(checkpoints[0]) if checkpoints else Path("runs")) / "erf.png"
    width, height = save_png(erf_figure(panels, THRESHOLDS), out)
    print(f"wrote {out} ({width}x{height} px)")


def _erf_models(args: argparse.Namespace, device):
    """(model in eval mode, panel label, data set, image side) for each --model / --checkpoint
    (and its init twin with --with-init), in command-line order."""
    for kind, value in args.sources:
        if kind == "checkpoint":  # refuses segmentation checkpoints
            model, meta = load_trained(value, device, task="classification")
            dataset, size = args.dataset or meta.get("dataset") or "digits", meta["img_size"]
            _check_erf_memory(partial(meta_copy, model), args, size, device, meta["model"])
            yield model, f"{meta['model']} ({_run_name(Path(value))})", dataset, size
            if args.with_init:  # the same architecture (model_args included) before training
                torch.manual_seed(args.seed)
                yield build_model(meta).to(device).eval(), f"{meta['model']} (init)", dataset, size
            continue
        info = dataset_info(args.dataset or "digits")
        img_size = args.img_size or info.img_size
        _check_erf_memory(partial(create_model, value, num_classes=info.num_classes,
                                  img_size=img_size), args, img_size, device, value)
        torch.manual_seed(args.seed)
        model = create_model(value, num_classes=info.num_classes, img_size=img_size)
        yield model.to(device).eval(), f"{value} (init)", info.name, img_size


def _check_erf_memory(build, args: argparse.Namespace, img_size: int, device, name: str) -> None:
    """Refused in one line when one batch of effective_receptive_field (its forward and the
    gradient of its input) cannot fit ``device``: before the model and the images are made."""
    batch = min(ERF_BATCH, args.num_images) if args.num_images > 0 else 1
    check_forward_memory(build, (batch, 3, img_size, img_size), device, name, input_grad=True,
                         fix="pass a smaller --img-size (or --num-images)")


def _run_folder(path: str | Path) -> Path:
    """The folder a figure of a run goes into by default: the run (or pretrained) folder itself,
    the run of a file in its ``checkpoints/``, else the folder holding the file."""
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _run_name(path: Path) -> str:
    """The run folder's name for a run dir or a file in it (``run/checkpoints/last.pt`` -> run)."""
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.stem


# --- lkca kernels --------------------------------------------------------------------------------


def _cmd_kernels(args: argparse.Namespace) -> None:
    check_image_side(args.img_size)
    if args.out is not None:
        check_output(args.out, [args.checkpoint] if args.checkpoint else [])
    require_matplotlib()  # fail on a missing matplotlib before any work
    if args.checkpoint:  # a classifier's or a segmentor's
        model, meta = load_trained(args.checkpoint)
        name = (f"{meta['backbone']} + {meta['head']}" if meta["task"] == "seg" else
                meta["model"] or "VisionTransformer")
        title = f"{name} ({_run_name(Path(args.checkpoint))})"
    else:
        check_forward_memory(lambda: create_model(args.model, img_size=args.img_size), None,
                             "cpu", args.model)  # the model is built, nothing runs
        torch.manual_seed(args.seed)
        model = create_model(args.model, img_size=args.img_size)
        name, title = args.model, f"{args.model} (init, seed {args.seed})"
    kernels = lkca_kernels(model)
    if not kernels:
        layout = getattr(model, "layout", "")
        raise UserError(f"{name} has no LKCA blocks{f' (layout {layout})' if layout else ''}; "
                        "pass an LKCA model, e.g. vit_lkca_500k, or a run that trained one")
    out = args.out or (_run_folder(args.checkpoint) / "kernels.png" if args.checkpoint else
                       Path("runs") / f"kernels-{args.model}.png")
    width, height = save_png(kernel_figure(title, kernels), out)
    heads = max(w.shape[0] for _, w in kernels)
    print(f"wrote {out} ({width}x{height} px): {plural(len(kernels), 'LKCA block')} x "
          f"{plural(heads, 'head')}, "
          f"kernels {'x'.join(map(str, kernels[0][1].shape[1:]))}")


# --- lkca plot -----------------------------------------------------------------------------------


def _cmd_plot(args: argparse.Namespace) -> None:
    if args.out is not None:
        check_output(args.out, args.runs)
    require_matplotlib()  # fail on a missing matplotlib before reading anything
    runs = [read_run(path) for path in args.runs]
    out = Path(args.out) if args.out else _curves_path([Path(p) for p in args.runs])
    width, height = save_png(curves_figure(runs), out)
    print(f"wrote {out} ({width}x{height} px): {plural(len(runs), runs[0].kind + ' run')}")


def _curves_path(runs: list[Path]) -> Path:
    """Where ``lkca plot`` writes by default: one run, its folder; several in one folder, that
    folder (runs/ for runs/a runs/b); several in different folders, the first run's folder (never
    a common parent far above them). As the user wrote the paths (relative stays relative)."""
    parents = {run.resolve().parent for run in runs}
    home = runs[0].parent if len(runs) > 1 and len(parents) == 1 else runs[0]
    return home / "curves.png"


# --- lkca tables ---------------------------------------------------------------------------------


def _add_tables_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="the paper's Tables 1-7 as Markdown, ours beside the paper's")
    p.set_defaults(func=_cmd_tables)
    p.add_argument("--runs", help="folder searched (any depth) for finished runs (default runs/)")
    p.add_argument("--table", type=int, action="append", choices=range(1, 8), metavar="N",
                   help="only table N (1-5 classification, 6-7 segmentation); repeatable")
    p.add_argument("--out", help="write the Markdown to this file instead of printing it")
    p.add_argument("--seg-reading", choices=SEG_READINGS, default="one-run",
                   help="Tables 6-7: each row the evaluation at its iterations of one 20k run per "
                        "backbone and head (one-run, the default), or the final evaluation of a run "
                        "of its own (per-row); docs/segmentation.md section 4")


def _cmd_tables(args: argparse.Namespace) -> None:

    if args.runs is not None and not Path(args.runs).is_dir():
        raise UserError(f"--runs {args.runs} is not a folder; point --runs at the folder holding "
                        "the run directories (default runs/)")
    if args.out is not None:
        check_output(args.out)
    text = render_tables(args.runs or "runs", sorted(set(args.table or [])) or None,
                         reading=args.seg_reading)
    if args.out is None:
        print(text, end="")
        return
    write_atomic(args.out, text.encode())
    print(f"wrote {args.out}")
