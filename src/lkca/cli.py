"""The ``lkca`` command line (also ``python -m lkca``).

Every user mistake ends with one line on stderr naming the problem and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _cmd_profile(args: argparse.Namespace) -> None:
    from lkca.analysis.profile import profile
    from lkca.models.registry import create_model, paper_figures
    from lkca.seg.backbone import BACKBONES

    if args.model in BACKBONES or args.head is not None:
        return _profile_segmentor(args)
    model = create_model(args.model, num_classes=args.num_classes, img_size=args.img_size)
    paper = paper_figures(args.model)
    img = args.img_size or paper.get("img_size", 32)
    stats = profile(model, img)
    print(f"model   {args.model}  (input {img}x{img})")
    print(f"params  {stats['params'] / 1e6:.3f}M" + _paper(paper.get("params"), args))
    print(f"MACs    {stats['macs'] / 1e6:.2f}M" + _paper(paper.get("macs"), args))


def _paper(value: float | None, args: argparse.Namespace) -> str:
    if value is None or args.img_size not in (None, 32) or args.num_classes not in (None, 10):
        return ""
    return f"   (paper: {value / 1e6:.2f}M)"


def _profile_segmentor(args: argparse.Namespace) -> None:
    """Params of the segmentor(s) with ``args.model`` as backbone, beside the paper's Table 7."""
    from lkca.seg.segmentor import HEADS, PAPER_PARAMS, create_segmentor

    for head in [args.head] if args.head else HEADS:
        model = create_segmentor(args.model, head, args.num_classes or 150)
        parts = {name: sum(p.numel() for p in m.parameters()) if m is not None else 0
                 for name, m in (("backbone", model.backbone), ("neck", model.neck),
                                 ("head", model.head), ("aux head", model.aux_head))}
        paper = PAPER_PARAMS.get((args.model, head)) if args.num_classes in (None, 150) else None
        note = f"   (paper Table 7: {paper / 1e6:.2f}M)" if paper else ""
        print(f"model   {args.model} + {head}  ({args.num_classes or 150} classes)")
        print(f"params  {sum(parts.values()) / 1e6:.3f}M{note}")
        print("        " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in parts.items() if v))


def _cmd_seg(args: argparse.Namespace) -> None:
    {"train": _cmd_seg_train, "eval": _cmd_seg_eval, "predict": _cmd_seg_predict}[args.seg_command](args)


def _cmd_seg_train(args: argparse.Namespace) -> None:
    from lkca.seg.config import build_seg_config
    from lkca.seg.engine import train

    overrides = {k: getattr(args, k) for k in SEG_TRAIN_FLAGS}
    if args.no_progress:
        overrides["progress"] = False
    cfg = build_seg_config(args.config, overrides)
    print(f"training {cfg.head} + {cfg.backbone} on ADE20K for {cfg.iters} iters -> {cfg.out_dir}")
    summary = train(cfg, resume=args.resume)
    if summary and summary.get("mIoU") is not None:
        print(f"aAcc {summary['aAcc']:.2f}  mIoU {summary['mIoU']:.2f}  mAcc {summary['mAcc']:.2f}  "
              f"(iter {summary['iters']}, {summary['wall_s']:.0f} s)")


def _cmd_seg_eval(args: argparse.Namespace) -> None:
    from pathlib import Path

    from lkca.data.ade20k import load_ade20k
    from lkca.seg.engine import evaluate, load_segmentor
    from lkca.train.engine import resolve_device

    model, meta = load_segmentor(Path(args.checkpoint), resolve_device(args.device))
    dataset = load_ade20k(args.data_dir, "validation")
    m = evaluate(model, dataset, args.mode, crop_size=meta["crop_size"], stride=meta["slide_stride"],
                 scale=tuple(meta["img_scale"]), num_classes=meta["num_classes"],
                 max_images=args.max_images)
    print(f"{meta['head']} + {meta['backbone']} on ADE20K validation ({m['images']} images, "
          f"{args.mode}): aAcc {m['aAcc']:.2f}  mIoU {m['mIoU']:.2f}  mAcc {m['mAcc']:.2f}  "
          f"top-10 mIoU {m['top10_mIoU']:.2f}")


def _cmd_seg_predict(args: argparse.Namespace) -> None:
    from pathlib import Path

    from lkca.seg.engine import load_segmentor
    from lkca.seg.predict import load_image, predict_image, save_png, side_by_side
    from lkca.train.engine import resolve_device

    model, meta = load_segmentor(Path(args.checkpoint), resolve_device(args.device))
    image_path = Path(args.image)
    image = load_image(image_path)
    pred = predict_image(model, image, args.mode, meta["crop_size"], meta["slide_stride"],
                         tuple(meta["img_scale"]))
    out = Path(args.out) if args.out else image_path.with_name(f"{image_path.stem}_seg.png")
    save_png(side_by_side(image, pred, meta["num_classes"]), out)
    print(f"wrote {out} (image | prediction, {2 * image.shape[1]}x{image.shape[0]})")


def _cmd_list(args: argparse.Namespace) -> None:
    from lkca.models.registry import list_models

    for name in list_models(args.pattern, aliases=args.aliases):
        print(name)


def _cmd_train(args: argparse.Namespace) -> None:
    from lkca.train.config import build_config
    from lkca.train.engine import train

    overrides = {k: getattr(args, k) for k in TRAIN_FLAGS}
    if args.no_progress:
        overrides["progress"] = False
    if args.compile:
        overrides["compile"] = True
    cfg = build_config(args.config, overrides)
    print(f"training {cfg.model} on {cfg.dataset} for {cfg.epochs} epochs -> {cfg.out_dir}")
    summary = train(cfg, resume=args.resume)
    if summary:
        print(f"test accuracy (top-1): {summary['top1']:.2f}%  best {summary['best_top1']:.2f}%  "
              f"({summary['wall_s']:.0f} s)")


def _cmd_eval(args: argparse.Namespace) -> None:
    from pathlib import Path

    from lkca.data import dataset_info
    from lkca.data.augment import EvalTransform
    from lkca.train.config import TrainConfig
    from lkca.train.engine import device_tensors, evaluate, load_for_eval, mixed_precision, resolve_device

    device = resolve_device(args.device)
    model, meta = load_for_eval(Path(args.checkpoint), device)
    dataset = args.dataset or meta.get("dataset", "digits")
    cfg = TrainConfig(model=meta["model"], dataset=dataset, data_dir=args.data_dir)
    images, labels, _ = device_tensors(cfg, "test", device)
    info = dataset_info(dataset)
    transform = EvalTransform(info.mean, info.std).to(device)
    top1, loss = evaluate(model, images, labels, transform, 500, mixed_precision(device))
    print(f"{meta['model']} on {dataset} test: top-1 {top1:.2f}%  loss {loss:.4f}")


TRAIN_FLAGS = ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", "seed", "device",
               "out")

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lkca", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="print a model's parameters and MACs (paper's 'Flops')")
    p.set_defaults(func=_cmd_profile)
    p.add_argument("--model", required=True, help="registered model name or alias")
    p.add_argument("--img-size", type=int, default=None, help="input side (default: model's)")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: model's)")
    p.add_argument("--head", choices=("upernet", "fpn"),
                   help="segmentation head, with --model vit_s_seg | lkca_s_seg (default: both)")
    p = sub.add_parser("list", help="list registered models")
    p.set_defaults(func=_cmd_list)
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'vit_lkca*'")
    p.add_argument("--aliases", action="store_true", help="include aliases")
    p = sub.add_parser("train", help="train a classifier (no arguments: the digits demo)")
    p.set_defaults(func=_cmd_train)
    p.add_argument("--config", help="YAML config, e.g. configs/cls/cifar10/vit_lkca_2p7m.yaml")
    p.add_argument("--dataset", help="digits | cifar10 | cifar100 | svhn | tinyimagenet")
    p.add_argument("--data-dir", help="folder holding the data set as distributed")
    p.add_argument("--model", help="registered model name (see `lkca list`)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch over all processes")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--out", help="run directory (default runs/<dataset>-<model>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("eval", help="re-evaluate a checkpoint on a test set")
    p.set_defaults(func=_cmd_eval)
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--dataset", help="default: the data set the checkpoint was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    _add_seg_parser(sub)
    for add_parsers in _command_groups():
        add_parsers(sub)
    return parser


def _command_groups() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Command groups kept beside their code; each adds sub-parsers with ``set_defaults(func=...)``.

    Their modules must import fast (no torch at module level): they are loaded for every command.
    """
    from lkca.analysis import commands as analysis_commands
    from lkca.data import commands as data_commands
    from lkca.export import cli as export_commands
    from lkca.reproduce import commands as reproduce_commands

    return [data_commands.add_parsers, analysis_commands.add_parsers, export_commands.add_parsers,
            reproduce_commands.add_parsers]


SEG_TRAIN_FLAGS = ("data_dir", "backbone", "head", "iters", "batch_size", "crop_size",
                   "eval_interval", "device", "out", "seed")


def _add_seg_parser(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("seg", help="semantic segmentation on ADE20K (paper section 4.2)")
    seg.set_defaults(func=_cmd_seg)
    seg_sub = seg.add_subparsers(dest="seg_command", required=True)
    p = seg_sub.add_parser("train", help="train a segmentor (iteration-based)")
    p.add_argument("--config", help="YAML config, e.g. configs/seg/ade20k/upernet_lkca_s_seg_20k.yaml")
    p.add_argument("--data-dir", help="folder holding ADEChallengeData2016/")
    p.add_argument("--backbone", help="vit_s_seg | lkca_s_seg | resnet50_seg | swin_s_seg | "
                                       "twins_pcpvt_s_seg")
    p.add_argument("--head", help="upernet | fpn")
    p.add_argument("--iters", type=int)
    p.add_argument("--batch-size", type=int, help="global batch over all processes")
    p.add_argument("--crop-size", type=int)
    p.add_argument("--eval-interval", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--out", help="run directory (default runs/seg-<head>_<backbone>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = seg_sub.add_parser("eval", help="aAcc / mIoU / mAcc of a checkpoint on ADE20K validation")
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--data-dir", required=True, help="folder holding ADEChallengeData2016/")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole",
                   help="whole image or 512-crop windows every 341 px")
    p.add_argument("--max-images", type=int, help="only the first N validation images")
    p.add_argument("--device", default="auto")
    p = seg_sub.add_parser("predict", help="write the image and its colour-coded prediction")
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--image", required=True, help="a JPEG or PNG")
    p.add_argument("--out", help="PNG to write (default <image stem>_seg.png beside the image)")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole")
    p.add_argument("--device", default="auto")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, turn user mistakes into one clear line and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:  # UserError and the ValueErrors raised at API boundaries
        print(f"lkca {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lkca {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
