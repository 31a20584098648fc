"""Training iterations/s and peak memory of the four Table 7 segmentors.

    python benchmarks/seg_step.py                       # CPU, fp32, 512x512, batch 2
    python benchmarks/seg_step.py --device cuda         # GPU, bf16 autocast

What is timed: one training iteration as ``lkca.seg.engine.train`` runs it, on a fixed batch of
random normalised images (B, 3, 512, 512) and labels (0..149, a 255 border): ``forward_train``
(UperNet: + the auxiliary FCN head), ``zero_grad``, backward, AdamW with the engine's parameter
groups, the warm-up/poly scheduler step, then one ``loss.item()`` to end the timing (the engine
itself reads its summed losses only at each evaluation). The full-size models
(``create_segmentor(backbone, head)``, drop-path 0.1, train mode). The ADE20K decoding and
augmentation are not timed.

Each combination lives in its own worker process, so its memory is its own: the worker builds its
model and optimiser and then runs one iteration per request. The parent asks the workers in turn
(one warm-up iteration each, then ``--rounds`` timed rounds, one iteration of each combination per
round), so drift in the load of a shared machine hits all of them alike; each figure is the
median of its samples, and each sample records the share of the machine's CPU time used by other
processes while it ran. On CPU a full-size iteration takes up to most of a minute, so the
defaults (1 warm-up, 2 timed rounds) keep the run near 5 minutes; a warm-up at a smaller side
(``--warmup-size``) saves time but leaves the first timed round slow (first touch of the larger
buffers), so it is off by default. Each CPU worker uses one
thread (``--threads``): on a 2-core machine shared with other jobs, two threads per process spent
more time handing work between threads than computing (3-5x slower steps in our runs).

Memory: CPU, the worker's peak resident set (``ru_maxrss``) minus its resident set before the
first iteration (model and optimiser built, optimiser state not yet), i.e. what training adds:
activations, gradients, AdamW state; CUDA, ``max_memory_allocated`` over the iterations
(everything on the GPU, weights included).

Also reported: what LKCA's ``auto`` chose in the LKCA workers (autotuned in the warm-up
iteration; the record of ``lkca.impl_choices``, with the tuner's timings).
Target: LKCA-S at least as many iterations/s as ViT-S with the same head -> PASS/FAIL.
Writes ``benchmarks/results/seg_step_<device>.json`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import lkca

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import _cpu_ticks, foreign_load, machine  # noqa: E402

from lkca.runtime.device import resolve_device  # noqa: E402

COMBOS = [("vit_s_seg", "upernet"), ("lkca_s_seg", "upernet"), ("vit_s_seg", "fpn"),
          ("lkca_s_seg", "fpn")]


# --- worker: one combination, one iteration per request -----------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(backbone: str, head: str, batch: int, device_name: str, threads: int) -> None:
    """Reads one line per request from stdin; answers one JSON line per iteration on stdout."""
    from lkca.autotune.tuner import impl_choices
    from lkca.runtime.device import mixed_precision
    from lkca.seg.config import SegConfig
    from lkca.seg.optim import build_seg_optimizer, build_seg_scheduler
    from lkca.seg.segmentor import create_segmentor

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = create_segmentor(backbone, head).to(device).train()
    cfg = SegConfig()  # the optimiser and schedule lkca seg train builds with its defaults
    optimizer = build_seg_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.betas[0], cfg.betas[1]))
    scheduler = build_seg_scheduler(optimizer, cfg.warmup_iters, cfg.iters, cfg.power,
                                    cfg.min_lr / cfg.lr, cfg.warmup_ratio)
    batches: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    amp = mixed_precision(device, "bf16" if device.type == "cuda" else "fp32")
    base_rss = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"ready": True, "params": params}), flush=True)
    for request in sys.stdin:  # "step <side>"
        side = int(request.split()[1])
        if side not in batches:
            labels = torch.randint(0, 150, (batch, side, side), device=device)
            labels[:, :8] = 255
            batches[side] = torch.randn(batch, 3, side, side, device=device), labels
        images, labels = batches[side]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ticks = _cpu_ticks()
        t0 = time.perf_counter()
        with amp:
            loss = model.forward_train(images, labels)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()
        seconds = time.perf_counter() - t0
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        mem = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
               else peak_rss - base_rss)
        print(json.dumps({"s": seconds, "mem": mem, "peak_rss": peak_rss,
                          "foreign_load": foreign_load(ticks, _cpu_ticks()),
                          "lkca_choices": impl_choices(details=True)}), flush=True)


# --- parent --------------------------------------------------------------------------------------


class Worker:
    def __init__(self, backbone: str, head: str, args: argparse.Namespace) -> None:
        self.name = f"{head}+{backbone}"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", backbone, head, "--batch", str(args.batch),
             "--device", args.device, "--threads", str(args.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited (code {self.proc.wait()})")
        return json.loads(line)

    def step(self, size: int) -> dict:
        self.proc.stdin.write(f"step {size}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="timed iterations per combination")
    parser.add_argument("--warmup-size", type=int, default=None,
                        help="side of the warm-up iteration (default: --size)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: 1 on CPU, torch's on GPU)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("BACKBONE", "HEAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.batch, args.device, args.threads)
        return 0

    device = resolve_device(args.device)  # a device this machine lacks: one line
    if args.threads is None:
        args.threads = 1 if device.type == "cpu" else 0
    args.warmup_size = args.warmup_size or args.size
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    workers = [Worker(b, h, args) for b, h in COMBOS]
    samples: dict[str, list[dict]] = {w.name: [] for w in workers}
    try:
        for w in workers:  # warm-up: optimiser state, allocator, lazily built kernels and plans
            w.step(args.warmup_size or args.size)
        for _ in range(args.rounds):
            for w in workers:
                samples[w.name].append(w.step(args.size))
    finally:
        for w in workers:
            w.close()

    rows = []
    for (backbone, head), w in zip(COMBOS, workers):
        s = samples[w.name]
        sec = statistics.median(x["s"] for x in s)
        rows.append({"backbone": backbone, "head": head, "params": w.info["params"],
                     "s_per_iter": sec, "iters_per_s": 1.0 / sec,
                     "min_s_per_iter": min(x["s"] for x in s),
                     "memory_bytes": max(x["mem"] for x in s),
                     "peak_rss_bytes": max(x["peak_rss"] for x in s),
                     "samples_s": [round(x["s"], 4) for x in s],
                     "foreign_load": [round(x["foreign_load"], 3) for x in s]})
    checks = {}
    for head in ("upernet", "fpn"):
        vit, lk = (next(r for r in rows if r["backbone"] == b and r["head"] == head)
                   for b in ("vit_s_seg", "lkca_s_seg"))
        ratio = lk["iters_per_s"] / vit["iters_per_s"]
        checks[f"lkca_s_not_slower_than_vit_s_{head}"] = {"ratio": ratio, "pass": ratio >= 1.0}
    choice = {key: c for w in workers for key, c in samples[w.name][-1]["lkca_choices"].items()}

    mem_label = "GPU peak alloc" if device.type == "cuda" else "RSS added"
    print(f"segmentation training step, {args.size}x{args.size}, batch {args.batch}, "
          f"{device.type}{' bf16' if device.type == 'cuda' else ' fp32'}")
    print(f"{'model':<22} {'params':>8} {'s/iter':>8} {'iter/s':>8} {mem_label:>15}")
    for r in rows:
        print(f"{r['head'] + ' + ' + r['backbone']:<22} {r['params'] / 1e6:>7.2f}M "
              f"{r['s_per_iter']:>8.3f} {r['iters_per_s']:>8.3f} {r['memory_bytes'] / 2**30:>13.2f}GiB")
    for key, c in choice.items():
        print(f"LKCA auto for {key}: {c['impl']} ({c['source']}, ms {c.get('ms', {})})")
    for name, c in checks.items():
        print(f"{'PASS' if c['pass'] else 'FAIL'}  {name}: LKCA-S / ViT-S iters/s = {c['ratio']:.3f}")

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {"benchmark": "seg_step", "lkca_version": lkca.__version__, "commit": commit,
              "models": sorted({r["backbone"] for r in rows}),
              "device": device.type, "size": args.size,
              "batch": args.batch, "rounds": args.rounds, "warmup_size": args.warmup_size,
              "threads_per_worker": args.threads or torch.get_num_threads(),
              "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
              "memory": ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                         "ru_maxrss minus RSS before the first iteration, per worker process"),
              "machine": machine(device), "load_average_start": [round(v, 2) for v in load_start],
              "load_average_end": [round(v, 2) for v in os.getloadavg()],
              "wall_s": time.perf_counter() - t_start, "rows": rows, "lkca_auto_impl": choice,
              "checks": checks}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"seg_step_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(c["pass"] for c in checks.values()) else 1


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
