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


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "profile": _cmd_profile,
    "list": _cmd_list,
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
