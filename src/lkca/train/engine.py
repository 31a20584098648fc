"""The classification training loop (paper section 4.1), readable top to bottom.

Data lives on the device as uint8; each step draws a global batch by index, augments it on the
device (kornia), mixes it (Mixup/CutMix), and every process trains on its slice of that global
batch, so the result does not depend on the number of processes (torchrun, DDP).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lkca.analysis.profile import profile
from lkca.data import dataset_info, load_dataset
from lkca.data.augment import AugmentConfig, EvalTransform, TrainAugment
from lkca.data.device_loader import DeviceLoader
from lkca.data.mix import MixConfig, mix_batch, mixed_cross_entropy
from lkca.errors import CheckpointError, UserError
from lkca.models.registry import create_model, resolve_name
from lkca.train import checkpoint as ckpt
from lkca.train.config import TrainConfig, save_yaml
from lkca.train.log import RunLog, write_json
from lkca.train.optim import build_optimizer, build_scheduler


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def mixed_precision(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA; nothing (fp32) elsewhere. Reusable across ``with`` blocks."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def model_meta(cfg: TrainConfig, num_classes: int, img_size: int) -> dict[str, Any]:
    """What rebuilds the model: stored beside the weights."""
    return {"model": cfg.model, "num_classes": num_classes, "img_size": img_size,
            "model_args": cfg.model_args, "dataset": cfg.dataset}


def build_model(meta: dict[str, Any], drop_path: float = 0.0) -> nn.Module:
    return create_model(meta["model"], num_classes=meta["num_classes"], img_size=meta["img_size"],
                        drop_path_rate=drop_path, **meta.get("model_args", {}))


def device_tensors(cfg: TrainConfig, split: str, device: torch.device):
    data = load_dataset(cfg.dataset, cfg.data_dir, split)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(device)
    return images, torch.from_numpy(data.labels).to(device), data.num_classes


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             transform: nn.Module, batch_size: int, amp: Any) -> tuple[float, float]:
    """Top-1 (%) and mean cross-entropy on uint8 images resident on the device."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(images), batch_size):
        x = transform(images[start : start + batch_size])
        y = labels[start : start + batch_size]
        with amp:
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return 100.0 * correct / len(images), loss_sum / len(images)


class StopRequest:
    """SIGTERM / SIGINT set a flag; the loop saves a resumable checkpoint and exits cleanly."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class NonFiniteLoss(UserError):
    """The loss became NaN or inf; the last checkpoint is left as it was."""


def all_finite(loss: torch.Tensor, env: Dist) -> bool:
    """One flag for all ranks, so every process skips or stops together (no DDP hang)."""
    bad = (~torch.isfinite(loss.detach())).float()
    if env.world_size > 1:
        dist.all_reduce(bad)
    return bad.item() == 0


class Interrupted(UserError):
    """Training stopped by a signal after saving a resumable checkpoint."""


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) a classification training; returns the summary written to summary.json."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise UserError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes "
                        "(WORLD_SIZE); choose a global batch that is a multiple of the world size")
    device = resolve_device(cfg.device)
    env = setup_distributed(device)
    resolve_name(cfg.model)  # fail fast on a bad model name, before loading data
    info = dataset_info(cfg.dataset)
    out = cfg.out_dir
    ckpt_dir = out / "checkpoints"
    if resume and not (ckpt_dir / "last.pt").exists():
        raise CheckpointError(f"--resume: no checkpoint at {ckpt_dir / 'last.pt'}; "
                              "start without --resume or point --out at the run to continue")
    if env.main:
        check_writable(out)

    train_x, train_y, num_classes = device_tensors(cfg, "train", device)
    test_x, test_y, _ = device_tensors(cfg, "test", device)
    img_size = train_x.shape[-1]
    loader = DeviceLoader(train_x, train_y, cfg.batch_size, shuffle=True, drop_last=True,
                          seed=cfg.seed)  # the global batch; each rank slices it after mixing
    steps_per_epoch = min(len(loader), cfg.max_steps_per_epoch or len(loader))

    torch.manual_seed(cfg.seed)  # same on every rank: identical augmentation of the global batch
    meta = model_meta(cfg, num_classes, img_size)
    model = build_model(meta, cfg.drop_path).to(device)
    stats = profile(model, img_size, in_chans=train_x.shape[1])
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, min(cfg.warmup_epochs, cfg.epochs) * steps_per_epoch,
                                cfg.epochs * steps_per_epoch, cfg.lr, cfg.min_lr)
    ema = _build_ema(model, cfg.ema_decay)
    policy = None if cfg.autoaugment in (None, "none") else (
        info.autoaugment_policy if cfg.autoaugment == "auto" else cfg.autoaugment)
    augment = TrainAugment(AugmentConfig.from_dataset(
        info, autoaugment=policy, erasing_p=cfg.erasing_p,
        **{k: v for k, v in (("hflip", cfg.hflip), ("crop_padding", cfg.crop_padding))
           if v is not None})).to(device)
    eval_transform = EvalTransform(info.mean, info.std).to(device)
    mix_cfg = MixConfig(cfg.mix_prob, cfg.cutmix_prob, cfg.mixup_alpha, cfg.cutmix_beta)
    amp = mixed_precision(device)

    pos: dict[str, Any] = {"epoch": 0, "step": 0, "best_top1": 0.0, "wall_s": 0.0, "loss_sum": 0.0,
                           "seen": 0}
    if resume:
        pos = _restore(ckpt_dir / "last.pt", model, optimizer, scheduler, ema)
    start_epoch, start_step, best_top1, wall_before = (
        pos["epoch"], pos["step"], pos["best_top1"], pos["wall_s"])
    net: nn.Module = model
    if env.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = cast(nn.Module, torch.compile(net))  # an OptimizedModule

    log = RunLog(out, enabled=env.main)
    if env.main:
        save_yaml(cfg, out / "config.yaml")
        if resume:
            log.truncate_after(start_epoch)
    local = cfg.batch_size // env.world_size
    t_run = time.perf_counter()
    summary: dict[str, Any] = {}
    top1 = 0.0
    with StopRequest() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            net.train()
            loader.set_epoch(epoch)
            first = start_step if epoch == start_epoch else 0
            bar = _progress(cfg, env, epoch, steps_per_epoch, first)
            loss_sum, seen, skipped, t0 = 0.0, 0, 0, time.perf_counter()
            if first:  # resumed mid-epoch: carry the epoch's running loss
                loss_sum, seen = pos["loss_sum"], pos["seen"]
            for step, (x, y) in enumerate(loader.iter_from(first), start=first):
                if step >= steps_per_epoch:
                    break
                batch = mix_batch(augment(x), y, mix_cfg)
                shard = slice(env.rank * local, (env.rank + 1) * local)
                batch = batch._replace(images=batch.images[shard],
                                       targets_a=batch.targets_a[shard],
                                       targets_b=batch.targets_b[shard])
                with amp:
                    logits = net(batch.images)
                loss = mixed_cross_entropy(logits.float(), batch, cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                if not all_finite(loss, env):
                    if not cfg.skip_nonfinite:
                        raise NonFiniteLoss(
                            f"non-finite loss at epoch {epoch + 1} step {step + 1}; the last good "
                            f"checkpoint {ckpt_dir / 'last.pt'} is kept: lower --lr, set grad_clip, "
                            "or set skip_nonfinite: true, then --resume")
                    skipped += 1
                    scheduler.step()
                    continue
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += loss.item() * len(x)
                seen += len(x)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}",
                                    img_s=f"{seen / (time.perf_counter() - t0):.0f}")
                if stop.signum is not None:
                    if bar is not None:
                        bar.close()
                    if env.main:
                        _save(ckpt_dir, "last", model, optimizer, scheduler, ema, meta,
                              {"epoch": epoch, "step": step + 1, "best_top1": best_top1,
                               "wall_s": wall_before + time.perf_counter() - t_run,
                               "loss_sum": loss_sum, "seen": seen})
                    raise Interrupted(
                        f"stopped by {signal.Signals(stop.signum).name} at epoch {epoch + 1} step "
                        f"{step + 1}; checkpoint saved to {ckpt_dir / 'last.pt'}: continue with "
                        "--resume")
            if bar is not None:
                bar.close()
            train_s = time.perf_counter() - t0
            eval_model = ema.module if ema is not None else model
            top1, test_loss = evaluate(eval_model, test_x, test_y, eval_transform,
                                       cfg.eval_batch_size, amp)
            is_best = top1 > best_top1
            best_top1 = max(best_top1, top1)
            record = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                      "test_loss": test_loss, "test_top1": top1,
                      "lr": optimizer.param_groups[0]["lr"],
                      "images_per_s": seen * env.world_size / max(train_s, 1e-9)}
            if skipped:
                record["skipped_nonfinite"] = skipped
            if env.main:
                log.write(record)
                wall = wall_before + time.perf_counter() - t_run
                _save(ckpt_dir, "last", model, optimizer, scheduler, ema, meta,
                      {"epoch": epoch + 1, "step": 0, "best_top1": best_top1, "wall_s": wall,
                       "loss_sum": 0.0, "seen": 0})
                if is_best:
                    ckpt.save_weights(ckpt_dir / "best.safetensors", eval_model, meta)
                print(f"epoch {epoch + 1}/{cfg.epochs}  train_loss {record['train_loss']:.4f}  "
                      f"test_top1 {top1:.2f}%  ({record['images_per_s']:.0f} img/s)", flush=True)
            if cfg.stop_after_epochs and epoch + 1 >= cfg.stop_after_epochs < cfg.epochs:
                if env.main:
                    print(f"stopping after epoch {epoch + 1} as asked (stop_after_epochs); "
                          "continue with --resume", flush=True)
                break
    if env.main:
        from lkca.train.log import read_metrics

        rows = read_metrics(log.metrics_path) if log.metrics_path.exists() else []
        speeds = [r["images_per_s"] for r in rows]
        summary = {"model": cfg.model, "dataset": cfg.dataset, "params": stats["params"],
                   "macs": stats["macs"], "epochs": cfg.epochs,
                   "top1": rows[-1]["test_top1"] if rows else top1, "best_top1": best_top1,
                   "train_images_per_s": sum(speeds) / len(speeds) if speeds else 0.0,
                   "wall_s": wall_before + time.perf_counter() - t_run}
        if (ckpt_dir / "best.safetensors").is_file():  # the best model for from_pretrained
            from lkca.pretrained import export_checkpoint

            export_checkpoint(ckpt_dir / "best.safetensors", out / "pretrained")
        write_json(out / "summary.json", summary)
        log.close()
    return summary


def check_writable(out: Path) -> None:
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        for stale in (out / "checkpoints").glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink()
        probe = out / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"output directory {out} is not writable ({err.strerror or err}); "
                        "choose another --out") from None


def _build_ema(model: nn.Module, decay: float | None):
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _progress(cfg: TrainConfig, env: Dist, epoch: int, total: int, first: int):
    if not (cfg.progress and env.main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                leave=False, dynamic_ncols=True)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save(ckpt_dir: Path, tag: str, model, optimizer, scheduler, ema, meta,
          position: dict[str, Any]) -> None:
    """``tag.pt`` alone resumes the run (weights included); ``tag.safetensors`` is for eval/export.

    Each file is written atomically, so a crash at any moment leaves a complete ``tag.pt``.
    """
    ckpt.save_weights(ckpt_dir / f"{tag}.safetensors", model, meta)
    state = dict(position, meta=meta, model=model.state_dict(), optimizer=optimizer.state_dict(),
                 scheduler=scheduler.state_dict(), rng=rng_state())
    if ema is not None:
        state["ema"] = ema.state_dict()
    ckpt.save_state(ckpt_dir / f"{tag}.pt", state)


def _restore(path: Path, model, optimizer, scheduler, ema) -> dict[str, Any]:
    state = ckpt.load_state(path)
    ckpt.load_weights(model, state["model"], path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state


def load_for_eval(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """A model and its metadata from a ``.safetensors`` or ``.pt`` checkpoint (or a run dir)."""
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.safetensors", path / "best.safetensors",
                          path / "checkpoints" / "last.safetensors"):
            if candidate.is_file():
                path = candidate
                break
    if path.suffix == ".pt":
        state = ckpt.load_state(path)
        tensors, meta = state.get("model"), state.get("meta")
    else:
        tensors, meta = ckpt.read_weights(path)
    if not meta or not tensors:
        raise CheckpointError(f"checkpoint {path} has no lkca model metadata; pass a checkpoint "
                              "written by `lkca train`")
    if meta.get("task") == "seg":
        raise CheckpointError(f"checkpoint {path} is a segmentation checkpoint; use `lkca seg eval "
                              "--checkpoint ...` (or pass one written by `lkca train`)")
    model = build_model(meta)
    ckpt.load_weights(model, tensors, path)
    return model.to(device).eval(), meta
