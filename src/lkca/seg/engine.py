"""The segmentation training loop (paper section 4.2), iteration-based as MMSegmentation's.

Each iteration draws the global batch's image indices from a permutation per pass over the data,
seeded by (seed, pass); every process decodes and augments its slice of that batch
(:class:`TrainTransform`, its generator seeded by (seed, iter, rank)) and reseeds torch's RNG by
(seed, iter, rank) for drop-path and dropout. Nothing random depends on earlier iterations, so
``--resume`` from ``checkpoints/last.pt`` continues bit for bit, and a batch can be made ahead of
its step: a background thread decodes and augments the next ``prefetch_batches`` batches while
the step runs (:class:`lkca.data.prefetch.Prefetch`), the same batches in the same order. The
losses are summed on the device and read by the host before each evaluation and save, not per
step. AdamW with linear warm-up and poly decay per iteration (:mod:`lkca.seg.optim`); bf16
autocast on CUDA; DDP under torchrun (SyncBatchNorm on GPUs). Device, processes, signals,
checkpoints and the run log are the shared runtime's (:class:`lkca.runtime.session.Session`);
this module keeps the data, the model, the step and the evaluation.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache, partial
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn

from lkca.builder import build_model, check_model_size
from lkca.checkpoint.metadata import segmentor_record
from lkca.data.ade20k import ADE20K, load_ade20k
from lkca.data.prefetch import Prefetch
from lkca.errors import ConfigError
from lkca.models.profile import count_params
from lkca.runtime.console import progress_bar
from lkca.runtime.device import mixed_precision
from lkca.runtime.distributed import all_reduce_sum
from lkca.runtime.nonfinite import CHECK_EVERY
from lkca.runtime.run_dir import choose_run_dir
from lkca.runtime.session import Session
from lkca.runtime.step_memory import check_step_memory
from lkca.runtime.training_state import TrainingParts
from lkca.seg.config import EVAL_MODES, RESUMABLE, SegConfig
from lkca.seg.metrics import ConfusionMatrix
from lkca.seg.normalisation import unit_mean_std
from lkca.seg.optim import build_seg_optimizer, build_seg_scheduler
from lkca.seg.segmentor import Segmentor
from lkca.seg.transforms import TrainTransform, resize_for_test, to_device


def seg_meta(cfg: SegConfig) -> dict[str, Any]:
    """The metadata record stored beside the weights (:mod:`lkca.checkpoint.metadata`): what
    rebuilds the segmentor (built for ``crop_size`` inputs) and its test pipeline."""
    mean, std = unit_mean_std()
    return segmentor_record(cfg.backbone, cfg.head, cfg.num_classes,
                            {"img_size": cfg.crop_size, **cfg.model_args},
                            crop_size=cfg.crop_size, img_scale=cfg.img_scale,
                            slide_stride=cfg.slide_stride, mean=mean, std=std, dataset="ade20k")


def build_segmentor(meta: dict[str, Any]) -> Segmentor:
    """The segmentor a record describes (see :func:`seg_meta`)."""
    return cast(Segmentor, build_model(meta))


def eval_pipeline(meta: dict[str, Any]) -> tuple[int, int, tuple[int, int]]:
    """(crop size, slide stride, test scale) of a segmentor's record: its training run's, else
    :class:`SegConfig`'s defaults for the input size it was built for."""
    crop = meta.get("crop_size") or int(meta["model_args"].get("img_size", SegConfig.crop_size))
    stride = meta.get("slide_stride") or crop * 2 // 3
    long, short = meta.get("img_scale") or SegConfig.img_scale
    return crop, stride, (long, short)


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
             max_images: int | None = None, progress: bool = False,
             precision: str = "fp32", prefetch: int = 2) -> dict[str, Any]:
    """aAcc, mIoU, mAcc, top10_mIoU (percent) and per_class_iou of ``model`` on ``dataset``.

    Each image is resized keep-ratio to ``scale`` (MMSegmentation's ADE20K test pipeline), run
    whole or in ``crop_size`` windows every ``stride`` pixels (``mode="slide"``), and its logits
    resized back to the label's size; one confusion matrix on the model's device collects all
    pixels and is summed over processes (each takes every world-size-th image). ``max_images``:
    only the first N images. ``precision``: the forward's autocast (the run's, during training).
    ``prefetch``: images decoded and resized ahead on a background thread
    (:class:`lkca.data.prefetch.Prefetch`; 0: none). Returns the metrics of
    :func:`metrics_from_confusion` + ``images``.
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
    bar = progress_bar(progress and rank == 0, len(range(rank, n, world)), 0, "eval")

    def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = dataset[i]
        return resize_for_test(image, device, scale), to_device(torch.from_numpy(label), device)

    with Prefetch(load, range(rank, n, world), prefetch, "lkca-seg-eval-input") as images:
        for _, (x, label) in images:
            out_size = (label.shape[0], label.shape[1])
            with mixed_precision(device, precision):
                logits = (model.predict_whole(x, out_size=out_size) if mode == "whole" else
                          model.predict_slide(x, crop_size, stride, out_size=out_size))
            cm.update(logits.float(), label[None])
            bar.update(1)
    bar.close()
    model.train(was_training)
    return {**cm.all_reduce().compute(), "images": n}


def train(cfg: SegConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) a segmentation training; returns the summary written to summary.json.
    The run directory is chosen and checked as for classification
    (:func:`lkca.runtime.run_dir.choose_run_dir`: an earlier run is never written over)."""
    place = choose_run_dir(cfg.out, cfg.out_dir, resume, overwrite)
    if cfg.data_dir is None:
        raise ConfigError("no ADE20K folder given: pass --data-dir DIR (the folder holding "
                          "ADEChallengeData2016/) or set data_dir in the config")
    # data: file lists here, images decoded and augmented per iteration (ahead of the step)
    train_set, val_set = load_ade20k(cfg.data_dir, "training"), load_ade20k(cfg.data_dir, "validation")
    if cfg.num_classes < train_set.num_classes:
        raise ConfigError(f"num_classes {cfg.num_classes} is below ADE20K's {train_set.num_classes} "
                          f"label values; use num_classes: {train_set.num_classes}")
    transform = TrainTransform(scale=cfg.img_scale, crop_size=(cfg.crop_size, cfg.crop_size))
    # the model (the same initial weights on every rank), built before the session creates the
    # run directory: a failed start leaves nothing behind
    meta = seg_meta(cfg)
    check_model_size(meta, f"{cfg.head} + {cfg.backbone} with model_args {cfg.model_args}")
    check_step_memory(lambda: build_segmentor(meta), cfg.batch_size,
                      (3, cfg.crop_size, cfg.crop_size), cfg.device, cfg.precision,
                      f"{cfg.head} + {cfg.backbone}", fix="lower batch_size or crop_size")
    torch.manual_seed(cfg.seed)
    model = build_segmentor(meta)
    with Session(place.path, device=cfg.device, batch_size=cfg.batch_size, resume=resume,
                 progress=cfg.progress, step_key="iter", resumable=RESUMABLE,
                 impl_policy=cfg.impl_policy, overwrite=overwrite,
                 precision=cfg.precision, next_free=place.next_free) as run:
        device, env = run.device, run.env
        run.console.print(f"training {cfg.head} + {cfg.backbone} on ADE20K for {cfg.iters} iters "
                          f"-> {run.dir.root}{place.note}")
        if run.threads_note:
            run.console.print(run.threads_note)
        shard = env.shard(cfg.batch_size)

        # model, optimiser, schedule
        model = model.to(device)
        if env.world_size > 1 and device.type == "cuda":  # torch's SyncBatchNorm needs GPU tensors
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        params = count_params(model)
        optimizer = build_seg_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.betas[0], cfg.betas[1]))
        scheduler = build_seg_scheduler(optimizer, cfg.warmup_iters, cfg.iters, cfg.power,
                                        cfg.min_lr / cfg.lr, cfg.warmup_ratio)
        parts = TrainingParts(model, optimizer, scheduler, scaler=run.scaler)
        pos: dict[str, Any] = {"iter": 0, "wall_s": 0.0, "loss_sum": 0.0, "loss_count": 0,
                               "train_s": 0.0, "last_eval": {}}
        if resume:
            pos = run.restore(parts, cfg.to_dict(), pos)
        step = run.wrap(_TrainStep(model))
        run.begin(cfg.to_dict(), resumed_at=pos["iter"] if resume else None)

        def make_batch(it: int) -> tuple[torch.Tensor, torch.Tensor]:
            """This rank's slice of iteration ``it``'s global batch, decoded and augmented; every
            draw seeded by (seed, it, rank), so it is the same on whichever thread, whenever."""
            gen = torch.Generator().manual_seed(iter_seed(cfg.seed, it, env.rank, "augment"))
            idx = sample_indices(cfg.seed, it, cfg.batch_size, len(train_set))[shard]
            return transform([train_set[i] for i in idx], device, gen)

        t_run, done = time.perf_counter(), pos["iter"]
        last_eval: dict[str, Any] = pos["last_eval"]
        bar = run.console.progress(cfg.iters, done, f"{cfg.head}_{cfg.backbone}")
        # the losses since the last evaluation, summed on the device in float64 (the order and
        # rounding of a Python float sum) and read on the host only before an evaluation or a
        # save: no wait for the device inside the step
        loss_sum = torch.tensor(pos["loss_sum"], dtype=torch.float64, device=device)
        guard, window = run.nonfinite_steps(None), done  # window: the first unchecked iteration
        model.train()
        with Prefetch(make_batch, range(pos["iter"], cfg.iters), cfg.prefetch_batches,
                      "lkca-seg-train-input") as batches:
            t0 = time.perf_counter()  # an iteration's time: waiting for its batch, then the step
            for it, (images, labels) in batches:
                # step (the batch was made ahead: make_batch); drop-path and dropout seeded here
                torch.manual_seed(iter_seed(cfg.seed, it, env.rank, "model"))
                with run.amp:
                    losses = step(images, labels)
                loss = losses["loss"]
                optimizer.zero_grad(set_to_none=True)
                # no host wait: a non-finite step is masked on the device (changes no weight)
                # and stops the run at the next check (no skip option here)
                run.backward_and_step(loss, optimizer, model.parameters(), cfg.grad_clip, guard)
                scheduler.step()
                loss_sum += loss.detach().double()
                pos["loss_count"] += 1
                done = it + 1
                evaluating = cfg.evaluates_at(done)
                stopping = (cfg.stop_after_iters is not None
                            and cfg.stop_after_iters <= done < cfg.iters)
                # the host reads the device: every CHECK_EVERY iterations, and before a loss
                # sum is read, an evaluation or a save (inside the timing)
                signalled = run.stop_requested  # read once: a signal after this waits a step
                if stopping or evaluating or signalled or (done - window) % CHECK_EVERY == 0:
                    guard.check(partial(_iter_name, window))
                    window = done
                if stopping or evaluating:
                    pos["loss_sum"] = float(loss_sum)
                pos["train_s"] += time.perf_counter() - t0
                run.stepped()
                bar.update(1)
                bar.set_postfix(lr=f"{scheduler.get_last_lr()[0]:.2e}")

                # evaluate and log, then checkpoint (the classification engine's order, and why)
                if evaluating:
                    last_eval = _evaluate_and_log(cfg, model, val_set, run, done, pos,
                                                  float(scheduler.get_last_lr()[0]))
                    bar.set_postfix(loss=f"{pos['loss_sum'] / max(pos['loss_count'], 1):.3f}",
                                    lr=f"{scheduler.get_last_lr()[0]:.2e}")
                    pos.update(loss_sum=0.0, loss_count=0, train_s=0.0)
                    loss_sum.zero_()

                # at each evaluation, at the end, and before stopping
                if signalled or stopping or evaluating:
                    pos["loss_sum"] = float(loss_sum)
                    run.save(parts, meta, dict(pos, iter=done, last_eval=last_eval,
                                               wall_s=pos["wall_s"] + time.perf_counter() - t_run))
                if signalled:
                    bar.close()
                    raise run.interrupted(f"iter {done}")
                if stopping:
                    run.console.print(f"stopping after iter {done} as asked (stop_after_iters); "
                                      "continue with --resume")
                    break
                t0 = time.perf_counter()
        bar.close()

        summary: dict[str, Any] = {}
        if env.main:
            keys = ("aAcc", "mIoU", "mAcc", "top10_mIoU", "per_class_iou")
            summary = {"backbone": cfg.backbone, "head": cfg.head, "params": params, "iters": done,
                       **{k: last_eval.get(k) for k in keys}, "eval_mode": cfg.eval_mode,
                       "eval_images": last_eval.get("images"), "precision": cfg.precision,
                       "wall_s": pos["wall_s"] + time.perf_counter() - t_run}
            run.finish(summary)
    return summary


def _iter_name(window: int, i: int) -> str:
    """The name of the ``i``-th iteration since ``window`` (the first one unchecked)."""
    return f"iter {window + i + 1}"


def _evaluate_and_log(cfg: SegConfig, model: Segmentor, val_set: ADE20K, run: Session, done: int,
                      pos: dict[str, Any], lr: float) -> dict[str, Any]:
    """Evaluate, then log the record of iterations since the last evaluation (all ranks' sums)."""
    env = run.env
    assert cfg.slide_stride is not None  # derived from crop_size by SegConfig
    if env.world_size > 1:  # BatchNorm statistics of each rank's shard: evaluate (and save) rank 0's
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    metrics = evaluate(model, val_set, cfg.eval_mode, crop_size=cfg.crop_size,
                       stride=cfg.slide_stride, scale=cfg.img_scale, num_classes=cfg.num_classes,
                       max_images=cfg.max_eval_images, progress=cfg.progress,
                       precision=cfg.precision, prefetch=cfg.prefetch_batches)
    totals = torch.tensor([pos["loss_sum"], pos["loss_count"], pos["train_s"]], dtype=torch.float64)
    if env.world_size > 1:
        totals = all_reduce_sum(totals.to(next(model.parameters()).device), env)
        totals = totals.cpu() / torch.tensor([1.0, 1.0, env.world_size], dtype=torch.float64)
    loss_sum, count, train_s = totals.tolist()
    record = {"iter": done, **{k: metrics[k] for k in ("aAcc", "mIoU", "mAcc", "top10_mIoU")},
              "loss": loss_sum / max(count, 1), "lr": lr,
              "iters_per_s": (count / env.world_size) / max(train_s, 1e-9)}
    run.record(record)
    run.console.print(f"iter {done}/{cfg.iters}  loss {record['loss']:.4f}  aAcc "
                      f"{record['aAcc']:.2f}  mIoU {record['mIoU']:.2f}  top-10 mIoU "
                      f"{record['top10_mIoU']:.2f}  mAcc {record['mAcc']:.2f}  "
                      f"({record['iters_per_s']:.2f} it/s)")
    return metrics
