"""Images/s of the whole training transform, before (kornia's AutoAugment) and after (SPT's
policies with PIL's operations, :mod:`lkca.data.autoaugment`), with LKCA-B's training step beside it.

    OMP_NUM_THREADS=2 python benchmarks/augment_throughput.py            # CPU, 2 threads

Cases, on synthetic CIFAR-shaped uint8 (128, 3, 32, 32) batches drawn on the device by index:

- ``transform <policy>``: ``TrainAugment(AugmentConfig.from_dataset(...))`` as the engine builds
  it (flip, pad-4 crop, AutoAugment, normalise, random erasing p = 0.25) then ``mix_batch``
  (Mixup/CutMix); the CIFAR-10 policy, and the SVHN one (13 of its 25 sub-policies shear, the
  bicubic operation) on the same 32 x 32 batches.
- ``stream cifar10``: the engine's data path, :class:`lkca.data.train_stream.TrainStream`
  (the same transform and mixing, its choices drawn on the host, the steps of a chunk augmented
  together), one epoch of the synthetic pool per sample.
- ``transform cifar10 (kornia, before)``: the same with the AutoAugment stage replaced by the one
  lkca used before, kornia's ``AutoAugment("cifar10")`` with one sub-policy per image (the batch
  grouped by sub-policy), on float images after ``to_float`` as it ran then. Needs kornia
  installed (no longer a dependency); without it the case is skipped and the JSON says so.
- ``train lkca_b``: one training step of ``lkca.create_model("lkca_b")`` as the engine runs it
  (transform, mix, forward, label-smoothed loss, backward, AdamW, scheduler, ``loss.item()``), fp32.

Cases are sampled round-robin with :func:`train_throughput.measure` (medians; samples taken while
other processes used more than ``--max-foreign`` of the CPU are retaken). Writes
``benchmarks/results/augment_throughput_<device>.json`` with the machine, settings, every sample
and the ratios; exits 1 when the transform is not at least 3x the images/s of the training step.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import PIL
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import machine  # noqa: E402
from train_throughput import batches, measure  # noqa: E402

import lkca  # noqa: E402
from lkca.data import dataset_info
from lkca.data.augment import AugmentConfig, TrainAugment
from lkca.data.device_loader import DeviceLoader
from lkca.data.mix import MixConfig, mix_batch, mixed_cross_entropy
from lkca.data.train_stream import TrainStream
from lkca.models import create_model
from lkca.runtime.device import resolve_device
from lkca.train.optim import build_optimizer, build_scheduler

ROOT = Path(__file__).resolve().parents[1]
TARGET = 3.0  # the transform must run >= 3x the images/s of LKCA-B's training step


class KorniaPerImage(nn.Module):
    """The AutoAugment stage lkca used before: kornia's policy, one sub-policy per image, the batch
    grouped by sub-policy (float [0, 1] in and out)."""

    def __init__(self, policy: str) -> None:
        super().__init__()
        from kornia.augmentation.auto import AutoAugment

        self.subpolicies = list(AutoAugment(policy).children())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = torch.randint(len(self.subpolicies), (x.shape[0],), device=x.device)
        order = torch.argsort(choice, stable=True)
        counts = torch.bincount(choice, minlength=len(self.subpolicies)).tolist()
        groups = torch.split(x[order], counts)
        out = torch.cat([s(g) for s, g in zip(self.subpolicies, groups) if g.shape[0] > 0])
        result = torch.empty_like(out)
        result[order] = out
        return result


def kornia_transform(info) -> nn.Module | None:
    """TrainAugment with kornia's AutoAugment after to_float, as before; None without kornia."""
    try:
        stage = KorniaPerImage(info.autoaugment_policy)
    except ImportError:
        return None
    aug = TrainAugment(AugmentConfig.from_dataset(info))

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = aug.to_float(aug.crop(aug.flip(x)))
        return aug.erase(aug.normalize(stage(x)))

    aug.forward = forward  # type: ignore[method-assign]
    return aug


def make_cases(args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.pool, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (args.pool,), generator=gen)
    loader = DeviceLoader(images.to(device), labels.to(device), args.batch, seed=args.seed)
    stream = batches(loader)
    mix_cfg = MixConfig()
    cases: dict[str, tuple[Callable[[], None], int]] = {}

    def transform_case(augment: nn.Module) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.reps):
                x, y = next(stream)
                batch = mix_batch(augment(x), y, mix_cfg)
            float(batch.images[0, 0, 0, 0])
        return run

    cifar = dataset_info("cifar10")
    before = kornia_transform(cifar)
    if before is not None:
        cases["transform cifar10 (kornia, before)"] = (transform_case(before), args.reps * args.batch)
    for policy, info in (("cifar10", cifar), ("svhn", dataset_info("svhn"))):
        augment = TrainAugment(AugmentConfig.from_dataset(info)).to(device)
        cases[f"transform {policy}"] = (transform_case(augment), args.reps * args.batch)
    train_stream = TrainStream(DeviceLoader(images.to(device), labels.to(device), args.batch,
                                            seed=args.seed),
                               TrainAugment(AugmentConfig.from_dataset(cifar)).to(device), mix_cfg,
                               args.seed)
    epochs = iter(range(1 << 30))

    def stream_case() -> None:
        train_stream.set_epoch(next(epochs))
        last = list(train_stream.iter_from(0))[-1]
        float(last.images[0, 0, 0, 0])

    cases["stream cifar10"] = (stream_case, len(train_stream) * args.batch)

    model = create_model("lkca_b", num_classes=10, img_size=32, drop_path_rate=0.1).to(device)
    optimizer = build_optimizer(model, 1e-3, 0.05)
    scheduler = build_scheduler(optimizer, 100, 1000, 1e-3, 1e-6)
    augment = TrainAugment(AugmentConfig.from_dataset(cifar)).to(device)

    def step() -> None:
        model.train()
        for _ in range(args.steps):
            x, y = next(stream)
            batch = mix_batch(augment(x), y, mix_cfg)
            loss = mixed_cross_entropy(model(batch.images).float(), batch, 0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss.item()

    cases["train lkca_b"] = (step, args.steps * args.batch)
    return cases


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--pool", type=int, default=2048, help="synthetic images to draw from")
    p.add_argument("--reps", type=int, default=4, help="transform batches per sample")
    p.add_argument("--steps", type=int, default=1, help="training steps per sample")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--max-foreign", type=float, default=0.15)
    p.add_argument("--extra-rounds", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # a device this machine lacks: one line
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    cases = make_cases(args, device)
    timed = measure(cases, args.rounds, args.warmup, sync, lambda s: print(s, flush=True),
                    args.max_foreign, args.extra_rounds, args.budget_s)
    train = timed["train lkca_b"]["images_per_s"]
    ratios = {f"{n} / train lkca_b": timed[n]["images_per_s"] / train
              for n in timed if n.startswith("transform")}
    before = timed.get("transform cifar10 (kornia, before)")
    if before is not None:
        ratios["transform cifar10: after / before"] = (
            timed["transform cifar10"]["images_per_s"] / before["images_per_s"])
    passed = all(v >= TARGET for k, v in ratios.items() if k.endswith("/ train lkca_b")
                 and "before" not in k)
    print(f"{'case':40s} {'images/s':>10s} {'clean':>6s}")
    for name, t in timed.items():
        print(f"{name:40s} {t['images_per_s']:10.0f} {t['clean_samples']:6d}")
    for name, v in ratios.items():
        print(f"{name:55s} {v:6.2f}x")
    desc = machine(device)
    desc["pillow"] = PIL.__version__
    try:
        import kornia

        desc["kornia"] = kornia.__version__
    except ImportError:
        desc["kornia"] = None
    result = {
        "benchmark": "augment_throughput: the whole training transform before (kornia) and after "
                     "(SPT's AutoAugment with PIL's operations), LKCA-B's training step beside it",
        "machine": desc,
        "lkca_version": lkca.__version__,
        "models": ["lkca_b"],
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "timed": timed,
        "ratios": ratios,
        "target": {"transform / train lkca_b >=": TARGET, "passed": passed},
        "kornia_case": before is not None,
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"augment_throughput_{device.type}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if passed else 1


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
