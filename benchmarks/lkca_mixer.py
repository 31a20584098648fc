"""Forward + backward time of the LKCA token mixer (conv / toeplitz / fft / auto) beside attention and LKA.

    PYTHONPATH=src python benchmarks/lkca_mixer.py                        # CPU, fp32
    PYTHONPATH=src python benchmarks/lkca_mixer.py --device cuda --dtype bf16
    PYTHONPATH=src python benchmarks/lkca_mixer.py --rows 8 --repeats 1 --out /tmp/m.json  # smoke

Each case is a whole mixer module (``LKCA(dim, heads, grid)`` with the default global kernel, again
with ``projections=True``, ``Attention``, ``LKA``) run forward and backward on x (B, N, C). Cases
are timed round-robin (one sample of each in turn) after a warm-up, so drift in machine load hits
all of them alike; each time is the median of its samples. On a shared CPU, a sample during which
other processes used more than ``--max-foreign`` of the cores (read from /proc/stat) is retaken
once the machine is quiet. Cases slower than ``--slow-s`` get fewer samples.

``auto`` is the autotuned choice (docs/benchmarks.md, "How auto chooses"). Before the timed rounds,
each row measures its first-call overhead: every implementation is run once (so one-time costs
such as kernel loading are paid), the autotuner's memory is cleared and the disk cache switched
off, and one forward + backward of ``LKCA(impl="auto")`` is timed; the overhead is that time
minus auto's median step, in ms and as a multiple of the step (and the tuner's own timing). The
timed rounds then run with that choice cached (a warm cache). Each row also records the rule's
choice (the ``rule`` policy, no timing) beside the measured fastest.

Writes ``benchmarks/results/lkca_mixer_<device>.json`` (``_<dtype>`` added for bf16) and prints the
ratios and the targets: auto within 1.05x of the fastest implementation on every row (warm cache);
LKCA(auto) at most 0.5x attention at 8x8; auto at least 10x faster than conv from 16x16 up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lkca.layers import lkca_autotune
from lkca.layers.attention import Attention
from lkca.layers.lka import LKA
from lkca.layers.lkca import LKCA, global_kernel_size

ROOT = Path(__file__).resolve().parents[1]
ROWS = [  # grid, dim C, heads, batch
    ((8, 8), 192, 12, 128),
    ((16, 16), 192, 12, 32),
    ((32, 32), 384, 6, 8),
    ((64, 64), 384, 6, 2),
]
IMPLS = ("conv", "toeplitz", "fft", "auto")
AUTO_SLACK, ATTN_RATIO_8x8, CONV_SPEEDUP = 1.05, 0.5, 10.0


# --- timing -------------------------------------------------------------------------------------


def _cpu_ticks() -> tuple[int, int, int]:
    """(busy ticks of the whole machine, all ticks, this process's ticks) from /proc."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # no /proc: no load check
        return 0, 0, 0
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), int(own[11]) + int(own[12])


def foreign_load(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
    """Fraction of all cores used by other processes between two ``_cpu_ticks()`` readings."""
    busy, total, own = (a - b for a, b in zip(after, before))
    return max(0.0, (busy - own) / total) if total > 0 else 0.0


def wait_quiet(max_foreign: float, max_wait_s: float, window_s: float = 0.25) -> float:
    """Sleep until other processes use at most ``max_foreign`` of the CPUs (or ``max_wait_s``)."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        before = _cpu_ticks()
        time.sleep(window_s)
        if foreign_load(before, _cpu_ticks()) <= max_foreign:
            break
    return time.perf_counter() - start


def measure(
    cases: dict[str, Callable[[], None]],
    repeats: int = 7,
    sync: Callable[[], None] = lambda: None,
    slow_s: float = 3.0,
    max_foreign: float = 0.15,
    retries: int = 2,
    min_sample_s: float = 0.2,
    max_wait_s: float = 60.0,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, dict]:
    """Median seconds per call of each case, sampled round-robin after warm-up.

    A sample is the mean over enough back-to-back calls to last ``min_sample_s``, after one
    untimed call of the same case: the cases take turns, and a case timed right after another
    pays for that one's memory (freed, then faulted in again) and caches, which in training,
    where one implementation runs step after step, it never does (measured here: up to 1.2x on
    the same implementation). A case slower than ``slow_s`` gets no second warm-up call (the
    first counts as a sample), no untimed call before a sample and ``max(1, repeats // 3)``
    samples in all. A sample taken while other processes used more than
    ``max_foreign`` of the CPUs is dropped and retaken after the machine is quiet again (waiting
    at most ``max_wait_s``), up to ``retries`` x the samples wanted; if too few clean samples
    remain, the median of all samples is used and ``noisy`` is set. At most 5 x ``max_wait_s`` is
    spent waiting in all.
    """
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    number, want, settle = {}, {}, {}

    def sample(name: str, calls: int, settle_first: bool = False) -> tuple[float, float]:
        if settle_first:  # one untimed call first: the case runs after itself, as in training
            cases[name]()
        sync()
        before, t = _cpu_ticks(), time.perf_counter()
        for _ in range(calls):
            cases[name]()
        sync()
        return (time.perf_counter() - t) / calls, foreign_load(before, _cpu_ticks())

    for name in cases:
        first = sample(name, 1)
        if first[0] > slow_s:
            samples[name].append(first)
            number[name], want[name], settle[name] = 1, max(1, repeats // 3), False
        else:
            dt = sample(name, 1)[0]
            number[name], want[name] = max(1, int(min_sample_s / max(dt, 1e-6))), repeats
            settle[name] = True
        log(f"  warm-up {name}: {first[0] * 1e3:.1f} ms")

    def clean(name: str) -> list[float]:
        return [t for t, load in samples[name] if load <= max_foreign]

    budget = {name: (1 + retries) * n for name, n in want.items()}
    quiet, waited = True, 0.0
    while todo := [n for n in cases if len(clean(n)) < want[n] and len(samples[n]) < budget[n]]:
        for name in todo:
            if not quiet and waited < 5 * max_wait_s:
                waited += wait_quiet(max_foreign, max_wait_s)
            samples[name].append(sample(name, number[name], settle_first=settle[name]))
            quiet = samples[name][-1][1] <= max_foreign
    result = {}
    for name in cases:
        good = clean(name)
        noisy = len(good) < want[name]
        times = [t for t, _ in samples[name]] if noisy and len(good) < 2 else good
        result[name] = {
            "s": statistics.median(times),
            "samples": len(times),
            "dropped": len(samples[name]) - len(good),
            "noisy": noisy,
        }
    return result


# --- the benchmark ------------------------------------------------------------------------------


def machine(device: torch.device) -> dict:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    desc = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        desc["gpu"] = torch.cuda.get_device_name(device)
        desc["cuda"] = torch.version.cuda
    return desc


def make_cases(grid, dim, heads, batch, device, dtype) -> dict[str, Callable[[], None]]:
    """One forward + backward closure per mixer on a fixed input."""
    torch.manual_seed(0)
    N = grid[0] * grid[1]
    x = torch.randn(batch, N, dim, device=device, requires_grad=True)
    grad = torch.randn(batch, N, dim, device=device)
    amp = dtype != torch.float32

    def case(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            module.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                out = module(x, grid)
            out.backward(grad)

        return run

    cases = {}
    for proj in (False, True):
        tag = "lkca_proj" if proj else "lkca"
        module = LKCA(dim, heads, grid, projections=proj).to(device)
        for impl in IMPLS:
            cases[f"{tag}_{impl}"] = case(_with_impl(module, impl))
    cases["attention"] = case(Attention(dim, heads).to(device))
    cases["lka"] = case(LKA(dim, grid).to(device))
    return cases


def shape_key(grid, dim, heads, batch, device: torch.device, dtype: torch.dtype) -> str:
    """The autotuner's key of the mixer's shape in this benchmark (forward + backward)."""
    label = "float32" if dtype == torch.float32 else f"float32+autocast:{str(dtype)[6:]}"
    return str(lkca_autotune.ShapeKey(device.type, label, True, batch, dim, heads, tuple(grid),
                                      global_kernel_size(grid)))


def first_call(cases: dict, key: str, sync: Callable[[], None]) -> dict:
    """The first ``auto`` call of a shape with nothing cached: its seconds and the tuner's record."""
    for impl in IMPLS[:3]:  # pay one-time costs (kernel loading, plans) outside the measurement
        cases[f"lkca_{impl}"]()
    lkca_autotune.reset_impl_choices()
    cache = lkca_autotune.autotune_cache_path()
    lkca_autotune.set_autotune_cache(None)
    try:
        sync()
        start = time.perf_counter()
        cases["lkca_auto"]()
        sync()
        seconds = time.perf_counter() - start
    finally:
        lkca_autotune.set_autotune_cache(cache)
    return {"s": seconds, "tuner": lkca_autotune.impl_choices(details=True)[key]}


def paired_ratio(a: Callable[[], None], b: Callable[[], None], pairs: int,
                 sync: Callable[[], None]) -> float:
    """Median over ``pairs`` of time(b) / time(a), each pair timed back to back (after one
    untimed call of each; a goes first in every other pair): a small difference between two
    cases (``auto`` and the implementation it runs) measured on a machine whose speed drifts
    more than that from one moment to the next, since both calls of a pair see the same moment."""
    def timed(case: Callable[[], None]) -> float:
        sync()
        start = time.perf_counter()
        case()
        sync()
        return time.perf_counter() - start

    a(), b()
    ratios = []
    for i in range(pairs):
        if i % 2:  # the order alternates, so that going first or second favours neither
            tb = timed(b)
            ratios.append(tb / timed(a))
        else:
            ta = timed(a)
            ratios.append(timed(b) / ta)
    return statistics.median(ratios)


def run_row(grid, dim, heads, batch, device, dtype, repeats, sync, slow_s=3.0, max_foreign=0.15,
            max_wait_s=60.0, min_sample_s=0.2, log: Callable[[str], None] = lambda s: None) -> dict:
    """One row: first-call overhead of auto, then every case timed round-robin (warm cache)."""
    cases = make_cases(grid, dim, heads, batch, device, dtype)
    key = shape_key(grid, dim, heads, batch, device, dtype)
    first = first_call(cases, key, sync)
    timed = measure(cases, repeats, sync, slow_s, max_foreign, min_sample_s=min_sample_s,
                    max_wait_s=max_wait_s, log=log)
    ms = {name: t["s"] * 1e3 for name, t in timed.items()}
    choice = lkca_autotune.impl_choices()[key]
    rule = lkca_autotune.rule_impl(lkca_autotune.ShapeKey.parse(key))
    best = min(ms[f"lkca_{i}"] for i in IMPLS[:3])
    overhead_ms = first["s"] * 1e3 - ms["lkca_auto"]
    # auto runs `choice` plus a dictionary look-up: its cost over `choice`, paired
    dispatch = {tag: paired_ratio(cases[f"{tag}_{choice}"], cases[f"{tag}_auto"], repeats * 3, sync)
                for tag in ("lkca", "lkca_proj")}
    return {
        "grid": list(grid), "dim": dim, "heads": heads, "batch": batch,
        "kernel": list(global_kernel_size(grid)), "shape_key": key,
        "auto_choice": {"lkca": choice, "lkca_proj": choice},
        "rule_choice": rule, "rule_to_best": ms[f"lkca_{rule}"] / best,
        "first_call": {"ms": first["s"] * 1e3, "overhead_ms": overhead_ms,
                       "overhead_steps": overhead_ms / ms["lkca_auto"],
                       "tuner": first["tuner"]},
        "ms": ms, "ratios": ratios(ms, choice, dispatch), "auto_to_choice_paired": dispatch,
        "samples": {n: t["samples"] for n, t in timed.items()},
        "dropped_samples": {n: t["dropped"] for n, t in timed.items() if t["dropped"]},
        "noisy": [n for n, t in timed.items() if t["noisy"]],
    }


class _with_impl(torch.nn.Module):
    """The same LKCA module (shared weights) forced to one implementation."""

    def __init__(self, module: LKCA, impl: str) -> None:
        super().__init__()
        self.module, self.impl = module, impl

    def forward(self, x: torch.Tensor, grid) -> torch.Tensor:
        self.module.impl = self.impl
        return self.module(x, grid)


def ratios(ms: dict[str, float], choice: str, dispatch: dict[str, float]) -> dict:
    """Per module: every implementation's time over the fastest's (round robin), and ``auto``'s
    as the time of the implementation it chose over the fastest's times ``auto``'s paired cost
    over that implementation (:func:`paired_ratio`); ``auto_round_robin_to_best`` is auto's own
    round-robin median over the fastest's, which carries the machine's drift."""
    out = {}
    for tag in ("lkca", "lkca_proj"):
        best = min(ms[f"{tag}_{i}"] for i in IMPLS[:3])
        auto = ms[f"{tag}_{choice}"] * dispatch[tag]  # auto's time, as the docstring says
        out[tag] = {
            **{f"{i}_to_best": ms[f"{tag}_{i}"] / best for i in IMPLS[:3]},
            "auto_to_best": auto / best,
            "auto_round_robin_to_best": ms[f"{tag}_auto"] / best,
            "auto_to_attention": auto / ms["attention"],
            "auto_to_lka": auto / ms["lka"],
            "conv_to_auto": ms[f"{tag}_conv"] / auto,
        }
    return out


def check_targets(rows: list[dict]) -> list[tuple[str, bool]]:
    results = []
    for row in rows:
        g = "x".join(map(str, row["grid"]))
        for tag in ("lkca", "lkca_proj"):
            r = row["ratios"][tag]
            results.append(
                (f"{g} {tag}: auto {r['auto_to_best']:.2f}x best <= {AUTO_SLACK}",
                 r["auto_to_best"] <= AUTO_SLACK)
            )
            if row["grid"][0] * row["grid"][1] >= 256:
                results.append(
                    (f"{g} {tag}: conv/auto {r['conv_to_auto']:.1f} >= {CONV_SPEEDUP:.0f}",
                     r["conv_to_auto"] >= CONV_SPEEDUP)
                )
        if tuple(row["grid"]) == (8, 8):
            r = row["ratios"]["lkca"]["auto_to_attention"]
            results.append((f"8x8 lkca: auto/attention {r:.2f} <= {ATTN_RATIO_8x8}", r <= ATTN_RATIO_8x8))
    return results


def print_table(rows: list[dict]) -> None:
    cols = ["conv", "toeplitz", "fft", "auto"]
    head = f"{'grid':>6} {'module':>10} {'choice':>9} " + " ".join(f"{c:>9}" for c in cols)
    head += f" {'auto/attn':>9} {'auto/lka':>9} {'conv/auto':>9}"
    print("time / best of conv, toeplitz, fft (forward + backward)")
    print(head)
    for row in rows:
        g = "x".join(map(str, row["grid"]))
        for tag in ("lkca", "lkca_proj"):
            r = row["ratios"][tag]
            line = f"{g:>6} {tag:>10} {row['auto_choice'][tag]:>9} "
            line += " ".join(f"{r[f'{c}_to_best']:>9.2f}" for c in cols)
            line += f" {r['auto_to_attention']:>9.2f} {r['auto_to_lka']:>9.2f} {r['conv_to_auto']:>9.1f}"
            print(line)
    print("auto's first call (nothing cached): overhead over one auto step; the rule's pick")
    for row in rows:
        f = row["first_call"]
        print(f"{'x'.join(map(str, row['grid'])):>6} {f['overhead_ms']:>10.1f} ms = "
              f"{f['overhead_steps']:>6.1f} steps (tuner {f['tuner'].get('tuning_ms', 0):.1f} ms); "
              f"rule {row['rule_choice']} at {row['rule_to_best']:.2f}x the fastest")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--rows", default=None, help="comma-separated grid sides to run, e.g. 8,16")
    parser.add_argument("--slow-s", type=float, default=3.0, help="cases slower than this get fewer samples")
    parser.add_argument("--max-foreign", type=float, default=0.15,
                        help="retake samples during which other processes used more of the CPUs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("lkca_mixer: --device cuda but CUDA is not available; use --device cpu", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    suffix = "" if args.dtype == "fp32" else f"_{args.dtype}"
    out = args.out or ROOT / "benchmarks" / "results" / f"lkca_mixer_{device.type}{suffix}.json"
    wanted = None if args.rows is None else {int(s) for s in args.rows.split(",")}

    rows = []
    for grid, dim, heads, batch in ROWS:
        if wanted is not None and grid[0] not in wanted:
            continue
        print(f"grid {grid[0]}x{grid[1]}  C={dim} heads={heads} batch={batch}", flush=True)
        rows.append(run_row(grid, dim, heads, batch, device, dtype, args.repeats, sync, args.slow_s,
                            args.max_foreign, log=lambda s: print(s, flush=True)))
    print_table(rows)
    targets = check_targets(rows)
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    result = {
        "benchmark": "lkca_mixer forward+backward, median ms over round-robin samples; auto is "
                     "autotuned (first_call: nothing cached; timed rounds: warm cache)",
        "device": device.type, "dtype": args.dtype, "machine": machine(device),
        "repeats": args.repeats, "rows": rows,
        "targets": [{"target": t, "pass": ok} for t, ok in targets],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
