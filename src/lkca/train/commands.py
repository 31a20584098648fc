"""``lkca train`` and ``lkca eval``: classification.

The CLI imports every command module to build its parser, so the engine and the augmentation are
imported inside the commands that use them; everything else here is what ``import lkca`` loads
anyway.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lkca.authors.loader import load_authors_model
from lkca.config.command_line import add_config_arguments, config_overrides
from lkca.data import dataset_info
from lkca.errors import CheckpointError, UserError
from lkca.pretrained import load_trained, resolve_run
from lkca.runtime.device import mixed_precision, resolve_device
from lkca.runtime.signals import StartupStop
from lkca.train.config import TrainConfig, build_config

# Config fields with a short flag of their own (--data-dir for data_dir ...); any field: --set.
TRAIN_FLAGS = ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", "seed", "device",
               "out", "compile")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``eval`` sub-commands."""
    from lkca.cli import OUTSIDE_THE_RUN

    p = sub.add_parser("train", help="train a classifier (no arguments: the digits demo)",
                       epilog=OUTSIDE_THE_RUN)
    p.set_defaults(func=_cmd_train)
    add_config_arguments(p, "configs/cls/cifar10/vit_lkca_2p7m.yaml")
    p.add_argument("--dataset", help="digits | cifar10 | cifar100 | svhn | tinyimagenet")
    p.add_argument("--data-dir", help="folder holding the data set as distributed")
    p.add_argument("--model", help="registered model name (see `lkca list`)")
    p.add_argument("--epochs", type=int, help="training epochs (each epoch_passes passes over "
                   "the training set)")
    p.add_argument("--batch-size", type=int, help="global batch over all processes")
    p.add_argument("--lr", type=float, help="peak learning rate (after the warm-up)")
    p.add_argument("--seed", type=int, help="seed of the model's init, the data order and the "
                   "augmentation")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--out", help="run directory (default runs/<dataset>-<model>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run OUT holds (config.yaml, metrics.jsonl, summary.json, "
                        "impl_choices.json, checkpoints/, pretrained/, tensorboard/) and start "
                        "over; without it a folder holding a run is refused")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("eval", help="re-evaluate a checkpoint on a test set")
    p.set_defaults(func=_cmd_eval)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint",
                        help=".safetensors / .pt file, pretrained folder or run directory (a run: "
                             "its best checkpoint; RUN/checkpoints/last.safetensors for the last "
                             "epoch)")
    source.add_argument("--authors-checkpoint", metavar="FILE",
                        help="a .pth written by the LKCA authors' main.py (needs --model)")
    p.add_argument("--model", help="with --authors-checkpoint: the registered model it holds")
    p.add_argument("--dataset", help="default: the data set the checkpoint was trained on")
    p.add_argument("--data-dir", help="folder holding the data set as distributed")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one) | cpu | cuda | cuda:N")


def _cmd_train(args: argparse.Namespace) -> None:
    from lkca.train.engine import train  # only when training (see above)

    with StartupStop("lkca train"):  # the run's own handler takes over while it trains
        cfg = build_config(args.config, *config_overrides(args, TRAIN_FLAGS))
        # the engine announces the run (rank 0 only) once data and model are checked
        summary = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if summary:
        print(f"test accuracy (top-1): {summary['top1']:.2f}%  best {summary['best_top1']:.2f}%  "
              f"({summary['wall_s']:.0f} s)")


def check_eval_data(meta: dict, dataset: str, images, labels) -> None:
    """UserError (one line) when the test images are not what the checkpoint's model takes
    (another size or channel count: it would be evaluated silently on them) or hold labels past
    its classes (nothing is resized: evaluate on a data set of the checkpoint's input)."""
    size = meta.get("img_size")
    side = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    have = tuple(images.shape[-2:])
    if side != have or images.shape[1] != meta.get("in_chans", images.shape[1]):
        raise UserError(f"the checkpoint's model takes {side[0]}x{side[1]} images with "
                        f"{meta.get('in_chans')} channels, {dataset}'s test images are "
                        f"{have[0]}x{have[1]} with {images.shape[1]}; evaluate it on the data set "
                        f"it was trained on ({meta.get('dataset') or 'see its config'}) or one of "
                        "its input size (nothing is resized)")
    classes = meta.get("num_classes")
    if isinstance(classes, int) and len(labels) and int(labels.max()) >= classes:
        raise UserError(f"{dataset}'s test labels go up to {int(labels.max())}, the checkpoint's "
                        f"model has {classes} classes; evaluate it on the data set it was trained "
                        f"on ({meta.get('dataset') or 'see its config'})")


def _cmd_eval(args: argparse.Namespace) -> None:
    from lkca.data.augment import EvalTransform  # only when evaluating (see above)
    from lkca.train.engine import device_tensors, evaluate

    device = resolve_device(args.device)
    if args.authors_checkpoint:
        if not args.dataset:
            raise UserError("--authors-checkpoint: name the test set with --dataset (cifar10, "
                            "cifar100, svhn or tinyimagenet); the file does not record it")
        model, meta = load_authors_model(args.authors_checkpoint, args.model)
        model = model.to(device)
    else:
        model, meta = load_trained(args.checkpoint, device, task="classification")
    dataset = args.dataset or meta.get("dataset")
    if not dataset:
        raise CheckpointError(f"{args.checkpoint} records no data set (a model saved before "
                              "training?); name the test set with --dataset D (and --data-dir DIR)")
    if args.checkpoint:
        given = Path(args.checkpoint)
        chosen = resolve_run(given)
        if chosen != given:  # a run directory: say which of its checkpoints is evaluated
            last = given / "checkpoints" / "last.safetensors"
            print(f"evaluating {chosen}" + (" (the run's best epoch; for its last epoch pass "
                                            f"--checkpoint {last})" if "best" in chosen.name else ""))
    images, labels, _ = device_tensors(TrainConfig(dataset=dataset, data_dir=args.data_dir), "test",
                                       device)
    check_eval_data(meta, dataset, images, labels)
    info = dataset_info(dataset)
    transform = EvalTransform(info.mean, info.std).to(device)
    top1, loss = evaluate(model, images, labels, transform, 500, mixed_precision(device, "fp32"))
    name = meta["model"] or "VisionTransformer"
    print(f"{name} on {dataset} test: top-1 {top1:.2f}%  loss {loss:.4f}")
