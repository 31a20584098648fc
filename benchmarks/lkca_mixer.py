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
ratios and the targets: auto within 1.10x of the fastest implementation on every row (warm cache);
LKCA(auto) at most 0.5x attention at 8x8; auto at least 10x faster than conv from 16x16 up.

``--busy``: the same with a second process training on the same cores throughout (:data:`BUSY`,
the digits demo model on random data), samples never retaken for load; writes ``..._busy.json``.
Each row's fresh ``auto`` choice is then made while the machine is busy, the case this
condition checks (docs/benchmarks.md, "How auto chooses").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lkca.autotune import timing, tuner
from lkca.autotune.timing import cpu_ticks as _cpu_ticks
from lkca.layers.attention import Attention
from lkca.layers.lka import LKA
from lkca.layers.lkca import LKCA, global_kernel_size
from lkca.runtime.device import resolve_device

ROOT = Path(__file__).resolve().parents[1]
# grid, dim C, LKCA kernels (heads), batch, kernel (None: the global 2H-1 x 2W-1), attention heads,
# also timed with projections=True
ROWS = [
    ((8, 8), 192, 12, 128, None, 12, True),
    # the authors' LKCA: one kernel per block shared by all channels (kernel_heads=1), 8x8 grid,
    # global 15x15 kernel, batch 128; C of LKCA-T, LKCA-B, ViT/2M-LKCA (docs/block-readings.md)
    ((8, 8), 112, 1, 128, None, 7, False),
    ((8, 8), 192, 1, 128, None, 12, False),
    ((8, 8), 288, 1, 128, None, 18, False),
    ((16, 16), 192, 12, 32, None, 12, True),
    ((32, 32), 384, 6, 8, None, 6, True),  # the segmentation grids, global kernel
    ((64, 64), 384, 6, 1, None, 6, False),
    ((32, 32), 192, 12, 8, 7, 12, False),  # small kernels on large grids
    ((64, 64), 192, 6, 1, 7, 6, False),
]
IMPLS = ("conv", "toeplitz", "fft", "auto")
# Not timed as a case (the tuner still races it): a 127x127 depthwise convolution at 64x64, 140x
# the fastest (68 s a call) in the quiet run of this benchmark before it had these rows, so three
# calls of it would take most of the benchmark's time budget.
NOT_TIMED = {((64, 64), None): ("conv",)}
AUTO_SLACK, ATTN_RATIO_8x8, CONV_SPEEDUP = 1.10, 0.5, 10.0
# The busy condition: a training run of the digits demo model on random data in a second process,
# on the same cores, for as long as the benchmark runs.
BUSY = """
import sys, torch, lkca
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = lkca.create_model("lkca_digits")
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
while True:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
"""


# --- timing -------------------------------------------------------------------------------------


def foreign_load(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
    """Fraction of all cores used by other processes between two ``_cpu_ticks()`` readings (0 when
    unknown)."""
    return timing.foreign_load(before, after) or 0.0


def time_calls(case: Callable[[], None], calls: int, sync: Callable[[], None]) -> float:
    """Mean seconds of ``calls`` back-to-back calls of ``case``, synchronised before and after."""
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        case()
    sync()
    return (time.perf_counter() - start) / calls


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
        before = _cpu_ticks()
        return time_calls(cases[name], calls, sync), foreign_load(before, _cpu_ticks())

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


def make_cases(grid, dim, heads, batch, device, dtype, kernel=None, attn_heads=None,
               projections=True, impls=IMPLS) -> dict[str, Callable[[], None]]:
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
    for proj in (False, True) if projections else (False,):
        tag = "lkca_proj" if proj else "lkca"
        module = LKCA(dim, heads, grid, kernel, projections=proj).to(device)
        for impl in impls:
            cases[f"{tag}_{impl}"] = case(_with_impl(module, impl))
    cases["attention"] = case(Attention(dim, attn_heads or heads).to(device))
    cases["lka"] = case(LKA(dim, grid).to(device))
    return cases


def shape_key(grid, dim, heads, batch, device: torch.device, dtype: torch.dtype,
              kernel: tuple[int, int]) -> str:
    """The autotuner's key of the mixer's shape in this benchmark (forward + backward)."""
    label = "float32" if dtype == torch.float32 else f"float32+autocast:{str(dtype)[6:]}"
    return str(tuner.ShapeKey(device.type, label, True, batch, dim, heads, tuple(grid),
                                      kernel))


def first_call(cases: dict, key: str, sync: Callable[[], None]) -> dict:
    """The first ``auto`` call of a shape with nothing cached: its seconds and the tuner's record."""
    for impl in IMPLS[:3]:  # pay one-time costs (kernel loading, plans) outside the measurement
        if f"lkca_{impl}" in cases:
            cases[f"lkca_{impl}"]()
    tuner.reset_impl_choices()
    cache = tuner.autotune_cache_path()
    tuner.set_autotune_cache(None)
    try:
        sync()
        start = time.perf_counter()
        cases["lkca_auto"]()
        sync()
        seconds = time.perf_counter() - start
    finally:
        tuner.set_autotune_cache(cache)
    return {"s": seconds, "tuner": tuner.impl_choices(details=True)[key]}


def paired_ratio(a: Callable[[], None], b: Callable[[], None], pairs: int,
                 sync: Callable[[], None], min_sample_s: float = 0.2) -> float:
    """Median over ``pairs`` of time(b) / time(a), each pair timed back to back (after one
    untimed call of each; a goes first in every other pair): a small difference between two
    cases (``auto`` and the implementation it runs) measured on a machine whose speed drifts
    more than that from one moment to the next, since both calls of a pair see the same moment.
    Each time is the mean of as many back-to-back calls as last ``min_sample_s`` (one call of a
    fast case is too short to average over a busy machine's scheduling)."""
    a(), b()
    calls = max(1, int(min_sample_s / max(time_calls(a, 1, sync), 1e-6)))
    ratios = []
    for i in range(pairs):
        if i % 2:  # the order alternates, so that going first or second favours neither
            tb = time_calls(b, calls, sync)
            ratios.append(tb / time_calls(a, calls, sync))
        else:
            ta = time_calls(a, calls, sync)
            ratios.append(time_calls(b, calls, sync) / ta)
    return statistics.median(ratios)


def run_row(grid, dim, heads, batch, device, dtype, repeats, sync, slow_s=3.0, max_foreign=0.15,
            max_wait_s=60.0, min_sample_s=0.2, log: Callable[[str], None] = lambda s: None,
            kernel_size: int | None = None, attn_heads: int | None = None,
            projections: bool = True) -> dict:
    """One row: first-call overhead of auto, then every case timed round-robin (warm cache)."""
    kernel = global_kernel_size(grid) if kernel_size is None else (kernel_size, kernel_size)
    untimed = NOT_TIMED.get((tuple(grid), kernel_size), ())
    impls = tuple(i for i in IMPLS if i not in untimed)
    cases = make_cases(grid, dim, heads, batch, device, dtype, kernel, attn_heads, projections, impls)
    tags = ("lkca", "lkca_proj") if projections else ("lkca",)
    key = shape_key(grid, dim, heads, batch, device, dtype, kernel)
    load_before = _loadavg()
    first = first_call(cases, key, sync)
    timed = measure(cases, repeats, sync, slow_s, max_foreign, min_sample_s=min_sample_s,
                    max_wait_s=max_wait_s, log=log)
    ms = {name: t["s"] * 1e3 for name, t in timed.items()}
    choice = tuner.impl_choices()[key]
    rule = tuner.rule_impl(tuner.ShapeKey.parse(key))
    best = min(ms[f"lkca_{i}"] for i in impls[:-1])
    overhead_ms = first["s"] * 1e3 - ms["lkca_auto"]
    # auto runs `choice` plus a dictionary look-up: its cost over `choice`, paired
    pairs = repeats * 3 if ms[f"lkca_{choice}"] < slow_s * 1e3 / 3 else repeats
    dispatch = {tag: paired_ratio(cases[f"{tag}_{choice}"], cases[f"{tag}_auto"], pairs, sync,
                                  min_sample_s)
                for tag in tags}
    return {
        "grid": list(grid), "dim": dim, "heads": heads, "batch": batch,
        "kernel": list(kernel), "global_kernel": kernel == global_kernel_size(grid),
        "attention_heads": attn_heads or heads, "shape_key": key,
        "not_timed": list(untimed),
        "auto_choice": dict.fromkeys(tags, choice),
        "rule_choice": rule, "rule_to_best": ms[f"lkca_{rule}"] / best,
        "first_call": {"ms": first["s"] * 1e3, "overhead_ms": overhead_ms,
                       "overhead_steps": overhead_ms / ms["lkca_auto"],
                       "tuner": first["tuner"]},
        "ms": ms, "ratios": ratios(ms, choice, dispatch), "auto_to_choice_paired": dispatch,
        "samples": {n: t["samples"] for n, t in timed.items()},
        "dropped_samples": {n: t["dropped"] for n, t in timed.items() if t["dropped"]},
        "noisy": [n for n, t in timed.items() if t["noisy"]],
        "loadavg": {"before": load_before, "after": _loadavg()},
    }


def _loadavg() -> list[float] | None:
    """``os.getloadavg()`` (1, 5, 15 minutes; None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


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
    for tag in dispatch:
        timed = [i for i in IMPLS[:3] if f"{tag}_{i}" in ms]
        best = min(ms[f"{tag}_{i}"] for i in timed)
        auto = ms[f"{tag}_{choice}"] * dispatch[tag]  # auto's time, as the docstring says
        out[tag] = {
            **{f"{i}_to_best": ms[f"{tag}_{i}"] / best for i in timed},
            "auto_to_best": auto / best,
            "auto_round_robin_to_best": ms[f"{tag}_auto"] / best,
            "auto_to_attention": auto / ms["attention"],
            "auto_to_lka": auto / ms["lka"],
            **({"conv_to_auto": ms[f"{tag}_conv"] / auto} if "conv" in timed else {}),
        }
    return out


def check_targets(rows: list[dict]) -> list[tuple[str, bool]]:
    results = []
    for row in rows:
        g = row_label(row)
        for tag, r in row["ratios"].items():
            results.append(
                (f"{g} {tag}: auto {r['auto_to_best']:.2f}x best <= {AUTO_SLACK}",
                 r["auto_to_best"] <= AUTO_SLACK)
            )
            if row["grid"][0] * row["grid"][1] >= 256 and row["global_kernel"] and "conv_to_auto" in r:
                results.append(
                    (f"{g} {tag}: conv/auto {r['conv_to_auto']:.1f} >= {CONV_SPEEDUP:.0f}",
                     r["conv_to_auto"] >= CONV_SPEEDUP)
                )
        if tuple(row["grid"]) == (8, 8) and row["heads"] == row["attention_heads"]:
            r = row["ratios"]["lkca"]["auto_to_attention"]
            results.append((f"8x8 lkca: auto/attention {r:.2f} <= {ATTN_RATIO_8x8}", r <= ATTN_RATIO_8x8))
    return results


def row_label(row: dict) -> str:
    """``8x8 k15 C192 h12 B128``: the row's grid, kernel, channels, LKCA kernels and batch."""
    return (f"{row['grid'][0]}x{row['grid'][1]} k{row['kernel'][0]} C{row['dim']} h{row['heads']} "
            f"B{row['batch']}")


def print_table(rows: list[dict]) -> None:
    cols = ["conv", "toeplitz", "fft", "auto"]
    head = f"{'row':>24} {'module':>10} {'choice':>9} " + " ".join(f"{c:>9}" for c in cols)
    head += f" {'auto/attn':>9} {'auto/lka':>9} {'conv/auto':>9}"
    print("time / best of conv, toeplitz, fft (forward + backward)")
    print(head)
    for row in rows:
        g = row_label(row)
        for tag, r in row["ratios"].items():
            line = f"{g:>24} {tag:>10} {row['auto_choice'][tag]:>9} "
            line += " ".join(f"{r.get(f'{c}_to_best', math.nan):>9.2f}" for c in cols)
            line += (f" {r['auto_to_attention']:>9.2f} {r['auto_to_lka']:>9.2f} "
                     f"{r.get('conv_to_auto', math.nan):>9.1f}")
            print(line)
    print("auto's first call (nothing cached): overhead over one auto step; the rule's pick")
    for row in rows:
        f = row["first_call"]
        print(f"{row_label(row):>24} {f['overhead_ms']:>10.1f} ms = "
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
    parser.add_argument("--busy", action="store_true",
                        help="run a training process on the same cores throughout (samples are "
                             "never retaken for load); writes ..._busy.json")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # a device this machine lacks: one line
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    suffix = ("" if args.dtype == "fp32" else f"_{args.dtype}") + ("_busy" if args.busy else "")
    out = args.out or ROOT / "benchmarks" / "results" / f"lkca_mixer_{device.type}{suffix}.json"
    wanted = None if args.rows is None else {int(s) for s in args.rows.split(",")}
    max_foreign = 1.0 if args.busy else args.max_foreign
    env = dict(os.environ, LKCA_AUTOTUNE_CACHE="")  # the busy process leaves the cache alone
    busy = (subprocess.Popen([sys.executable, "-c", BUSY, str(torch.get_num_threads())], env=env)
            if args.busy else None)
    load_start, start = _loadavg(), time.perf_counter()
    rows = []
    try:
        if busy is not None:
            time.sleep(5.0)  # let it start training
        for grid, dim, heads, batch, kernel, attn_heads, projections in ROWS:
            if wanted is not None and grid[0] not in wanted:
                continue
            print(f"grid {grid[0]}x{grid[1]} kernel {kernel or 'global'} C={dim} heads={heads} "
                  f"batch={batch}", flush=True)
            rows.append(run_row(grid, dim, heads, batch, device, dtype, args.repeats, sync,
                                args.slow_s, max_foreign, log=lambda s: print(s, flush=True),
                                kernel_size=kernel, attn_heads=attn_heads, projections=projections))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print_table(rows)
    targets = check_targets(rows)
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    result = {
        "benchmark": "lkca_mixer forward+backward, median ms over round-robin samples; auto is "
                     "autotuned (first_call: nothing cached; timed rounds: warm cache)",
        "device": device.type, "dtype": args.dtype, "machine": machine(device),
        "condition": ("busy: a training process on the same cores throughout" if args.busy
                      else "quiet: samples during which other processes used more than "
                           f"{args.max_foreign:.0%} of the CPUs retaken"),
        "loadavg": {"start": load_start, "end": _loadavg()},
        "wall_s": round(time.perf_counter() - start, 1),
        "repeats": args.repeats, "slow_s": args.slow_s, "rows": rows,
        "targets": [{"target": t, "pass": ok} for t, ok in targets],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
