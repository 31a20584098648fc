"""``lkca seg train | eval | predict``: semantic segmentation on ADE20K (paper section 4.2).

The CLI imports every command module to build its parser, so the engine, the transforms
and the image reading (PIL) are imported inside the commands that use them; everything else here
is what ``import lkca`` loads anyway.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lkca.atomic_files import refuse_existing
from lkca.checkpoint.outputs import check_output
from lkca.config.command_line import add_config_arguments, config_overrides
from lkca.errors import DataFormatError
from lkca.pretrained import load_trained
from lkca.runtime.device import resolve_device
from lkca.runtime.signals import StartupStop
from lkca.runtime.step_memory import check_forward_memory, meta_copy
from lkca.seg.config import build_seg_config
from lkca.seg.segmentor import Segmentor

# Config fields with a short flag of their own; any field: --set.
SEG_TRAIN_FLAGS = ("data_dir", "backbone", "head", "iters", "batch_size", "crop_size",
                   "eval_interval", "device", "out", "seed")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``seg`` command with its ``train``, ``eval`` and ``predict`` sub-commands."""
    seg = sub.add_parser("seg", help="semantic segmentation on ADE20K (paper section 4.2)")
    seg_sub = seg.add_subparsers(dest="seg_command", required=True)
    p = seg_sub.add_parser("train", help="train a segmentor (iteration-based)")
    p.set_defaults(func=_cmd_train)
    add_config_arguments(p, "configs/seg/ade20k/upernet_lkca_s_seg_20k.yaml")
    p.add_argument("--data-dir", help="folder holding ADEChallengeData2016/")
    p.add_argument("--backbone", help="vit_s_seg | lkca_s_seg | resnet50_seg | swin_s_seg | "
                                       "twins_pcpvt_s_seg")
    p.add_argument("--head", help="upernet | fpn")
    p.add_argument("--iters", type=int, help="training iterations (default 20000, MMSegmentation's "
                                             "schedule_20k)")
    p.add_argument("--batch-size", type=int, help="global batch over all processes")
    p.add_argument("--crop-size", type=int, help="training crop; the slide stride follows it "
                                                  "(2/3 of it) unless slide_stride is set")
    p.add_argument("--eval-interval", type=int,
                   help="evaluate every N iterations, and after the last (default 2000)")
    p.add_argument("--seed", type=int, help="random seed of the weights, data order and augmentation")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--out", help="run directory (default runs/seg-<head>_<backbone>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run OUT holds (config.yaml, metrics.jsonl, summary.json, "
                        "impl_choices.json, checkpoints/, pretrained/, tensorboard/) and start "
                        "over; without it a folder holding a run is refused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = seg_sub.add_parser("eval", help="aAcc / mIoU / mAcc of a checkpoint on ADE20K validation")
    p.set_defaults(func=_cmd_eval)
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--data-dir", required=True, help="folder holding ADEChallengeData2016/")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole",
                   help="whole image, or crop_size windows every slide_stride px (the run's)")
    p.add_argument("--max-images", type=int, help="only the first N validation images")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one) | cpu | cuda | cuda:N")

    p = seg_sub.add_parser("predict", help="write the image and its colour-coded prediction")
    p.set_defaults(func=_cmd_predict)
    p.add_argument("--checkpoint", required=True, help=".safetensors / .pt file or run directory")
    p.add_argument("--image", required=True, help="a JPEG or PNG")
    p.add_argument("--out", help="PNG to write (default <image stem>_seg.png beside the image, "
                                 "refused when that file exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing <image stem>_seg.png beside the image")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole",
                   help="whole image, or crop_size windows every slide_stride px (the run's)")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one) | cpu | cuda | cuda:N")


def _cmd_train(args: argparse.Namespace) -> None:
    from lkca.seg.engine import train  # PIL: only when training (see above)

    with StartupStop("lkca seg train"):  # the run's own handler takes over while it trains
        cfg = build_seg_config(args.config, *config_overrides(args, SEG_TRAIN_FLAGS))
        # the engine announces the run (rank 0 only) once data and model are checked
        summary = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if summary and summary.get("mIoU") is not None:
        print(f"aAcc {summary['aAcc']:.2f}  mIoU {summary['mIoU']:.2f}  top-10 mIoU "
              f"{summary['top10_mIoU']:.2f} (the paper's column, docs/segmentation.md)  mAcc "
              f"{summary['mAcc']:.2f}  (iter {summary['iters']}, {summary['wall_s']:.0f} s)")


def _cmd_eval(args: argparse.Namespace) -> None:
    from lkca.data.ade20k import load_ade20k  # PIL: only when evaluating (see above)
    from lkca.seg.engine import eval_pipeline, evaluate

    model, meta = load_trained(args.checkpoint, resolve_device(args.device), task="seg")
    assert isinstance(model, Segmentor)
    dataset = load_ade20k(args.data_dir, "validation")
    crop, stride, scale = eval_pipeline(meta)
    m = evaluate(model, dataset, args.mode, crop_size=crop, stride=stride, scale=scale,
                 num_classes=meta["num_classes"], max_images=args.max_images)
    print(f"{meta['head']} + {meta['backbone']} on ADE20K validation ({m['images']} images, "
          f"{args.mode}): aAcc {m['aAcc']:.2f}  mIoU {m['mIoU']:.2f}  mAcc {m['mAcc']:.2f}  "
          f"top-10 mIoU {m['top10_mIoU']:.2f} (the paper's column, docs/segmentation.md)")


def _cmd_predict(args: argparse.Namespace) -> None:
    from lkca.seg.engine import eval_pipeline  # PIL: only when predicting (see above)
    from lkca.seg.predict import load_image, predict_image, save_png, side_by_side

    image_path = Path(args.image)
    out = Path(args.out) if args.out else image_path.with_name(f"{image_path.stem}_seg.png")
    check_output(out, [args.checkpoint, args.image])
    if args.out is None and not args.overwrite:  # a name the user did not give: never replaced
        refuse_existing(out, "the default output beside the image; ADE20K's own masks may "
                             "carry that name")
    model, meta = load_trained(args.checkpoint, resolve_device(args.device), task="seg")
    assert isinstance(model, Segmentor)
    image = _bounded(load_image, image_path)
    crop, stride, scale = eval_pipeline(meta)
    _check_predict_memory(model, meta, image.shape[:2], args.mode, crop, scale)
    pred = predict_image(model, image, args.mode, crop, stride, scale)
    save_png(side_by_side(image, pred, meta["num_classes"]), out)
    print(f"wrote {out} (image | prediction, {2 * image.shape[1]}x{image.shape[0]})")


def _check_predict_memory(model: Segmentor, meta: dict[str, Any], size: tuple[int, int],
                          mode: str, crop: int, scale: tuple[int, int]) -> None:
    """Refused in one line, before the PNG is written, when one forward of predict_image (the
    image resized to the test scale and padded to the patch multiple; with --mode slide, one
    window of it) cannot fit the model's device."""
    from lkca.seg.transforms import rescale_size

    h, w = rescale_size(size[0], size[1], scale)
    if mode == "slide":
        h, w = min(h, crop), min(w, crop)
    d = model.size_divisor  # each forward's input is zero-padded to it
    h, w = h + (-h) % d, w + (-w) % d
    check_forward_memory(lambda: meta_copy(model), (1, 3, h, w), next(model.parameters()).device,
                         f"{meta['head']} + {meta['backbone']}",
                         fix="predict with --mode slide (one crop at a time)" if mode == "whole"
                         else "predict on a device with more memory (--device)")


def _bounded(load: Callable[[Path], Any], path: Path) -> Any:
    """``load(path)`` with an image whose header declares more pixels than PIL's
    decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, its warning made an error) refused in
    one line before its pixels are decoded."""
    import warnings

    from PIL import Image  # PIL: only when predicting (see above)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return load(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise DataFormatError(f"image {path} is too large to decode ({err}); pass an image of at "
                              f"most {Image.MAX_IMAGE_PIXELS:,} pixels") from None
