"""GPU acceptance of lkca in one command: every GPU path measured, in at most 9.5 minutes.

    PYTHONPATH=src python benchmarks/gpu_acceptance.py                 # one GPU, <= 9.5 minutes
    PYTHONPATH=src python benchmarks/gpu_acceptance.py --smoke --out /tmp/acceptance.json  # CPU, minutes

Writes one JSON (``benchmarks/results/gpu_acceptance_<device>.json``) with the machine (CPU, torch,
CUDA, cuDNN, GPU name and memory, TF32 flags) and five sections, each under its own time cap
(``CAPS_S``; each section's budget, below, is what its settings imply; ``mixer`` and ``engine``
write their arithmetic to the JSON, ``budget`` and ``plan``, which tests/test_gpu_acceptance.py
checks):

- ``learning``: a ViT-LKCA (vit_lkca_500k, 2 blocks, patch 1) trained on scikit-learn's digits
  through the public data API, with each implementation (conv, toeplitz, fft, auto): the loss
  must fall and the test accuracy must be above chance (>= 2x). Budget: 4 runs x 8 epochs of 22
  steps of 64 (cap 45 s).
- ``mixer``: the rows of benchmarks/lkca_mixer.py (grids 8x8 to 64x64, forward + backward, every
  implementation plus autotuned ``auto``, attention and LKA), fp32 and bf16 autocast, with auto's
  first-call overhead (nothing cached) and the rule's pick beside the measured fastest. Budget:
  its samples alone last at least :func:`mixer_floor_s` = 41 s (65 cases x 3 samples x 0.05 s and
  12 paired ratios x 9 pairs x 2 x 0.05 s, per dtype) of its 130 s cap; the rest is warm-ups,
  the tuner's first calls and cases slower than a sample.
- ``models``: training images/s and peak memory of ``lkca.create_model("vit_lkca_2p7m")`` and
  ``"vit_2p7m"`` at batch 128 (bf16 autocast, fused AdamW, synthetic CIFAR-shaped batches on the
  device, no augmentation): eager, ``torch.compile`` and ``torch.compile(mode="reduce-overhead")``
  (CUDA graphs), and eager in fp32 (``eager fp32``: the paper configs' ``precision``); and the
  projected wall time of the paper's CIFAR-10 run, 100 epochs x 3 passes (docs/recipe.md, epoch
  length) x 50,000 images / measured images/s, training steps only.
  Budget: 2 models x 4 modes x (3 + 3 x 25) steps (cap 210 s).
- ``seg``: one 512x512 training iteration (batch 2, bf16 autocast) of LKCA-S and ViT-S with
  UperNet (``lkca.create_segmentor``): iterations/s and peak memory. Budget: 2 x 10 iterations
  (cap 55 s).
- ``engine``: ``lkca train`` itself (benchmarks/engine_step.py: the engine's real step, with
  the paper config's augmentation and mixing, the Session, the device-side non-finite guard,
  fused AdamW and the schedule, on a synthetic CIFAR-10 the engine holds on the device) for
  vit_lkca_2p7m and vit_2p7m at batch 128 in fp32, tf32 and bf16, eager then compiled: the
  training images/s of the second of two short epochs, and the paper's CIFAR-10 run projected
  from it (100 epochs x 1,171 steps, training steps only). Budget: the first case (vit_lkca_2p7m,
  fp32, eager: the slowest precision) runs 2 epochs of 20 steps; its step time sets the steps
  per epoch of the other 11 (5 to 200) so that their timed epochs fill at most half of the 120 s
  cap (``plan`` in the JSON); start-up, evaluation and compiling are outside that arithmetic,
  and the compiled cases run last, so a cut loses only them.

The sections run in a child process; the parent kills it when a section overruns its cap (and
when the whole run would pass 8 minutes), keeps what the section had written (its partial
results, status "overran") and starts a new child for the sections left. Each figure is written
as soon as it is measured. ``--smoke`` shrinks every section (small shapes and batches, one
learning run, ``torch.compile`` with the eager backend, no CUDA graphs, the engine's cases of
one model at batch 8) so the whole script runs on a CPU in a few minutes;
tests/test_gpu_acceptance.py runs it. Exit status 1 if a section
failed with an error, 0 otherwise (the checks are in the JSON and printed).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("learning", "mixer", "models", "seg", "engine")
TOTAL_CAP_S = 570.0  # the whole run, 9.5 minutes
CAPS_S = {"learning": 45.0, "mixer": 130.0, "models": 210.0, "seg": 55.0,
          "engine": 120.0}  # on one GPU
SMOKE_CAPS_S = {"learning": 25.0, "mixer": 25.0, "models": 40.0, "seg": 40.0, "engine": 120.0}
# mixer: samples per case and the shortest sample (lkca_mixer.measure, paired_ratio)
MIXER_SAMPLES, MIXER_MIN_SAMPLE_S = 3, 0.05
# engine: the models, the precisions (the slowest first: the first case plans the rest), the
# first case's steps per epoch, the bounds of the others', the share of the cap they may time
ENGINE_MODELS = ("vit_lkca_2p7m", "vit_2p7m")
ENGINE_PRECISIONS = ("fp32", "tf32", "bf16")
ENGINE_FIRST_STEPS, ENGINE_STEPS_RANGE, ENGINE_TIMED_SHARE = 20, (5, 200), 0.5
EPOCHS, PASSES, TRAIN_IMAGES = 100, 3, 50_000  # the paper's CIFAR-10 run (docs/recipe.md)
STARTUP_S = 120.0  # a child's imports and CUDA initialisation, before its first section
STALL_ENV = "GPU_ACCEPTANCE_STALL"  # tests only: the section named here hangs after its first result


# --- the parent: caps, children, the JSON ------------------------------------------------------


def run_sections(args: argparse.Namespace, partial: Path) -> dict[str, dict]:
    """Run the sections in child processes under their caps; returns each one's status."""
    caps = dict(SMOKE_CAPS_S if args.smoke else CAPS_S)
    for item in args.cap:
        name, seconds = item.split("=")
        caps[name] = float(seconds)
    start, status = time.perf_counter(), {}
    end = start + TOTAL_CAP_S
    todo = list(args.sections)  # in the order given
    while todo:
        if time.perf_counter() >= end:
            status.update({s: {"status": "skipped", "why": "the 8-minute budget was spent"}
                           for s in todo})
            break
        cmd = [sys.executable, __file__, "--child", ",".join(todo), "--partial", str(partial),
               "--device", args.device, "--caps", json.dumps(caps)] + (
                   ["--smoke"] if args.smoke else [])
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_child_env())
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_forward_lines, args=(child, lines), daemon=True).start()
        current, started = None, time.perf_counter()
        while True:
            limit = caps[current] if current else STARTUP_S  # a section, or imports / CUDA init
            deadline = min(started + limit, end)
            try:
                line = lines.get(timeout=max(0.05, deadline - time.perf_counter()))
            except queue.Empty:  # over the section's cap, the start-up's, or the whole budget
                child.kill()
                child.wait()
                name = current or todo[0]
                status[name] = {"status": "overran", "cap_s": caps[name],
                                "wall_s": time.perf_counter() - started}
                todo = todo[todo.index(name) + 1:]
                break
            if line is None:  # the child exited
                code = child.wait()
                if current is not None:  # in the middle of a section: it crashed
                    status[current] = {"status": "failed", "exit_code": code,
                                       "wall_s": time.perf_counter() - started}
                    todo = todo[todo.index(current) + 1:]
                else:
                    todo = [s for s in todo if s not in status]
                    if todo:  # died before starting a section: do not retry
                        status.update({s: {"status": "failed", "exit_code": code} for s in todo})
                        todo = []
                break
            word, _, name = line.strip().partition(" ")
            if word == "START":
                current, started = name, time.perf_counter()
            elif word in ("END", "FAILED"):
                status[name] = {"status": "ok" if word == "END" else "failed", "cap_s": caps[name],
                                "wall_s": time.perf_counter() - started}
                current, started = None, time.perf_counter()
    return status


def _forward_lines(child: subprocess.Popen, lines: queue.Queue) -> None:
    """Put each line the child prints on ``lines``, then None when it closes its output."""
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(line)
    lines.put(None)


def _child_env() -> dict[str, str]:
    src = str(ROOT / "src")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))


def projection(models: dict) -> dict:
    """Hours of the paper's CIFAR-10 training at each measured rate."""
    images = EPOCHS * PASSES * TRAIN_IMAGES
    hours = {}
    for case, r in models.items():
        if isinstance(r, dict) and r.get("images_per_s"):
            name, mode = case.split(" ", 1)
            hours.setdefault(name, {})[mode] = images / r["images_per_s"] / 3600
    return {"formula": f"{EPOCHS} epochs x {PASSES} passes x {TRAIN_IMAGES:,} images / measured "
                       "training images/s (3 passes per epoch: docs/recipe.md, epoch length)",
            "scope": "training steps only: synthetic batches resident on the device, no "
                     "augmentation, evaluation, checkpoints or start-up",
            "hours": hours}


def checks(sections: dict) -> dict[str, bool]:
    out = {}
    for impl, r in sections.get("learning", {}).items():
        if isinstance(r, dict) and "loss_fell" in r:
            out[f"learning {impl}: loss fell, accuracy >= 2x chance"] = r["loss_fell"] and r["above_chance"]
    rows = [r for r in sections.get("mixer", {}).get("rows", []) if "ratios" in r]
    if rows:
        from lkca_mixer import AUTO_SLACK

        worst = max(r["ratios"][t]["auto_to_best"] for r in rows for t in r["ratios"])  # lkca_proj
        # only on the rows that also run with projections
        out[f"mixer: auto within {AUTO_SLACK:.2f}x of the fastest on every row (worst {worst:.2f}x)"] = (
            worst <= AUTO_SLACK)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (default): cuda if available, else cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: a CPU run in minutes")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated sections to run, in this order")
    parser.add_argument("--cap", action="append", default=[], metavar="SECTION=SECONDS",
                        help="override a section's time cap")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--partial", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--caps", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    bad_caps = [c for c in args.cap if c.partition("=")[0] not in SECTIONS or not c.partition("=")[2]]
    if unknown or bad_caps:
        print(f"gpu_acceptance: unknown section {sorted(unknown) or bad_caps}; sections are "
              f"{', '.join(SECTIONS)} (--cap SECTION=SECONDS)", file=sys.stderr)
        return 2
    args.sections = args.sections.split(",")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # the child's partial results
        partial = Path(tmp) / "partial.json"
        status = run_sections(args, partial)
        data = json.loads(partial.read_text()) if partial.exists() else {}
    device = data.get("device", args.device)
    out = args.out or ROOT / "benchmarks" / "results" / (
        f"gpu_acceptance_{'smoke_' if args.smoke else ''}{device.split(':')[0]}.json")
    sections = data.get("sections", {})
    for name, st in status.items():
        sections[name] = {**st, **sections.get(name, {})}
    result = {
        "benchmark": "gpu_acceptance", "smoke": args.smoke, "device": device,
        "machine": data.get("machine"), "settings": data.get("settings"),
        "budget": {"total_cap_s": TOTAL_CAP_S,
                   "caps_s": {s: st.get("cap_s") for s, st in status.items()}},
        "sections": sections,
        "projection": projection(sections.get("models", {})),
        "checks": checks(sections),
        "wall_s": time.perf_counter() - start,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    summary(result)
    print(f"wrote {out}")
    return 1 if any(st["status"] == "failed" for st in status.values()) else 0


def summary(result: dict) -> None:
    for name, sec in result["sections"].items():
        print(f"{name:<9} {sec['status']:<8} {sec.get('wall_s', 0):6.1f} s (cap {sec.get('cap_s')})")
    for case, r in result["sections"].get("models", {}).items():
        if isinstance(r, dict) and "images_per_s" in r:
            mem = r.get("peak_memory_bytes")
            print(f"  {case:<36} {r['images_per_s']:9.1f} images/s"
                  + (f"  peak {mem / 2**30:.2f} GiB" if mem else ""))
    for case, r in result["sections"].get("engine", {}).items():
        if isinstance(r, dict) and "images_per_s" in r:
            print(f"  lkca train {case:<32} {r['images_per_s']:9.1f} images/s  paper run "
                  f"{r['paper_run_hours']:.2f} h")
    for name, modes in result["projection"]["hours"].items():
        print("  projected CIFAR-10 run " + name + ": "
              + ", ".join(f"{m} {h:.2f} h" for m, h in modes.items()))
    for text, ok in result["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {text}")


# --- the child: the sections -------------------------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lkca_mixer import machine

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if args.smoke and device.type == "cpu":
        # one thread: on a small shared machine, OpenMP threads of several processes contend and
        # a step can take 5x longer than with one
        torch.set_num_threads(1)
    ctx = Context(args.partial, device, args.smoke, json.loads(args.caps))
    if "machine" not in ctx.data:
        ctx.data["device"] = str(device)
        desc = machine(device)
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            desc.update(gpu_memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}",
                        cudnn=torch.backends.cudnn.version())
        ctx.data["machine"] = desc
        ctx.data["settings"] = {
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "autocast": "bf16 where named; fp32 rows of the mixer in fp32 (the defaults above)",
            "lkca_impl_policy": "autotune (the default); its cache file: memory only",
            "cpu_threads": torch.get_num_threads(),
        }
        ctx.save()
    import lkca

    lkca.set_autotune_cache(None)  # time everything here, reuse nothing from earlier runs
    for name in args.child.split(","):
        print(f"START {name}", flush=True)
        try:
            SECTION_FUNCS[name](ctx)
        except Exception as err:  # noqa: BLE001 - record it, go on with the next section
            import traceback

            traceback.print_exc()
            ctx.section(name)["error"] = f"{type(err).__name__}: {err}"
            ctx.save()
            print(f"FAILED {name}", flush=True)
            continue
        print(f"END {name}", flush=True)
    return 0


class Context:
    """The device, the mode, and the partial results file (rewritten after each measurement)."""

    def __init__(self, path: Path, device: Any, smoke: bool, caps: dict[str, float]) -> None:
        self.path, self.device, self.smoke, self.caps = path, device, smoke, caps
        self.cuda = device.type == "cuda"
        self.data: dict = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("sections", {})

    def section(self, name: str) -> dict:
        return self.data["sections"].setdefault(name, {})

    def put(self, section: str, key: str, value: Any, result: bool = True) -> None:
        """Record ``value`` and save; ``result=False`` for a section's plan (its budget), which
        the tests' stall (:data:`STALL_ENV`, after the first result) does not count."""
        self.section(section)[key] = value
        self.save()
        if result and os.environ.get(STALL_ENV) == section:  # tests: a section overrunning its cap
            time.sleep(3600)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)

    def peak_memory(self, reset: bool = False) -> int | None:
        import torch

        if not self.cuda:
            return None
        if reset:
            torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.max_memory_allocated(self.device)

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def section_learning(ctx: Context) -> None:
    import torch
    import torch.nn.functional as F

    import lkca
    from lkca.data import dataset_info, load_dataset

    info = dataset_info("digits")
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)

    def tensors(split: str):
        ds = load_dataset("digits", None, split)
        x = torch.from_numpy(ds.images).permute(0, 3, 1, 2).float() / 255
        return ((x - mean) / std).to(ctx.device), torch.from_numpy(ds.labels).to(ctx.device)

    (x, y), (x_test, y_test) = tensors("train"), tensors("test")
    epochs, batch = (3, 32) if ctx.smoke else (8, 64)
    for impl in ("auto",) if ctx.smoke else ("conv", "toeplitz", "fft", "auto"):
        start = time.perf_counter()
        torch.manual_seed(0)
        model = lkca.create_model("vit_lkca_500k", num_classes=10, img_size=8,
                                  depth=1 if ctx.smoke else 2, lkca_impl=impl).to(ctx.device)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05, fused=ctx.cuda)
        gen = torch.Generator().manual_seed(0)
        losses = []
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen).to(ctx.device)
            for i in range(0, len(x) - batch + 1, batch):
                idx = order[i:i + batch]
                with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.cuda):
                    loss = F.cross_entropy(model(x[idx]).float(), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
        per_step = torch.stack(losses).tolist()
        tenth = max(1, len(per_step) // 10)
        first, last = statistics.mean(per_step[:tenth]), statistics.mean(per_step[-tenth:])
        model.eval()
        with torch.no_grad(), torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.cuda):
            accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
        ctx.put("learning", impl, {
            "loss_first_tenth": first, "loss_last_tenth": last, "steps": len(per_step),
            "epochs": epochs, "test_accuracy": accuracy, "chance": 0.1,
            "loss_fell": last < 0.9 * first, "above_chance": accuracy >= 0.2,
            "seconds": time.perf_counter() - start})
        ctx.log(f"learning {impl}: loss {first:.3f} -> {last:.3f}, accuracy {accuracy:.3f}")


def section_mixer(ctx: Context) -> None:
    import torch
    from lkca_mixer import ROWS, run_row

    rows = [((4, 4), 16, 2, 4, None, 2, True)] if ctx.smoke else ROWS
    samples, min_sample_s = (1, 0.005) if ctx.smoke else (MIXER_SAMPLES, MIXER_MIN_SAMPLE_S)
    floor = mixer_floor_s(rows, samples, min_sample_s)
    ctx.put("mixer", "budget", {"floor_s": floor, "cap_s": ctx.caps.get("mixer"),
                                "samples": samples, "min_sample_s": min_sample_s}, result=False)
    done: list[dict] = []
    for dtype in (torch.float32, torch.bfloat16):
        for grid, dim, heads, batch, kernel, attn_heads, projections in rows:
            row = run_row(grid, dim, heads, batch, ctx.device, dtype, samples,
                          ctx.sync, slow_s=0.5, max_foreign=1.0,
                          min_sample_s=min_sample_s, kernel_size=kernel,
                          attn_heads=attn_heads, projections=projections)
            row["dtype"] = "fp32" if dtype == torch.float32 else "bf16 autocast"
            done.append(row)
            ctx.put("mixer", "rows", done)
            ctx.log(f"mixer {row['dtype']} {grid}: auto={row['auto_choice']['lkca']} "
                    f"{row['ratios']['lkca']['auto_to_best']:.2f}x best, first call "
                    f"{row['first_call']['overhead_steps']:.1f} steps")


def mixer_floor_s(rows: list, samples: int, min_sample_s: float) -> float:
    """The least time the mixer section's samples take, both dtypes: each case's ``samples``
    samples and each paired ratio's ``3 x samples`` pairs of two samples (lkca_mixer.run_row; a
    case slower than ``slow_s`` takes fewer, and longer, samples), each at least
    ``min_sample_s``."""
    from lkca_mixer import IMPLS, NOT_TIMED

    total = 0.0
    for grid, _dim, _heads, _batch, kernel, _attn, projections in rows:
        tags = 2 if projections else 1
        impls = len([i for i in IMPLS if i not in NOT_TIMED.get((tuple(grid), kernel), ())])
        cases = impls * tags + 2  # + attention, LKA
        total += cases * samples * min_sample_s + tags * 3 * samples * 2 * min_sample_s
    return 2 * total  # fp32 and bf16


def section_models(ctx: Context) -> None:
    import torch
    import torch.nn.functional as F

    import lkca

    batch, steps, samples, warmup = (2, 1, 1, 1) if ctx.smoke else (128, 25, 3, 3)
    # (row, torch.compile arguments or None for eager, bf16 autocast on CUDA)
    modes: list[tuple[str, dict | None, bool]] = [("eager", None, True), ("eager fp32", None, False)]
    if ctx.smoke:
        modes.append(("compile (eager backend)", {"backend": "eager"}, True))
    else:
        modes += [("compile", {}, True), ("compile+cudagraphs", {"mode": "reduce-overhead"}, True)]
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4 * batch, 3, 32, 32, generator=gen).to(ctx.device)
    labels = torch.randint(0, 10, (4 * batch,), generator=gen).to(ctx.device)
    for mode, kw, bf16 in modes:  # eager first: auto is timed there, compiled graphs reuse its choice
        for name in ("vit_2p7m", "vit_lkca_2p7m"):
            torch.manual_seed(0)
            torch._dynamo.reset()  # the previous model's graphs are done with
            model = lkca.create_model(name, num_classes=10, img_size=32).to(ctx.device).train()
            net = model if kw is None else torch.compile(model, **kw)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=ctx.cuda)
            graphs = kw is not None and kw.get("mode") == "reduce-overhead"

            def step(i: int, net=net, opt=opt, graphs=graphs, bf16=bf16) -> None:
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                sl = slice((i % 4) * batch, (i % 4 + 1) * batch)
                with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.cuda and bf16):
                    loss = F.cross_entropy(net(images[sl]).float(), labels[sl])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            ctx.sync()
            t0 = time.perf_counter()
            for i in range(warmup):  # compiles, autotunes, captures graphs
                step(i)
            ctx.sync()
            warmup_s = time.perf_counter() - t0
            ctx.peak_memory(reset=True)
            times = []
            for _ in range(samples):
                ctx.sync()
                t0 = time.perf_counter()
                for i in range(steps):
                    step(i)
                ctx.sync()
                times.append((time.perf_counter() - t0) / steps)
            ctx.put("models", f"{name} {mode}", {
                "batch": batch, "images_per_s": batch / statistics.median(times),
                "step_ms": [t * 1e3 for t in times], "steps_per_sample": steps,
                "warmup_s": warmup_s, "warmup_steps": warmup,
                "peak_memory_bytes": ctx.peak_memory(), "params": sum(p.numel() for p in model.parameters())})
            ctx.log(f"models {name} {mode}: {batch / statistics.median(times):.1f} images/s")
            del net, model, opt
    ctx.put("models", "lkca_impl_choices", lkca.impl_choices(details=True))


def section_seg(ctx: Context) -> None:
    import torch

    import lkca

    size, batch, warmup, iters = (32, 2, 1, 1) if ctx.smoke else (512, 2, 2, 8)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=gen).to(ctx.device)
    labels = torch.randint(0, 150, (batch, size, size), generator=gen)
    labels[:, :8] = 255
    labels = labels.to(ctx.device)
    rates = {}
    for backbone in ("vit_s_seg", "lkca_s_seg"):
        torch.manual_seed(0)
        model = lkca.create_segmentor(backbone, "upernet").to(ctx.device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01, fused=ctx.cuda)

        def step(model=model, opt=opt) -> None:
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.cuda):
                loss = model.forward_train(images, labels)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        ctx.peak_memory(reset=True)
        ctx.sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        ctx.sync()
        rates[backbone] = iters / (time.perf_counter() - t0)
        ctx.put("seg", f"upernet {backbone}", {
            "size": size, "batch": batch, "iters_per_s": rates[backbone],
            "peak_memory_bytes": ctx.peak_memory(), "iterations": iters})
        ctx.log(f"seg upernet {backbone}: {rates[backbone]:.2f} iterations/s")
        del model, opt
    ctx.put("seg", "lkca_s_to_vit_s_iters", rates["lkca_s_seg"] / rates["vit_s_seg"])


def engine_plan(first_step_s: float, cases: int, cap_s: float) -> dict:
    """The steps per epoch of the engine section's cases after the first: as many as keep their
    timed epochs (2 each, at the first case's step time) within ``ENGINE_TIMED_SHARE`` of the
    cap, bounded by ``ENGINE_STEPS_RANGE``."""
    low, high = ENGINE_STEPS_RANGE
    fit = int(ENGINE_TIMED_SHARE * cap_s / (cases * 2 * max(first_step_s, 1e-9)))
    steps = max(low, min(high, fit))
    return {"first_step_s": first_step_s, "cases": cases, "epochs": 2, "steps_per_epoch": steps,
            "timed_s": cases * 2 * steps * first_step_s, "cap_s": cap_s,
            "timed_share": ENGINE_TIMED_SHARE}


def section_engine(ctx: Context) -> None:
    import tempfile

    import torch
    from engine_step import engine_rate, write_cifar10

    if ctx.smoke:  # torch.compile's eager backend: the engine's path, not inductor's compile time
        real = torch.compile
        torch.compile = lambda model, **kw: real(model, backend="eager", **kw)  # type: ignore[assignment]
    models = ENGINE_MODELS[:1] if ctx.smoke else ENGINE_MODELS  # smoke: one model, 6 cases
    cases = [(m, p, c) for c in (False, True) for m in models for p in ENGINE_PRECISIONS]
    batch = 8 if ctx.smoke else 128
    with tempfile.TemporaryDirectory() as tmp:
        data = write_cifar10(Path(tmp) / "data", 4 * batch if ctx.smoke else 10_000,
                             16 if ctx.smoke else 1_000)
        steps = 2 if ctx.smoke else ENGINE_FIRST_STEPS
        for i, (model, precision, compiled) in enumerate(cases):
            name = f"{model} {precision} {'compile' if compiled else 'eager'}"
            r = engine_rate(model, precision, compiled, steps, data, Path(tmp) / f"run{i}",
                            str(ctx.device), batch)
            ctx.put("engine", name, r)
            ctx.log(f"engine {name}: {r['images_per_s']:.1f} images/s, paper run "
                    f"{r['paper_run_hours']:.2f} h")
            if i == 0:
                plan = engine_plan(r["step_ms"] / 1e3, len(cases) - 1,
                                   ctx.caps.get("engine", CAPS_S["engine"]))
                if ctx.smoke:  # the arithmetic as on a GPU, the steps of a smoke run
                    plan["steps_per_epoch"] = steps
                    plan["timed_s"] = plan["cases"] * 2 * steps * plan["first_step_s"]
                ctx.put("engine", "plan", plan, result=False)
                steps = plan["steps_per_epoch"]


SECTION_FUNCS = {"learning": section_learning, "mixer": section_mixer, "models": section_models,
                 "seg": section_seg, "engine": section_engine}


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
