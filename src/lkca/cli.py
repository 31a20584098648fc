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
    from lkca.train.engine import device_tensors, evaluate, load_for_eval, resolve_device

    device = resolve_device(args.device)
    model, meta = load_for_eval(Path(args.checkpoint), device)
    dataset = args.dataset or meta.get("dataset", "digits")
    cfg = TrainConfig(model=meta["model"], dataset=dataset, data_dir=args.data_dir)
    images, labels, _ = device_tensors(cfg, "test", device)
    info = dataset_info(dataset)
    transform = EvalTransform(info.mean, info.std).to(device)
    top1, loss = evaluate(model, images, labels, transform, 500, _amp(device))
    print(f"{meta['model']} on {dataset} test: top-1 {top1:.2f}%  loss {loss:.4f}")


def _amp(device):
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


TRAIN_FLAGS = ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", "seed", "device",
               "out")

COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "profile": _cmd_profile,
    "list": _cmd_list,
    "train": _cmd_train,
    "eval": _cmd_eval,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lkca", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="print a model's parameters and MACs (paper's 'Flops')")
    p.add_argument("--model", required=True, help="registered model name or alias")
    p.add_argument("--img-size", type=int, default=None, help="input side (default: model's)")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: model's)")
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'vit_lkca*'")
    p.add_argument("--aliases", action="store_true", help="include aliases")
    p = sub.add_parser("train", help="train a classifier (no arguments: the digits demo)")
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
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--dataset", help="default: the data set the checkpoint was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, turn user mistakes into one clear line and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except ValueError as err:  # UserError and the ValueErrors raised at API boundaries
        print(f"lkca {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lkca {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
