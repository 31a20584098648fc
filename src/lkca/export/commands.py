"""``lkca export``: a trained classifier to ONNX.

The CLI imports every command module to build its parser; the exporter is light (onnx and
onnxscript are imported by torch.onnx when it exports), so everything is imported here.
"""

from __future__ import annotations

import argparse
import importlib.util

from lkca.authors.loader import load_authors_model
from lkca.checkpoint.metadata import check_image_side
from lkca.checkpoint.outputs import check_output
from lkca.errors import UserError
from lkca.export.onnx_export import (
    export_onnx,
    onnx_input_shape,
    onnx_max_abs_diff,
    require_onnx,
)
from lkca.pretrained import load_trained
from lkca.runtime.step_memory import check_forward_memory, meta_copy

# The lowest ONNX opset lkca exports: 18, the opset torch.onnx's exporter writes natively (lower
# ones go through onnx's version converter, which lkca does not test); the highest is the
# installed onnx's own (onnx.defs.onnx_opset_version()).
MIN_OPSET = 18


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command to the ``lkca`` parser."""
    p = sub.add_parser("export", help="export a trained classifier to ONNX (dynamic batch axis)")
    p.set_defaults(func=_cmd_export)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint",
                        help="pretrained folder, `lkca train` run folder or .safetensors checkpoint")
    source.add_argument("--authors-checkpoint", metavar="FILE",
                        help="a .pth written by the LKCA authors' main.py (needs --model)")
    p.add_argument("--model", help="with --authors-checkpoint: the registered model it holds")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="only onnx for now")
    p.add_argument("--out", required=True, help="file to write, e.g. model.onnx")
    p.add_argument("--impl", choices=("toeplitz", "conv"), default="toeplitz",
                   help="LKCA implementation inside the graph (fft does not export)")
    p.add_argument("--img-size", type=int, help="input side (default: the model's)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--no-check", action="store_true",
                   help="skip comparing onnxruntime with PyTorch (done when onnxruntime is installed)")


def _cmd_export(args: argparse.Namespace) -> None:
    check_image_side(args.img_size)
    source = args.checkpoint or args.authors_checkpoint  # the argument group requires one
    check_output(args.out, [source])
    require_onnx()
    import onnx

    highest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= args.opset <= highest:
        raise UserError(f"--opset must be from {MIN_OPSET} to {highest} (the installed onnx's "
                        f"latest), got {args.opset}; the default is 18")
    model, record = (load_authors_model(args.authors_checkpoint, args.model)
                     if args.authors_checkpoint else load_trained(args.checkpoint))
    if record["task"] == "seg":
        raise UserError(f"{source} is a segmentor; `lkca export` exports classifiers "
                        "(checkpoints of `lkca train`)")
    check = not args.no_check and importlib.util.find_spec("onnxruntime") is not None
    _check_export_memory(model, record.get("model") or type(model).__name__, args.img_size,
                         args.impl, check)
    path = export_onnx(model, args.out, args.img_size, args.impl, args.opset)
    shape = onnx_input_shape(path)  # as the graph says, not as we meant it
    dynamic = [str(d) for d in shape if isinstance(d, str)]
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, input 'images' "
          f"({', '.join(map(str, shape))}), dynamic axes: {', '.join(dynamic) or 'none'}, "
          f"output 'logits', LKCA impl {args.impl})")
    if check:
        diff = onnx_max_abs_diff(model, path, (1, 3), args.img_size)
        print(f"onnxruntime vs PyTorch, batch 1 and 3: max abs diff {diff:.2e}")


def _check_export_memory(model, name: str, img_size: int | None, impl: str, check: bool) -> None:
    """Refused in one line, before anything is written, when what the export runs cannot fit this
    machine: with the onnxruntime check, PyTorch's forward of its largest batch (3, on the CPU,
    LKCA as ``impl``); without, the model alone (the exporter traces on shapes)."""
    cfg = getattr(model, "cfg", None)
    size = img_size or getattr(cfg, "img_size", None)
    if size is None:  # export_onnx refuses it, naming --img-size
        return
    shape = (3, int(getattr(cfg, "in_chans", 3)), size, size) if check else None
    check_forward_memory(lambda: meta_copy(model), shape, "cpu", name, impl=impl)
