"""Training steps/s against torch's intra-op threads, as the machine is and beside a busy process.

    python benchmarks/threads.py                 # about 30 s on 2 cores

What is timed: training steps as the engine runs them (forward, cross-entropy, backward, AdamW),
on random batches, in this process with ``torch.set_num_threads(N)`` for each N of
``--threads``:

- ``demo``: the digits demo's model and batch (``lkca_digits``, 8x8 images, batch 64);
- ``vit_lkca_500k``: ``vit_lkca_500k`` with patch 1 on 8x8 images, the paper's 8x8 token grid
  (CIFAR's 32x32 with patch 4 gives the same grid), at the recipe's batch of 128: the blocks' work
  of a CIFAR step (only the patch embedding is smaller).

Conditions: ``as_is`` (nothing started by this script; the share of the CPUs other processes used
is recorded from /proc/stat, as ``others_cpu_share``) and ``busy`` (a second process multiplying
512x512 matrices with torch's default threads, as a second training would, runs throughout). Each
sample is one warm-up step then up to ``--steps`` timed steps, stopping early after ``--budget-s``
seconds (at least one step): seconds per step. The settings are measured round-robin,
``--rounds`` times; each ratio (``1_to_N``) is the steps/s with 1 thread over N threads within one
condition (above 1: one thread is faster), from the medians.

In each condition, before its samples, it also records what ``lkca train`` would choose
(``lkca.runtime.device.cpu_threads``, asked with ``OMP_NUM_THREADS`` unset) and the 1-minute load
average beside it (``chosen_threads``): run right after another benchmark or training, the
``as_is`` case is the quiet second run, where the load average still reads the first.

Writes ``benchmarks/results/threads_cpu.json`` (machine, lkca version, the models, every sample,
medians, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import _cpu_ticks, foreign_load, machine  # noqa: E402

import lkca  # noqa: E402
from lkca.runtime.device import cpu_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name -> (model, create_model keywords, batch)
    "demo": ("lkca_digits", {"img_size": 8}, 64),
    "vit_lkca_500k": ("vit_lkca_500k", {"img_size": 8, "patch_size": 1}, 128),
}
BUSY = "import torch\na = torch.randn(512, 512)\nwhile True:\n    a = (a @ a).tanh()\n"


def make_step(case: str) -> Callable[[], None]:
    """One training step of the case's model on a fixed random batch."""
    name, kwargs, batch = CASES[case]
    torch.manual_seed(0)
    model = lkca.create_model(name, num_classes=10, **kwargs).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x, y = torch.randn(batch, 3, 8, 8), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def sample(step: Callable[[], None], threads: int, steps: int, budget_s: float) -> dict:
    torch.set_num_threads(threads)
    step()  # warm-up (LKCA's autotuner times its choice for this thread count here)
    before, start, done = _cpu_ticks(), time.perf_counter(), 0
    while done < steps and (done == 0 or time.perf_counter() - start < budget_s):
        step()
        done += 1
    seconds = (time.perf_counter() - start) / done
    return {"s_per_step": seconds, "steps": done,
            "others_cpu_share": foreign_load(before, _cpu_ticks())}


def chosen_threads() -> dict:
    """What ``lkca train`` would choose now, as if ``OMP_NUM_THREADS`` were unset, with its log
    line and the 1-minute load average beside it."""
    saved = os.environ.pop("OMP_NUM_THREADS", None)
    try:
        threads, note = cpu_threads(torch.device("cpu"))
    finally:
        if saved is not None:
            os.environ["OMP_NUM_THREADS"] = saved
    return {"threads": threads, "note": note, "load_average_1min": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per sample at most")
    parser.add_argument("--budget-s", type=float, default=2.0, help="seconds per sample at most")
    parser.add_argument("--conditions", nargs="+", default=["as_is", "busy"],
                        choices=["as_is", "busy"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads_cpu.json"))
    args = parser.parse_args()
    default_threads, t0 = torch.get_num_threads(), time.perf_counter()
    steps = {case: make_step(case) for case in CASES}
    samples: dict[str, list[dict]] = {}
    chosen: dict[str, dict] = {}
    for condition in args.conditions:
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if condition == "busy" else None
        try:
            if busy is not None:
                time.sleep(1.0)  # let it start computing
            chosen[condition] = chosen_threads()
            print(f"{condition:6} lkca train would use {chosen[condition]['threads']} thread(s) "
                  f"(load average {chosen[condition]['load_average_1min']:.2f})", flush=True)
            for _ in range(args.rounds):
                for case, step in steps.items():
                    for n in args.threads:
                        s = sample(step, n, args.steps, args.budget_s)
                        samples.setdefault(f"{condition} {case} {n}", []).append(s)
                        print(f"{condition:6} {case:13} threads {n}: {s['s_per_step'] * 1e3:8.1f} "
                              f"ms/step ({s['steps']} steps; others {s['others_cpu_share']:.0%} "
                              "of the CPUs)", flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    torch.set_num_threads(default_threads)
    med = {k: statistics.median(s["s_per_step"] for s in v) for k, v in samples.items()}
    # nested for the docs' marks: ratios[condition][case]["1_to_N"]
    ratios = {c: {case: {f"1_to_{n}": med[f"{c} {case} {n}"] / med[f"{c} {case} 1"]
                         for n in args.threads if n != 1} for case in CASES}
              for c in args.conditions}
    others = {c: statistics.median(s["others_cpu_share"] for k, v in samples.items()
                                   if k.startswith(f"{c} ") for s in v) for c in args.conditions}
    result = {
        "benchmark": "threads", "machine": machine(torch.device("cpu")),
        "lkca_version": lkca.__version__, "models": sorted(m for m, _, _ in CASES.values()),
        "settings": {"threads": args.threads, "rounds": args.rounds, "steps": args.steps,
                     "budget_s": args.budget_s, "busy_process": BUSY,
                     "cases": {k: {"model": m, "args": a, "batch": b}
                               for k, (m, a, b) in CASES.items()}},
        "samples": samples, "median_s_per_step": med, "ratios": ratios,
        "others_cpu_share_median": others,  # the CPUs' share other processes used, per condition
        "chosen_threads": chosen,  # what lkca train would choose at the start of each condition
        "load_average_end": list(os.getloadavg()), "wall_s": time.perf_counter() - t0,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"ratios": ratios, "chosen_threads": {
        c: v["threads"] for c, v in chosen.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
