"""Images/s of the training augmentation pipeline and of full training steps.

    python benchmarks/train_throughput.py                                  # CPU, fp32
    python benchmarks/train_throughput.py --epochs-projection --profile    # + 100-epoch projection
    python benchmarks/train_throughput.py --device cuda --epochs-projection  # GPU, bf16 autocast

What is timed, on synthetic CIFAR-shaped data (uint8 (N, 3, 32, 32), random labels) that lives on
the device and is drawn by index with :class:`lkca.data.device_loader.DeviceLoader`, as in the
engine:

- ``pipeline``: the full CIFAR-10 recipe, ``TrainAugment(AugmentConfig.from_dataset(cifar10))``
  (flip, pad-4 crop, AutoAugment cifar10 policy per image, normalise, random erasing p=0.25) then
  ``mix_batch`` (Mixup/CutMix, SPT's probabilities), on a (128, 3, 32, 32) batch.
- ``train <model>``: the engine's training step rebuilt from its parts: draw the batch,
  augment, mix, forward (bf16 autocast on CUDA, fp32 on CPU), ``mixed_cross_entropy`` with label
  smoothing 0.1, ``zero_grad``, backward, AdamW (lr 1e-3, wd 0.05, the engine's param groups)
  and the warm-up/cosine scheduler step, with no host wait (the engine reads the device every
  100 steps); the model built with ``drop_path_rate=0.1`` and in train mode. Models: vit_2p7m
  and vit_lkca_2p7m.
- with ``--engine`` also, after the rounds, ``lkca train`` itself against the model's bare step
  (benchmarks/engine_step.py): the training images/s of the engine's second epoch of
  ``--engine-steps`` steps (its real step: the paper config's augmentation and mixing, the
  Session, the device-side non-finite guard, the schedule) and of the model's own
  forward/backward/fused-AdamW step on one batch, and their ratio (``engine_step`` in the JSON).
- with ``--epochs-projection`` also ``eval <model>``: the per-epoch test pass (``EvalTransform`` +
  forward under ``no_grad``).

The cases are measured round-robin (one sample of each in turn, ``--rounds`` rounds) after a
warm-up, so drift in the load of a shared machine hits all of them alike; each figure is the
median of its samples. Each sample records the fraction of the machine's CPU time used by other
processes while it ran (from /proc/stat); a sample above ``--max-foreign`` (default 15%) does not
count and is retaken in up to ``--extra-rounds`` further rounds (while the measurement has run
less than ``--budget-s``). This matters on a small shared CPU: two processes each running torch
with one thread per core oversubscribe the cores and a step can become many times slower, not
just twice. The load average is recorded at start and end, and the table shows the clean samples
and the median load of other processes per case.

Targets: the pipeline >= 3x the images/s of the training step of each model (it must
never be the bottleneck), and vit_lkca_2p7m >= 1.2x the training images/s of vit_2p7m.

``--epochs-projection``: the wall time of the paper's CIFAR-10 run, 100 epochs of three passes
over 50,000 images (SPT's epoch, docs/recipe.md) at batch 128 with drop_last (1,171 steps an
epoch, 117,100 in all), projected from the measured median step time, plus 100 test passes over
10,000 images at the measured eval rate. It leaves
out the start-up (data loading, model build), checkpoint writes and logging, which are small
next to the steps. On CPU it is computed too and labelled as CPU (it is then only a curiosity);
the figure that matters is the one with ``--device cuda``. The test pass is timed at
``--eval-batch`` images (CPU default 128, to keep the run short; CUDA 500, the engine's).

``--profile``: after the timed rounds, one training step of each model under ``torch.profiler``
(retaken up to 3 times if other processes were busy); prints and stores the top operators by
self time (CPU; on CUDA by self device time).

Writes ``benchmarks/results/train_throughput_<device>.json`` (machine, load, settings, every
sample, ratios, targets) and exits with status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import _cpu_ticks, foreign_load, machine  # noqa: E402

import lkca
from lkca.autotune.tuner import impl_choices
from lkca.data import dataset_info
from lkca.data.augment import AugmentConfig, EvalTransform, TrainAugment
from lkca.data.device_loader import DeviceLoader
from lkca.data.mix import MixConfig, mix_batch, mixed_cross_entropy
from lkca.models import create_model
from lkca.runtime.device import mixed_precision, resolve_device
from lkca.train.optim import build_optimizer, build_scheduler

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("vit_2p7m", "vit_lkca_2p7m")
PIPELINE_RATIO, LKCA_SPEEDUP = 3.0, 1.2
# The paper's CIFAR-10 run (section 4.1): 100 epochs, 50,000 training and 10,000 test images.
EPOCHS, TRAIN_IMAGES, TEST_IMAGES = 100, 50_000, 10_000
EPOCH_PASSES = 3  # SPT main.py:98 (the paper configs' epoch_passes, docs/recipe.md)
DROP_PATH, LABEL_SMOOTHING, LR, WEIGHT_DECAY, WARMUP_EPOCHS = 0.1, 0.1, 1e-3, 0.05, 10


# --- machine and load ---------------------------------------------------------------------------


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# --- the cases ----------------------------------------------------------------------------------


def batches(loader: DeviceLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (images, labels) batches, a new epoch order after each pass."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def make_cases(args: argparse.Namespace, device: torch.device) -> tuple[dict, dict]:
    """name -> (closure running one sample, images per sample); and what was built (for the JSON)."""
    torch.manual_seed(args.seed)
    info = dataset_info("cifar10")
    gen = torch.Generator().manual_seed(args.seed)
    n = max(args.pool, args.batch)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen).to(device)
    labels = torch.randint(0, info.num_classes, (n,), generator=gen).to(device)
    loader = DeviceLoader(images, labels, args.batch, shuffle=True, drop_last=True, seed=args.seed)
    stream = batches(loader)
    augment = TrainAugment(AugmentConfig.from_dataset(info)).to(device)
    eval_transform = EvalTransform(info.mean, info.std).to(device)
    mix_cfg = MixConfig()  # SPT: mix half of the batches, CutMix or Mixup half each, alpha = beta = 1
    amp = mixed_precision(device, "bf16" if device.type == "cuda" else "fp32")  # as the docstring says
    steps_per_epoch = EPOCH_PASSES * TRAIN_IMAGES // args.batch

    def pipeline() -> None:
        for _ in range(args.pipeline_reps):
            x, y = next(stream)
            batch = mix_batch(augment(x), y, mix_cfg)
        float(batch.images[0, 0, 0, 0])  # wait for the device (one element, no full copy)

    cases: dict[str, tuple[Callable[[], None], int]] = {
        "pipeline": (pipeline, args.pipeline_reps * args.batch)
    }
    built: dict[str, dict] = {}
    for name in args.models:
        model = create_model(name, num_classes=info.num_classes, img_size=32,
                             drop_path_rate=DROP_PATH).to(device)
        net = torch.compile(model) if args.compile else model
        optimizer = build_optimizer(model, LR, WEIGHT_DECAY)
        scheduler = build_scheduler(optimizer, WARMUP_EPOCHS * steps_per_epoch,
                                    EPOCHS * steps_per_epoch, LR, 1e-6)
        built[name] = {"params": sum(p.numel() for p in model.parameters()),
                       "depth": model.cfg.depth, "dim": model.cfg.dim,
                       "heads": model.cfg.num_heads, "mixers": model.cfg.mixers}

        def step(n: int = args.steps, model=model, net=net, optimizer=optimizer,
                 scheduler=scheduler) -> None:
            model.train()
            for _ in range(n):
                x, y = next(stream)
                batch = mix_batch(augment(x), y, mix_cfg)
                with amp:
                    logits = net(batch.images)
                loss = mixed_cross_entropy(logits.float(), batch, LABEL_SMOOTHING)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()

        cases[f"train {name}"] = (step, args.steps * args.batch)
        if args.epochs_projection:
            eval_x = images[: args.eval_batch]

            @torch.no_grad()
            def evaluate(model=model, net=net, eval_x=eval_x) -> None:
                model.eval()
                with amp:
                    logits = net(eval_transform(eval_x))
                logits.float().argmax(1).sum().item()

            cases[f"eval {name}"] = (evaluate, len(eval_x))
    return cases, built


# --- measuring ----------------------------------------------------------------------------------


def measure(cases: dict, rounds: int, warmup: int, sync: Callable[[], None],
            log: Callable[[str], None], max_foreign: float = 1.0, extra_rounds: int = 0,
            budget_s: float = math.inf) -> dict[str, dict]:
    """Median seconds per sample of each case, sampled round-robin after ``warmup`` calls each.

    A sample during which other processes used more than ``max_foreign`` of the machine's CPU time
    is kept but not counted as clean; cases short of ``rounds`` clean samples are sampled again
    (round-robin among themselves) for up to ``extra_rounds`` more rounds while the measurement
    has run less than ``budget_s``. The median is over the clean samples, or over all of them
    (``noisy``) when fewer than two are clean.
    """
    for name, (fn, _) in cases.items():
        for i in range(warmup):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            log(f"  warm-up {i + 1}/{warmup} {name}: {time.perf_counter() - t:.2f} s")
    samples: dict[str, list[float]] = {name: [] for name in cases}
    loads: dict[str, list[float]] = {name: [] for name in cases}

    def clean(name: str) -> int:
        return sum(load <= max_foreign for load in loads[name])

    t0, r = time.perf_counter(), 0
    while r < rounds + extra_rounds:
        todo = list(cases) if r < rounds else [n for n in cases if clean(n) < rounds]
        if not todo or (r >= rounds and time.perf_counter() - t0 > budget_s):
            break
        for name in todo:
            fn = cases[name][0]
            sync()
            before, t = _cpu_ticks(), time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - t)
            loads[name].append(foreign_load(before, _cpu_ticks()))
        r += 1
        log(f"  round {r}: " + ", ".join(
            f"{n} {samples[n][-1]:.2f} s (other load {loads[n][-1]:.0%})" for n in todo))
    out = {}
    for name, (_, images) in cases.items():
        good = [t for t, load in zip(samples[name], loads[name]) if load <= max_foreign]
        noisy = len(good) < 2
        s = statistics.median(samples[name] if noisy else good)
        out[name] = {
            "images_per_sample": images,
            "median_s": s,
            "images_per_s": images / s,
            "clean_samples": len(good),
            "noisy": noisy,
            "samples_s": [round(v, 4) for v in samples[name]],
            "foreign_load": [round(v, 3) for v in loads[name]],
        }
    return out


def profile_steps(cases: dict, models: list[str], device: torch.device, top: int,
                  max_foreign: float = 1.0, tries: int = 3) -> dict:
    """Top operators by self time of one training step of each model (retaken, up to ``tries``
    times, while other processes used more than ``max_foreign`` of the CPUs)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    sort = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        sort = "self_device_time_total"
    result = {}
    for name in models:
        fn, _ = cases[f"train {name}"]
        for _ in range(tries):
            before = _cpu_ticks()
            with torch_profile(activities=activities) as prof:
                fn(1)
                if device.type == "cuda":
                    torch.cuda.synchronize()
            load = foreign_load(before, _cpu_ticks())
            if load <= max_foreign:
                break
        events = prof.key_averages()
        table = events.table(sort_by=sort, row_limit=top)
        print(f"\nprofile: train {name} (one step, sorted by {sort}, other load {load:.0%})"
              f"\n{table}", flush=True)
        key = sort
        total = sum(getattr(e, key, 0.0) for e in events) or 1.0
        rows = sorted(events, key=lambda e: getattr(e, key, 0.0), reverse=True)[:top]
        result[name] = {
            "sorted_by": key,
            "steps": 1,
            "foreign_load": round(load, 3),
            "total_self_ms": total / 1e3,
            "top": [{"op": e.key, "calls": e.count, "self_ms": getattr(e, key, 0.0) / 1e3,
                     "share": getattr(e, key, 0.0) / total} for e in rows],
        }
    return result


# --- report -------------------------------------------------------------------------------------


def projection(timed: dict, models: list[str], batch: int, device: torch.device) -> dict:
    steps = EPOCHS * (EPOCH_PASSES * TRAIN_IMAGES // batch)
    out = {"label": device.type.upper(), "epochs": EPOCHS,
           "train_images_per_epoch": EPOCH_PASSES * TRAIN_IMAGES,
           "batch": batch, "steps": steps, "test_images_per_epoch": TEST_IMAGES}
    for name in models:
        train_s = steps * batch / timed[f"train {name}"]["images_per_s"]
        eval_s = EPOCHS * TEST_IMAGES / timed[f"eval {name}"]["images_per_s"]
        out[name] = {"train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s,
                     "total_h": (train_s + eval_s) / 3600}
    return out


def check_targets(timed: dict, models: list[str]) -> tuple[dict, list[tuple[str, bool]]]:
    pipe = timed["pipeline"]["images_per_s"]
    ratios = {f"pipeline_to_train {m}": pipe / timed[f"train {m}"]["images_per_s"] for m in models}
    targets = [(f"pipeline / train {m}: {r:.2f}x >= {PIPELINE_RATIO:g}x", r >= PIPELINE_RATIO)
               for m, r in ((m, ratios[f"pipeline_to_train {m}"]) for m in models)]
    if "vit_2p7m" in models and "vit_lkca_2p7m" in models:
        r = timed["train vit_lkca_2p7m"]["images_per_s"] / timed["train vit_2p7m"]["images_per_s"]
        ratios["lkca_to_vit_train"] = r
        targets.append((f"train vit_lkca_2p7m / vit_2p7m: {r:.2f}x >= {LKCA_SPEEDUP:g}x",
                        r >= LKCA_SPEEDUP))
    return ratios, targets


def print_table(timed: dict, batch: int) -> None:
    print(f"\n{'case':<22} {'ms/batch':>10} {'images/s':>10} {'clean/all':>10} "
          f"{'other load':>11}")
    for name, t in timed.items():
        per_batch = t["median_s"] * 1e3 * batch / t["images_per_sample"]
        load = statistics.median(t["foreign_load"]) if t["foreign_load"] else 0.0
        counts = f"{t['clean_samples']}/{len(t['samples_s'])}" + ("!" if t["noisy"] else "")
        print(f"{name:<22} {per_batch:>10.1f} {t['images_per_s']:>10.1f} {counts:>10} "
              f"{load:>10.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=None, help="round-robin rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up samples per case (CPU 1, CUDA 2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per sample (CPU 2, CUDA 20)")
    parser.add_argument("--pipeline-reps", type=int, default=None,
                        help="pipeline batches per sample (default max(5, steps))")
    parser.add_argument("--max-foreign", type=float, default=0.15,
                        help="a sample during which other processes used more than this fraction "
                             "of the CPUs is not counted (retaken in extra rounds)")
    parser.add_argument("--extra-rounds", type=int, default=None,
                        help="rounds to retake disturbed samples (default = --rounds)")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="no extra rounds once the measurement has run this long")
    parser.add_argument("--pool", type=int, default=4096,
                        help="synthetic images resident on the device (batches drawn from them)")
    parser.add_argument("--eval-batch", type=int, default=None,
                        help="batch of the eval timing (CPU 128, CUDA 500 = the engine's)")
    parser.add_argument("--epochs-projection", action="store_true",
                        help="also time the test pass and project 100 CIFAR-10 epochs")
    parser.add_argument("--profile", action="store_true",
                        help="profile one training sample of each model after the rounds")
    parser.add_argument("--profile-top", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--engine", action="store_true",
                        help="also time lkca train's real step against the bare model step")
    parser.add_argument("--engine-steps", type=int, default=None,
                        help="steps per epoch of the --engine runs (CPU 4, CUDA 20)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    resolve_device(args.device)  # a device this machine lacks: one line, before any work
    unknown = set(args.models) - set(MODELS)
    if unknown:
        print(f"train_throughput: --models: unknown {sorted(unknown)}; choose from {MODELS}",
              file=sys.stderr)
        return 2
    cuda = args.device == "cuda"
    args.rounds = args.rounds or 7
    args.extra_rounds = args.rounds if args.extra_rounds is None else args.extra_rounds
    args.warmup = args.warmup if args.warmup is not None else (2 if cuda else 1)
    args.steps = args.steps or (20 if cuda else 2)
    args.pipeline_reps = args.pipeline_reps or max(5, args.steps)
    args.eval_batch = args.eval_batch or (500 if cuda else args.batch)
    args.eval_batch = min(args.eval_batch, args.pool)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # a device this machine lacks: one line
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out = args.out or ROOT / "benchmarks" / "results" / f"train_throughput_{device.type}.json"

    load_start = load_average()
    t_start = time.perf_counter()
    print(f"train_throughput on {device.type}: batch {args.batch}, {args.rounds} rounds, "
          f"{args.steps} step(s) and {args.pipeline_reps} pipeline batches a sample; "
          f"load average {load_start}", flush=True)
    cases, built = make_cases(args, device)
    timed = measure(cases, args.rounds, args.warmup, sync, lambda s: print(s, flush=True),
                    args.max_foreign, args.extra_rounds, args.budget_s)
    prof = (profile_steps(cases, args.models, device, args.profile_top, args.max_foreign)
            if args.profile else None)
    engine = engine_vs_bare(args, device, sync) if args.engine else None
    load_end = load_average()
    choices = impl_choices(details=True)  # timed in the warm-up (the first step of each shape)

    print_table(timed, args.batch)
    for key, c in choices.items():
        print(f"LKCA auto for {key}: {c['impl']} ({c['source']}, ms {c.get('ms', {})})")
    ratios, targets = check_targets(timed, args.models)
    proj = projection(timed, args.models, args.batch, device) if args.epochs_projection else None
    if proj is not None:
        label = proj["label"]
        print(f"\nprojected wall time of {EPOCHS} CIFAR-10 epochs ({proj['steps']} steps of "
              f"{args.batch} + {EPOCHS} test passes of {TEST_IMAGES}) on {label}:")
        for m in args.models:
            p = proj[m]
            print(f"  {m:<16} {p['total_h']:8.2f} h  (train {p['train_s'] / 3600:.2f} h, "
                  f"eval {p['eval_s'] / 3600:.2f} h)  [{label}]")
    print()
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    noisy = [name for name, t in timed.items() if t["noisy"]]
    if noisy:
        print(f"WARNING: fewer than 2 samples of {', '.join(noisy)} ran while the machine was "
              f"quiet (other processes <= {args.max_foreign:.0%} of the CPUs): those figures are "
              "disturbed; run again on a quieter machine")
    print(f"load average start {load_start}, end {load_end}; "
          f"{time.perf_counter() - t_start:.0f} s in all")

    result = {
        "benchmark": "train_throughput: augmentation pipeline and full training steps, "
                     "median over round-robin samples",
        "lkca_version": lkca.__version__,
        "device": device.type,
        "precision": "bf16 autocast" if cuda else "fp32",
        "machine": machine(device),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "settings": {"batch": args.batch, "rounds": args.rounds, "warmup": args.warmup,
                     "max_foreign": args.max_foreign, "extra_rounds": args.extra_rounds,
                     "steps_per_sample": args.steps, "pipeline_batches_per_sample": args.pipeline_reps,
                     "pool_images": max(args.pool, args.batch), "drop_path": DROP_PATH,
                     "label_smoothing": LABEL_SMOOTHING, "lr": LR, "weight_decay": WEIGHT_DECAY,
                     "compile": args.compile, "augment": "cifar10 recipe (flip, crop 4, "
                     "AutoAugment cifar10 per image, normalise, erasing 0.25) + mix_batch"},
        "models": built,
        "lkca_impl": choices,
        "results": timed,
        "ratios": ratios,
        "targets": [{"target": t, "pass": ok} for t, ok in targets],
        "disturbed_cases": noisy,
        "wall_s": time.perf_counter() - t_start,
    }
    if proj is not None:
        result["epochs_projection"] = proj
    if prof is not None:
        result["profile"] = prof
    if engine is not None:
        result["engine_step"] = engine
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(ok for _, ok in targets) else 1


def engine_vs_bare(args: argparse.Namespace, device: torch.device,
                   sync: Callable[[], None]) -> dict:
    """Per model: lkca train's training images/s (second epoch), the bare model step's, and the
    engine's share of the bare rate (benchmarks/engine_step.py)."""
    import tempfile

    from engine_step import bare_rate, engine_rate, write_cifar10

    steps = args.engine_steps or (20 if device.type == "cuda" else 4)
    precision = "bf16" if device.type == "cuda" else "fp32"  # as the rounds above
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_cifar10(Path(tmp) / "data", max(args.pool, args.batch), 500)
        for name in args.models:
            run = engine_rate(name, precision, args.compile, steps, data, Path(tmp) / name,
                              device.type, args.batch)
            bare = bare_rate(name, steps, device, args.batch, sync, precision)
            out[name] = {"engine": run, "bare": bare,
                         "engine_to_bare": run["images_per_s"] / bare["images_per_s"]}
            print(f"engine {name}: lkca train {run['images_per_s']:.1f} images/s, bare step "
                  f"{bare['images_per_s']:.1f} ({out[name]['engine_to_bare']:.2f}x)", flush=True)
    return out


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
