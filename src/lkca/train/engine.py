"""The classification training loop (paper section 4.1), readable top to bottom.

Data lives on the device as uint8; each step draws a global batch by index, and every process
trains on its slice of it, augmented (:mod:`lkca.data.augment`) and mixed (Mixup/CutMix) with
choices drawn for the whole global batch (:mod:`lkca.data.train_stream`), so the result does not
depend on the number of processes (torchrun, DDP). Device,
processes, signals, checkpoints and the run log are the shared runtime's
(:class:`lkca.runtime.session.Session`); this module keeps the data, the model, the step and the
evaluation.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from lkca.builder import build_model as build_from_record
from lkca.builder import check_model_size
from lkca.checkpoint.metadata import classifier_record
from lkca.data import dataset_info, load_dataset
from lkca.data.augment import AugmentConfig, EvalTransform, TrainAugment
from lkca.data.base import DatasetInfo
from lkca.data.device_loader import DeviceLoader
from lkca.data.mix import MixConfig, mixed_cross_entropy
from lkca.data.train_stream import TrainStream
from lkca.errors import ConfigError
from lkca.models.profile import profile
from lkca.models.registry import resolve_name
from lkca.pretrained import export_checkpoint
from lkca.runtime.compile_cache import use_inductor_cache
from lkca.runtime.console import plural
from lkca.runtime.distributed import Dist, all_reduce_sum
from lkca.runtime.nonfinite import CHECK_EVERY  # steps between the host's reads of the device
from lkca.runtime.run_dir import choose_run_dir
from lkca.runtime.session import Session
from lkca.runtime.step_memory import check_step_memory
from lkca.runtime.training_state import TrainingParts
from lkca.train.config import RESUMABLE, TrainConfig
from lkca.train.ema import WeightEMA
from lkca.train.optim import build_optimizer, build_scheduler


def model_meta(cfg: TrainConfig, info: DatasetInfo, num_classes: int, img_size: int,
               in_chans: int) -> dict[str, Any]:
    """The metadata record stored beside the weights (:mod:`lkca.checkpoint.metadata`)."""
    return classifier_record(cfg.model, cfg.model_args, num_classes, img_size, in_chans=in_chans,
                             mean=info.mean, std=info.std, dataset=cfg.dataset,
                             class_names=info.class_names)


def build_model(meta: dict[str, Any], drop_path: float = 0.0) -> nn.Module:
    """The classifier a record describes, with stochastic depth up to ``drop_path``."""
    return build_from_record(meta, drop_path_rate=drop_path)


def device_tensors(cfg: TrainConfig, split: str, device: torch.device):
    """A split's uint8 images (N, C, H, W) and labels on ``device``, and its class count."""
    data = load_dataset(cfg.dataset, cfg.data_dir, split)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(device)
    return images, torch.from_numpy(data.labels).to(device), data.num_classes


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             transform: nn.Module, batch_size: int, amp: Any, env: Dist | None = None
             ) -> tuple[float, float]:
    """Top-1 (%) and mean cross-entropy on uint8 images resident on the device.

    Under torchrun (``env``) each rank evaluates its contiguous share of the images and the
    counts (correct, loss sum) are summed over the ranks on the device; the host reads them
    once, at the end (tests/train/test_ddp.py: the same top-1 as one process, the same loss up
    to the order of the sums)."""
    model.eval()
    env = env or Dist()
    share = -(-len(images) // env.world_size)
    begin, end = env.rank * share, min(len(images), (env.rank + 1) * share)
    sums = torch.zeros(2, dtype=torch.float64, device=images.device)  # correct, loss sum
    for start in range(begin, end, batch_size):
        x = transform(images[start : min(start + batch_size, end)])
        y = labels[start : min(start + batch_size, end)]
        with amp:
            logits = model(x).float()
        sums[0] += (logits.argmax(1) == y).sum()
        sums[1] += F.cross_entropy(logits, y, reduction="sum").double()
    correct, loss_sum = all_reduce_sum(sums, env).tolist()
    return 100.0 * correct / len(images), loss_sum / len(images)


def train(cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) a classification training; returns the summary written to summary.json.

    A new run never writes over an earlier one: ``cfg.out`` holding a run is refused unless
    ``resume`` (continue it) or ``overwrite`` (delete it first); with no ``out`` the default
    folder takes the next free name (:func:`lkca.runtime.run_dir.choose_run_dir`)."""
    # A failed start leaves nothing behind: the folder, the model name, the data and the model
    # are checked (read, built) before the session creates the run directory or prints anything.
    place = choose_run_dir(cfg.out, cfg.out_dir, resume, overwrite)
    resolve_name(cfg.model)
    info = dataset_info(cfg.dataset)
    cpu = torch.device("cpu")
    train_x, train_y, num_classes = device_tensors(cfg, "train", cpu)
    test_x, test_y, _ = device_tensors(cfg, "test", cpu)
    # the same seed on every rank: the same initial weights
    torch.manual_seed(cfg.seed)
    img_size = train_x.shape[-1]
    padding = info.crop_padding if cfg.crop_padding is None else cfg.crop_padding
    if padding > img_size:  # the padded batch is a buffer of (side + 2 * padding)^2 per image
        raise ConfigError(f"crop_padding must be at most the image side ({img_size} for "
                          f"{cfg.dataset}), got {padding}; SPT pads 4 on 32x32 images")
    meta = model_meta(cfg, info, num_classes, img_size, train_x.shape[1])
    check_model_size(meta, f"model {cfg.model} with model_args {cfg.model_args}")
    check_step_memory(lambda: build_model(meta, cfg.drop_path), cfg.batch_size,
                      tuple(train_x.shape[1:]), cfg.device, cfg.precision, f"model {cfg.model}")
    model = build_model(meta, cfg.drop_path)
    with Session(place.path, device=cfg.device, batch_size=cfg.batch_size, resume=resume,
                 progress=cfg.progress, step_key="epoch", resumable=RESUMABLE,
                 impl_policy=cfg.impl_policy, overwrite=overwrite,
                 precision=cfg.precision, next_free=place.next_free) as run:
        device, env = run.device, run.env
        run.console.print(f"training {cfg.model} on {cfg.dataset} for {plural(cfg.epochs, 'epoch')} -> "
                          f"{run.dir.root}{place.note}")
        if run.threads_note:
            run.console.print(run.threads_note)

        # data: the whole data set on the device; one global batch per step, sliced per rank
        train_x, train_y = train_x.to(device), train_y.to(device)
        test_x, test_y = test_x.to(device), test_y.to(device)
        loader = DeviceLoader(train_x, train_y, cfg.batch_size, shuffle=True, drop_last=True,
                              seed=cfg.seed, passes=cfg.epoch_passes)
        steps_per_epoch = min(len(loader), cfg.max_steps_per_epoch or len(loader))
        recipe = epoch_recipe(cfg, len(train_x), steps_per_epoch)

        # model, optimiser, schedule
        model = model.to(device)
        stats = profile(model, img_size, in_chans=train_x.shape[1])
        optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.weight_decay_1d)
        scheduler = build_scheduler(optimizer, recipe["warmup_steps"], recipe["total_steps"],
                                    cfg.lr, cfg.min_lr, cfg.warmup_lr)
        ema = _build_ema(model, cfg.ema_decay)
        parts = TrainingParts(model, optimizer, scheduler, ema, run.scaler)
        augment, eval_transform, mix_cfg = _augmentation(cfg, info, device)
        stream = TrainStream(loader, augment, mix_cfg, cfg.seed, env.rank, env.world_size)

        pos: dict[str, Any] = {"epoch": 0, "step": 0, "best_top1": 0.0, "wall_s": 0.0,
                               "loss_sum": 0.0, "seen": 0}
        if resume:
            pos = run.restore(parts, cfg.to_dict(), pos)
        start_epoch, best_top1, wall_before = pos["epoch"], pos["best_top1"], pos["wall_s"]
        net = run.wrap(model)
        eval_model = ema.module if ema is not None else model  # EMA weights when EMA is on
        eval_net = eval_model
        if cfg.compile:  # training's model and evaluation's (OptimizedModules)
            use_inductor_cache()  # not the system's temporary folder
            net = cast(nn.Module, torch.compile(net))
            eval_net = cast(nn.Module, torch.compile(eval_model))
        guard = run.nonfinite_steps(cfg.skip_nonfinite)
        run.begin(cfg.to_dict(), resumed_at=start_epoch if resume else None)
        run.console.print(describe_recipe(recipe))

        t_run = time.perf_counter()
        top1 = 0.0
        timed: list[float] = []  # epochs timed in this process (training and evaluation)
        for epoch in range(start_epoch, cfg.epochs):
            t_epoch = time.perf_counter()
            net.train()
            stream.set_epoch(epoch)
            first = pos["step"] if epoch == start_epoch else 0
            bar = run.console.progress(steps_per_epoch, first, f"epoch {epoch + 1}/{cfg.epochs}")
            # the running loss stays on the device: read every CHECK_EVERY steps and at the end
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0  # images of the steps applied (the skipped ones subtracted at each check)
            if first:  # resumed mid-epoch: carry the epoch's running loss
                loss_sum += pos["loss_sum"]
                seen = pos["seen"]
            skipped, window, t0 = 0, first, time.perf_counter()
            seen_here = 0  # images this process trained on this epoch: the speed's numerator

            # step: this rank's share of the global batch, augmented and mixed (TrainStream)
            for step, batch in enumerate(stream.iter_from(first, steps_per_epoch), start=first):
                with run.amp:
                    logits = net(batch.images)
                loss = mixed_cross_entropy(logits.float(), batch, cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                # no host wait: a non-finite step is masked on the device (changes no weight)
                masked = run.backward_and_step(loss, optimizer, model.parameters(),
                                               cfg.grad_clip, guard)
                assert masked is not None
                scheduler.step()  # skipped steps step the schedule too
                if ema is not None:
                    ema.update_parameters(model, masked)
                loss_sum.add_(loss.detach().masked_fill(masked, 0.0), alpha=cfg.batch_size)
                seen += cfg.batch_size
                seen_here += cfg.batch_size
                run.stepped()
                bar.update(1)
                if (step + 1 - window) % CHECK_EVERY == 0:  # one host wait per CHECK_EVERY steps
                    bad = guard.check(partial(_step_name, epoch, window))
                    skipped, seen, window = skipped + bad, seen - bad * cfg.batch_size, step + 1
                    bar.set_postfix(loss=f"{loss_sum.item() / max(seen, 1):.3f}",
                                    img_s=f"{seen_here / (time.perf_counter() - t0):.0f}")
                if run.stop_requested:  # SIGTERM / Ctrl-C: save where we are, then stop
                    bar.close()
                    # a bad step since the last check stops the run unsaved instead
                    bad = guard.check(partial(_step_name, epoch, window))
                    skipped, seen = skipped + bad, seen - bad * cfg.batch_size
                    run.save(parts, meta, {"epoch": epoch, "step": step + 1, "best_top1": best_top1,
                                           "wall_s": wall_before + time.perf_counter() - t_run,
                                           "loss_sum": loss_sum.item(), "seen": seen})
                    raise run.interrupted(f"epoch {epoch + 1} step {step + 1}")
            bar.close()
            bad = guard.check(partial(_step_name, epoch, window))
            skipped, seen = skipped + bad, seen - bad * cfg.batch_size
            train_loss = loss_sum.item() / max(seen, 1)
            train_s = time.perf_counter() - t0

            # evaluate (the EMA weights when EMA is on), sharded over the processes
            top1, test_loss = evaluate(eval_net, test_x, test_y, eval_transform,
                                       cfg.eval_batch_size, run.amp, env)
            is_best = top1 > best_top1
            best_top1 = max(best_top1, top1)

            # log, then checkpoint: a kill between the two leaves a record past the checkpoint,
            # which --resume drops (Session.begin), never a checkpoint without its record.
            record = {"epoch": epoch + 1, "train_loss": train_loss,
                      "test_loss": test_loss, "test_top1": top1,
                      "lr": optimizer.param_groups[0]["lr"],
                      "images_per_s": seen_here * env.world_size / max(train_s, 1e-9)}
            if skipped:
                record["skipped_nonfinite"] = skipped
            run.record(record)
            # best before last: last.pt commits the epoch (its best_top1 included), so a kill
            # before it redoes the epoch and rewrites the same best; never a last.pt whose best
            # epoch has no best.safetensors
            if is_best:
                run.save_weights("best", eval_model, meta)
            run.save(parts, meta, {"epoch": epoch + 1, "step": 0, "best_top1": best_top1,
                                   "wall_s": wall_before + time.perf_counter() - t_run,
                                   "loss_sum": 0.0, "seen": 0})
            run.console.print(f"epoch {epoch + 1}/{cfg.epochs}  train_loss "
                              f"{record['train_loss']:.4f}  test_top1 {top1:.2f}%  "
                              f"({record['images_per_s']:.0f} img/s)")
            if first == 0:  # a whole epoch timed in this process
                timed.append(time.perf_counter() - t_epoch)
            line = projection_line(timed, cfg.compile, cfg.epochs - epoch - 1,
                                   wall_before + time.perf_counter() - t_run)
            if line:
                run.console.print(line)
            if cfg.stop_after_epochs and cfg.stop_after_epochs <= epoch + 1 < cfg.epochs:
                run.console.print(f"stopping after epoch {epoch + 1} as asked "
                                  "(stop_after_epochs); continue with --resume")
                break

        summary: dict[str, Any] = {}
        if env.main:
            rows = run.metrics()
            speeds = [r["images_per_s"] for r in rows]
            summary = {"model": cfg.model, "dataset": cfg.dataset, "params": stats["params"],
                       "macs": stats["macs"], "epochs": cfg.epochs,
                       "top1": rows[-1]["test_top1"] if rows else top1, "best_top1": best_top1,
                       # the first epoch that reached the best (metrics.jsonl, so resumes count)
                       "best_epoch": next((r["epoch"] for r in rows
                                           if r["test_top1"] == best_top1), None),
                       "precision": cfg.precision,
                       "train_images_per_s": sum(speeds) / len(speeds) if speeds else 0.0,
                       "wall_s": wall_before + time.perf_counter() - t_run, "recipe": recipe}
            if run.dir.weights("best").is_file():  # the best model for from_pretrained
                export_checkpoint(run.dir.weights("best"), run.dir.pretrained)
            run.finish(summary)
    return summary


def epoch_recipe(cfg: TrainConfig, dataset_size: int, steps_per_epoch: int) -> dict[str, Any]:
    """The effective length of the run (summary.json's ``recipe``): an epoch of ``epoch_passes``
    passes over the data set has ``int(passes * N) // batch_size`` steps (SPT's RASampler with
    drop_last, docs/recipe.md), capped by ``max_steps_per_epoch``; warm-up and cosine count them."""
    return {"dataset_size": dataset_size, "epoch_passes": cfg.epoch_passes,
            "batch_size": cfg.batch_size, "steps_per_epoch": steps_per_epoch,
            "images_per_epoch": steps_per_epoch * cfg.batch_size,
            "warmup_steps": min(cfg.warmup_epochs, cfg.epochs) * steps_per_epoch,
            "total_steps": cfg.epochs * steps_per_epoch,
            "total_passes": cfg.epochs * steps_per_epoch * cfg.batch_size / dataset_size}


def describe_recipe(recipe: dict[str, Any]) -> str:
    """One line: the epoch length and the run's steps, printed when a run starts."""
    full = int(recipe["epoch_passes"] * recipe["dataset_size"]) // recipe["batch_size"]
    passes = f"{recipe['epoch_passes']:g} x {recipe['dataset_size']} images"
    steps = f"{plural(recipe['steps_per_epoch'], 'step')} of {recipe['batch_size']}"
    epoch = (f"{passes} = {steps} ({recipe['images_per_epoch']} images)"
             if recipe["steps_per_epoch"] == full else
             f"{steps} ({recipe['images_per_epoch']} images; max_steps_per_epoch caps the full "
             f"epoch of {passes} = {plural(full, 'step')})")
    return (f"recipe: an epoch is {epoch}; warm-up {plural(recipe['warmup_steps'], 'step')}, "
            f"{plural(recipe['total_steps'], 'step')} in all ({recipe['total_passes']:.1f} passes "
            "over the data)")


def projection_line(timed: list[float], compiled: bool, epochs_left: int,
                    elapsed_s: float) -> str | None:
    """The ``projected:`` line, printed once, after the first epoch this process timed whole
    (training and evaluation), or with ``compiled`` (``--compile``) after the second: the first
    includes compiling the model, so projecting from it overstates the run (a 4-epoch CPU demo
    said 2.0 min for 37 s); the line says so and gives the compiling epoch's time. None on the
    other epochs and when no epoch is left."""
    needed = 2 if compiled else 1
    if len(timed) != needed or epochs_left <= 0:
        return None
    epoch_s = timed[-1]
    total = elapsed_s + epoch_s * epochs_left
    note = (f"; from epoch 2 of this process: epoch 1, {_hours(timed[0])}, compiled the model"
            if compiled else "")
    return (f"projected: {_hours(total)} for the whole run ({_hours(epoch_s)} per epoch on this "
            f"device, {plural(epochs_left, 'epoch')} left{note})")


def _step_name(epoch: int, window: int, index: int) -> str:
    """The name of step ``index`` of the check window that starts at step ``window``."""
    return f"epoch {epoch + 1} step {window + index + 1}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else (
        f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s")


def _augmentation(cfg: TrainConfig, info: DatasetInfo, device: torch.device
                  ) -> tuple[TrainAugment, nn.Module, MixConfig]:
    """The training augmentation, the evaluation transform and the mixing of the recipe."""
    policy = None if cfg.autoaugment in (None, "none") else (
        info.autoaugment_policy if cfg.autoaugment == "auto" else cfg.autoaugment)
    augment = TrainAugment(AugmentConfig.from_dataset(
        info, autoaugment=policy, erasing_p=cfg.erasing_p, erasing_fill=cfg.erasing_fill,
        **{k: v for k, v in (("hflip", cfg.hflip), ("crop_padding", cfg.crop_padding))
           if v is not None})).to(device)
    eval_transform = EvalTransform(info.mean, info.std).to(device)
    return augment, eval_transform, MixConfig(cfg.mix_prob, cfg.cutmix_prob, cfg.mixup_alpha,
                                              cfg.cutmix_beta)


def _build_ema(model: nn.Module, decay: float | None) -> WeightEMA | None:
    """An exponential moving average of the weights (``None`` when ``decay`` is off)."""
    return WeightEMA(model, decay) if decay else None
