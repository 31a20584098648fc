"""The segmentation training loop (paper section 4.2), iteration-based as MMSegmentation's.

Each iteration draws the global batch's image indices from a permutation per pass over the data,
seeded by (seed, pass); every process decodes and augments its slice of that batch
(:class:`TrainTransform`, its generator seeded by (seed, iter, rank)) and reseeds torch's RNG by
(seed, iter, rank) for drop-path and dropout. Nothing random depends on earlier iterations, so
``--resume`` from ``checkpoints/last.pt`` continues bit for bit. AdamW with linear warm-up and
poly decay per iteration; bf16 autocast on CUDA; DDP under torchrun (SyncBatchNorm on GPUs).
The checkpoint, logging, signal and distributed pieces are the classification engine's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lkca.data.ade20k import ADE20K, load_ade20k
from lkca.errors import CheckpointError, ConfigError, UserError
from lkca.seg.config import EVAL_MODES, SegConfig
from lkca.seg.metrics import ConfusionMatrix
from lkca.seg.segmentor import Segmentor, create_segmentor
from lkca.seg.transforms import TrainTransform, resize_for_test
from lkca.train import checkpoint as ckpt
from lkca.train.config import save_yaml
from lkca.train.engine import (
    Dist,
    Interrupted,
    NonFiniteLoss,
    StopRequest,
    all_finite,
    check_writable,
    mixed_precision,
    resolve_device,
    rng_state,
    setup_distributed,
)
from lkca.train.log import RunLog, write_json
from lkca.train.optim import adamw, param_groups, warmup_poly


def seg_meta(cfg: SegConfig) -> dict[str, Any]:
    """What rebuilds the segmentor and its test-time resizing: stored beside the weights."""
    return {"task": "seg", "backbone": cfg.backbone, "head": cfg.head,
            "num_classes": cfg.num_classes, "model_args": {"img_size": cfg.crop_size, **cfg.model_args},
            "crop_size": cfg.crop_size, "img_scale": list(cfg.img_scale),
            "slide_stride": cfg.slide_stride}


def build_segmentor(meta: dict[str, Any]) -> Segmentor:
    return create_segmentor(meta["backbone"], meta["head"], meta["num_classes"], **meta["model_args"])


def iter_seed(seed: int, it: int, rank: int = 0, stream: str = "") -> int:
    """A 63-bit seed from (seed, iteration, rank, stream): no dependence on earlier iterations."""
    digest = hashlib.blake2b(f"{seed}/{it}/{rank}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(iter_seed(seed, epoch, 0, "perm")))


def sample_indices(seed: int, it: int, batch_size: int, n: int) -> list[int]:
    """Image indices of iteration ``it``'s global batch: sample positions it*B .. it*B+B-1 of an
    endless sequence of passes, each pass a seeded permutation of the n images (MMSegmentation's
    InfiniteSampler with shuffle)."""
    positions = range(it * batch_size, (it + 1) * batch_size)
    return [int(_permutation(seed, p // n, n)[p % n]) for p in positions]


def seg_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """:func:`param_groups` (no decay on biases and norms) with the position table undecayed too,
    as MMSegmentation's ViT configs (``pos_embed`` decay_mult 0)."""
    decay, no_decay = param_groups(model, weight_decay)
    pos = {id(p) for n, p in model.named_parameters() if "pos_embed" in n}
    return [{"params": [p for p in decay["params"] if id(p) not in pos], "weight_decay": weight_decay},
            {"params": no_decay["params"] + [p for p in decay["params"] if id(p) in pos],
             "weight_decay": 0.0}]


class _TrainStep(nn.Module):
    """``forward`` = the segmentor's ``forward_train``, so DDP sees (and syncs) the training call."""

    def __init__(self, model: Segmentor) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_train(images, labels)


@torch.no_grad()
def evaluate(model: Segmentor, dataset: ADE20K, mode: str = "whole", *, crop_size: int = 512,
             stride: int = 341, scale: tuple[int, int] = (2048, 512), num_classes: int | None = None,
             max_images: int | None = None, progress: bool = False) -> dict[str, Any]:
    """aAcc, mIoU, mAcc, top10_mIoU (percent) and per_class_iou of ``model`` on ``dataset``.

    Each image is resized keep-ratio to ``scale`` (MMSegmentation's ADE20K test pipeline), run
    whole or in ``crop_size`` windows every ``stride`` pixels (``mode="slide"``), and its logits
    resized back to the label's size; one confusion matrix on the model's device collects all
    pixels and is summed over processes (each takes every world-size-th image). ``max_images``:
    only the first N images. Returns the metrics of :func:`metrics_from_confusion` + ``images``.
    """
    if mode not in EVAL_MODES:
        raise ConfigError(f"evaluation mode must be one of {', '.join(EVAL_MODES)}, got {mode!r}")
    if mode == "slide" and not 0 < stride <= crop_size:
        raise ConfigError(f"slide stride {stride} must be in (0, crop {crop_size}] or windows leave "
                          "gaps; use e.g. stride 341 with crop 512")
    device = next(model.parameters()).device
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    cm = ConfusionMatrix(num_classes or dataset.num_classes, dataset.ignore_index, device)
    was_training = model.training
    model.eval()
    bar = _bar(progress and rank == 0, len(range(rank, n, world)), 0, "eval")
    for i in range(rank, n, world):
        image, label = dataset[i]
        x = resize_for_test(image, device, scale)
        with mixed_precision(device):
            logits = (model.predict_whole(x, out_size=label.shape) if mode == "whole" else
                      model.predict_slide(x, crop_size, stride, out_size=label.shape))
        cm.update(logits.float(), torch.from_numpy(label).to(device)[None])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    model.train(was_training)
    return {**cm.all_reduce().compute(), "images": n}


def _bar(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def train(cfg: SegConfig, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) a segmentation training; returns the summary written to summary.json."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise UserError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes "
                        "(WORLD_SIZE); choose a global batch that is a multiple of the world size")
    if cfg.data_dir is None:
        raise ConfigError("no ADE20K folder given: pass --data-dir DIR (the folder holding "
                          "ADEChallengeData2016/) or set data_dir in the config")
    device = resolve_device(cfg.device)
    env = setup_distributed(device)
    train_set, val_set = load_ade20k(cfg.data_dir, "training"), load_ade20k(cfg.data_dir, "validation")
    if cfg.num_classes < train_set.num_classes:
        raise ConfigError(f"num_classes {cfg.num_classes} is below ADE20K's {train_set.num_classes} "
                          f"label values; use num_classes: {train_set.num_classes}")
    out, ckpt_dir = cfg.out_dir, cfg.out_dir / "checkpoints"
    if resume and not (ckpt_dir / "last.pt").exists():
        raise CheckpointError(f"--resume: no checkpoint at {ckpt_dir / 'last.pt'}; "
                              "start without --resume or point --out at the run to continue")
    if env.main:
        check_writable(out)

    meta = seg_meta(cfg)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = build_segmentor(meta).to(device)
    if env.world_size > 1 and device.type == "cuda":  # torch's SyncBatchNorm needs GPU tensors
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    params = sum(p.numel() for p in model.parameters())
    optimizer = adamw(seg_param_groups(model, cfg.weight_decay), cfg.lr, (cfg.betas[0], cfg.betas[1]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_poly(
        s, cfg.warmup_iters, cfg.iters, cfg.power, cfg.min_lr / cfg.lr, cfg.warmup_ratio))
    pos: dict[str, Any] = {"iter": 0, "wall_s": 0.0, "loss_sum": 0.0, "loss_count": 0,
                           "train_s": 0.0, "last_eval": {}}
    if resume:
        pos = _restore(ckpt_dir / "last.pt", model, optimizer, scheduler)
    step: nn.Module = _TrainStep(model)
    if env.world_size > 1:
        step = nn.parallel.DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None)

    log = RunLog(out, enabled=env.main, step_key="iter")
    if env.main:
        save_yaml(cfg, out / "config.yaml")
        if resume:
            log.truncate_after(pos["iter"])
    transform = TrainTransform(scale=cfg.img_scale, crop_size=(cfg.crop_size, cfg.crop_size))
    local = cfg.batch_size // env.world_size
    shard = slice(env.rank * local, (env.rank + 1) * local)
    t_run, done = time.perf_counter(), pos["iter"]
    last_eval: dict[str, Any] = pos["last_eval"]
    bar = _bar(cfg.progress and env.main, cfg.iters, done, f"{cfg.head}_{cfg.backbone}")
    model.train()
    with StopRequest() as stop:
        for it in range(pos["iter"], cfg.iters):
            t0 = time.perf_counter()
            torch.manual_seed(iter_seed(cfg.seed, it, env.rank, "model"))  # drop-path, dropout
            gen = torch.Generator().manual_seed(iter_seed(cfg.seed, it, env.rank, "augment"))
            idx = sample_indices(cfg.seed, it, cfg.batch_size, len(train_set))[shard]
            images, labels = transform([train_set[i] for i in idx], device, gen)
            with mixed_precision(device):
                losses = step(images, labels)
            loss = losses["loss"]
            if not all_finite(loss, env):
                raise NonFiniteLoss(
                    f"non-finite loss at iter {it + 1}; the last good checkpoint "
                    f"{ckpt_dir / 'last.pt'} is kept: lower --lr or set grad_clip, then --resume")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            pos["loss_sum"] += loss.item()
            pos["loss_count"] += 1
            pos["train_s"] += time.perf_counter() - t0
            done = it + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if done % cfg.eval_interval == 0 or done == cfg.iters:
                last_eval = _evaluate_and_log(cfg, model, val_set, env, log, done, pos,
                                              float(scheduler.get_last_lr()[0]))
                pos.update(loss_sum=0.0, loss_count=0, train_s=0.0)
            stopping = cfg.stop_after_iters is not None and cfg.stop_after_iters <= done < cfg.iters
            if stop.signum is not None or stopping or done == cfg.iters or (
                    done % cfg.eval_interval == 0):
                if env.main:
                    _save(ckpt_dir, model, optimizer, scheduler, meta, dict(
                        pos, iter=done, last_eval=last_eval,
                        wall_s=pos["wall_s"] + time.perf_counter() - t_run))
            if stop.signum is not None:
                if bar is not None:
                    bar.close()
                raise Interrupted(f"stopped by {signal.Signals(stop.signum).name} at iter {done}; "
                                  f"checkpoint saved to {ckpt_dir / 'last.pt'}: continue with --resume")
            if stopping:
                if env.main:
                    print(f"stopping after iter {done} as asked (stop_after_iters); continue with "
                          "--resume", flush=True)
                break
    if bar is not None:
        bar.close()
    summary: dict[str, Any] = {}
    if env.main:
        keys = ("aAcc", "mIoU", "mAcc", "top10_mIoU", "per_class_iou")
        summary = {"backbone": cfg.backbone, "head": cfg.head, "params": params, "iters": done,
                   **{k: last_eval.get(k) for k in keys}, "eval_mode": cfg.eval_mode,
                   "eval_images": last_eval.get("images"),
                   "wall_s": pos["wall_s"] + time.perf_counter() - t_run}
        write_json(out / "summary.json", summary)
        log.close()
    return summary


def _evaluate_and_log(cfg: SegConfig, model: Segmentor, val_set: ADE20K, env: Dist, log: RunLog,
                      done: int, pos: dict[str, Any], lr: float) -> dict[str, Any]:
    if env.world_size > 1:  # BatchNorm statistics of each rank's shard: evaluate (and save) rank 0's
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    metrics = evaluate(model, val_set, cfg.eval_mode, crop_size=cfg.crop_size,
                       stride=cfg.slide_stride, scale=cfg.img_scale, num_classes=cfg.num_classes,
                       max_images=cfg.max_eval_images, progress=cfg.progress)
    totals = torch.tensor([pos["loss_sum"], pos["loss_count"], pos["train_s"]], dtype=torch.float64)
    if env.world_size > 1:
        totals = totals.to(next(model.parameters()).device)
        dist.all_reduce(totals)
        totals = totals.cpu() / torch.tensor([1.0, 1.0, env.world_size], dtype=torch.float64)
    loss_sum, count, train_s = totals.tolist()
    record = {"iter": done, **{k: metrics[k] for k in ("aAcc", "mIoU", "mAcc", "top10_mIoU")},
              "loss": loss_sum / max(count, 1), "lr": lr,
              "iters_per_s": (count / env.world_size) / max(train_s, 1e-9)}
    if env.main:
        log.write(record)
        print(f"iter {done}/{cfg.iters}  loss {record['loss']:.4f}  aAcc {record['aAcc']:.2f}  "
              f"mIoU {record['mIoU']:.2f}  mAcc {record['mAcc']:.2f}  "
              f"({record['iters_per_s']:.2f} it/s)", flush=True)
    return metrics


def _save(ckpt_dir: Path, model: nn.Module, optimizer, scheduler, meta: dict[str, Any],
          position: dict[str, Any]) -> None:
    """``last.pt`` alone resumes the run; ``last.safetensors`` (weights + meta) is for eval/predict.
    Both are written atomically."""
    ckpt.save_weights(ckpt_dir / "last.safetensors", model, meta)
    ckpt.save_state(ckpt_dir / "last.pt", dict(
        position, meta=meta, model=model.state_dict(), optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(), rng=rng_state()))


def _restore(path: Path, model: nn.Module, optimizer, scheduler) -> dict[str, Any]:
    state = ckpt.load_state(path)
    ckpt.load_weights(model, state["model"], path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return {k: state[k] for k in ("iter", "wall_s", "loss_sum", "loss_count", "train_s", "last_eval")}


def load_segmentor(path: Path, device: torch.device) -> tuple[Segmentor, dict[str, Any]]:
    """A segmentor and its meta from ``last.safetensors`` / ``last.pt`` or a run directory."""
    path = Path(path)
    if path.is_dir():
        path = next((p for p in (path / "checkpoints" / "last.safetensors", path / "last.safetensors")
                     if p.is_file()), path / "checkpoints" / "last.safetensors")
    if path.suffix == ".pt":
        state = ckpt.load_state(path)
        tensors, meta = state.get("model"), state.get("meta")
    else:
        tensors, meta = ckpt.read_weights(path)
    if not meta or meta.get("task") != "seg" or not tensors:
        raise CheckpointError(f"checkpoint {path} is not a segmentation checkpoint; pass one "
                              "written by `lkca seg train` (RUN/checkpoints/last.safetensors)")
    model = build_segmentor(meta)
    ckpt.load_weights(model, tensors, path)
    return model.to(device).eval(), meta

