"""Training images/s against torch's intra-op threads, on a quiet machine and beside a busy process.

    flock /work/wt/bench.lock python benchmarks/threads.py            # about 10 minutes, 2 cores

What is timed: real ``lkca train`` runs, each a fresh process with ``OMP_NUM_THREADS`` set to the
thread count under test (so lkca's own choice of threads stays out of it):

- ``demo``: the default job (``lkca train``: ``vit_lkcaonly_digits`` on digits, batch 64);
- ``vit_lkca_500k``: ``lkca train --model vit_lkca_500k --set model_args.patch_size=1
  batch_size=128`` on digits: the paper's 8x8 token grid (digits are 8x8 pixels, patch 1; CIFAR's
  32x32 with patch 4 gives the same grid), so its blocks do the work of a CIFAR step at the
  recipe's batch of 128 (only the patch embedding is smaller).

Each run trains ``--epochs`` epochs of ``--steps`` steps (a run past ``--run-limit-s`` is stopped
and counts as all its images in that time, an upper bound, listed in ``upper_bounds``); the
figure is the training images/s of the last epoch (the first includes the autotuner's timing),
from ``metrics.jsonl``. Conditions:
``quiet`` (nothing started by this script; the share of the CPUs other processes used during
each run is recorded from /proc/stat, as ``others_cpu_share``) and ``busy`` (a second process
multiplying 512x512 matrices with torch's default threads, as a second training would, runs
throughout). The settings are measured
round-robin, ``--rounds`` times, so drift in the machine's load hits all alike; each figure is the
median, each ratio (``1_to_N``) is the images/s with 1 thread over N threads within one
condition (above 1: one thread is faster).

Writes ``benchmarks/results/threads_cpu.json`` (machine, lkca version and the models' names, every
sample, medians, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from lkca_mixer import _cpu_ticks, foreign_load, machine  # noqa: E402

from lkca.version import __version__  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "demo": ["train"],
    "vit_lkca_500k": ["train", "--model", "vit_lkca_500k", "--set", "model_args.patch_size=1",
                      "batch_size=128"],
}
MODELS = {"demo": "vit_lkcaonly_digits", "vit_lkca_500k": "vit_lkca_500k"}
BATCH = {"demo": 64, "vit_lkca_500k": 128}
BUSY = ("import torch\na = torch.randn(512, 512)\nwhile True:\n    a = (a @ a).tanh()\n")


def run_once(case: str, threads: int, epochs: int, steps: int, cache: Path, limit_s: float) -> dict:
    """One ``lkca train`` process; its last epoch's images/s and the other processes' CPU share.
    A run past ``limit_s`` is stopped and recorded with ``images_per_s`` an upper bound: all its
    training images over ``limit_s`` (``"bound": true``)."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "lkca", *CASES[case], "--epochs", str(epochs), "--device",
                "cpu", "--no-progress", "--out", out, "--set", f"max_steps_per_epoch={steps}"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), LKCA_AUTOTUNE_CACHE=str(cache))
        before, child_before, start = _cpu_ticks(), _child_ticks(), time.perf_counter()
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=limit_s)
        except subprocess.TimeoutExpired:  # subprocess.run killed it
            return {"images_per_s": epochs * steps * BATCH[case] / limit_s, "bound": True,
                    "wall_s": limit_s, "others_cpu_share": foreign_load(before, _cpu_ticks())}
        wall, after, child = time.perf_counter() - start, _cpu_ticks(), _child_ticks() - child_before
        if proc.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
        rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    total = after[1] - before[1]
    own_run = child / total if total > 0 else 0.0  # the lkca train process, not foreign
    return {"images_per_s": rows[-1]["images_per_s"], "bound": False, "wall_s": wall,
            "others_cpu_share": max(0.0, foreign_load(before, after) - own_run)}


def _child_ticks() -> int:
    """CPU ticks of this process's finished children (the lkca train runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="steps per epoch")
    parser.add_argument("--run-limit-s", type=float, default=240,
                        help="stop a run after this long and record an upper bound (default 240)")
    parser.add_argument("--conditions", nargs="+", default=["quiet", "busy"],
                        choices=["quiet", "busy"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads_cpu.json"))
    args = parser.parse_args()
    samples: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "autotune.json"
        for condition in args.conditions:
            busy = (subprocess.Popen([sys.executable, "-c", BUSY]) if condition == "busy" else None)
            try:
                for r in range(args.rounds):
                    for case in CASES:
                        for n in args.threads:
                            s = run_once(case, n, args.epochs, args.steps, cache,
                                         args.run_limit_s)
                            samples.setdefault(f"{condition} {case} {n}", []).append(s)
                            print(f"round {r + 1}: {condition:5} {case:13} threads {n}: "
                                  f"{'<' if s['bound'] else ' '}{s['images_per_s']:6.0f} img/s "
                                  f"({s['wall_s']:.1f} s, "
                                  f"others {s['others_cpu_share']:.0%} of the CPUs)", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    medians = {k: statistics.median(s["images_per_s"] for s in v) for k, v in samples.items()}
    bounds = sorted(k for k, v in samples.items() if any(s["bound"] for s in v))
    # nested for the docs' marks: ratios[condition][case]["1_to_N"]
    ratios = {c: {case: {f"1_to_{n}": medians[f"{c} {case} 1"] / medians[f"{c} {case} {n}"]
                         for n in args.threads if n != 1} for case in CASES}
              for c in args.conditions}
    others = {c: statistics.median(s["others_cpu_share"] for k, v in samples.items()
                                   if k.startswith(f"{c} ") for s in v) for c in args.conditions}
    result = {
        "benchmark": "threads", "machine": machine(torch.device("cpu")),
        "lkca_version": __version__, "models": sorted(MODELS.values()),
        "settings": {"threads": args.threads, "rounds": args.rounds, "epochs": args.epochs,
                     "steps_per_epoch": args.steps, "busy_process": BUSY, "cases": CASES},
        "samples": samples, "median_images_per_s": medians, "ratios": ratios,
        "others_cpu_share_median": others,  # the CPUs' share other processes used, per condition
        "upper_bounds": bounds,  # settings with a run stopped at --run-limit-s: at most this fast
        "load_average_end": list(os.getloadavg()),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("\nmedian images/s (ratio to 1 thread):")
    for k, v in medians.items():
        c, case, n = k.split()
        print(f"  {k:32} {v:7.0f}  ({v / medians[f'{c} {case} 1']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
