"""Timing LKCA implementations against each other on the device at hand (the autotuner's race).

:func:`timer` runs one implementation once on a slice of the caller's problem (synchronised, on
detached copies); :func:`race` times several with sub-problems first, so that a hopeless one is
dropped before it runs in full (docs/benchmarks.md, "How auto chooses").
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

REPEATS = 3  # timed calls per candidate at full size, after one warm-up call; the median counts
GROWTH = 4  # work ratio between successive sub-problems of the race
SUB_PROBLEMS = 4  # sub-problems of 1/4, 1/16, 1/64, 1/256 of the work (where that is >= 1 unit)

# One implementation: (v (B, heads, N, d), weight (heads, kh, kw), grid) -> (B, heads, N, d).
Impl = Callable[[torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor]
Run = Callable[[str, tuple[int, int, int]], float]  # (impl, (b, h, dd) slice) -> seconds


def sub_problems(batch: int, heads: int, d: int) -> list[tuple[int, int, int]]:
    """(b, h, dd) slices of the (batch, heads, channels per head) work, smallest first, the full
    problem last.

    Each is the smallest slice with at least a quarter (1 / ``GROWTH``) of the units
    ``b * h * dd`` of the next, fewer samples first, then fewer heads, then fewer channels; so the
    work grows at most 4x from one to the next. At most ``SUB_PROBLEMS`` of them, down to 1 unit.
    """
    sizes = [(batch, heads, d)]
    while len(sizes) <= SUB_PROBLEMS and (units := math.prod(sizes[0])) > 1:
        _, h, dd = sizes[0]
        target = -(-units // GROWTH)  # ceil
        if target >= h * dd:
            size = (-(-target // (h * dd)), h, dd)
        elif target >= dd:
            size = (1, -(-target // dd), dd)
        else:
            size = (1, 1, target)
        sizes.insert(0, size)
    return sizes


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    module = getattr(torch, device.type, None)
    sync = getattr(module, "synchronize", None) if device.type != "cpu" else None
    return sync if callable(sync) else (lambda: None)


def timer(v: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int], impls: Mapping[str, Impl],
           training: bool) -> Callable[[str, tuple[int, int, int]], float]:
    """Seconds of one call of an implementation on a (b, h, dd) slice of the problem.

    Runs on detached slices of v and weight, so the caller's autograd graph, its ``.grad`` fields
    and saved-tensor hooks are untouched; no implementation draws random numbers, so RNG streams
    are untouched too. Training: forward + backward (gradient: the values themselves, not zeros).
    """
    v0, w0 = v.detach(), weight.detach()
    sync = _synchronizer(v.device)
    grads: dict[tuple, torch.Tensor] = {}

    def run(impl: str, size: tuple[int, int, int]) -> float:
        b, h, dd = size
        vs, ws = v0[:b, :h, :, :dd], w0[:h]
        fn = impls[impl]
        sync()
        start = time.perf_counter()
        if training:
            vs, ws = vs.detach().requires_grad_(), ws.detach().requires_grad_()
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(_same, _same):
                out = fn(vs, ws, grid)
                g = grads.get((size, out.dtype))
                if g is None:
                    g = grads[(size, out.dtype)] = v0[:b, :h, :, :dd].to(out.dtype)
                out.backward(g)
        else:
            with torch.no_grad():
                fn(vs, ws, grid)
        sync()
        return time.perf_counter() - start

    return run


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def race(run: Run, full: tuple[int, int, int],
         candidates: list[str], repeats: int = REPEATS) -> tuple[dict[str, float], dict[str, str]]:
    """Time ``candidates`` on ``full``; returns (median ms of those timed in full, skipped ones).

    Each candidate climbs the :func:`sub_problems` (one call each), then runs the full problem
    (one warm-up call, then ``repeats`` timed calls, median; it stops after one timed call over 2x
    the best so far). The candidate whose next call is predicted cheapest (linear in the work)
    always goes next. Once the best full-problem time T is known, a candidate whose latest
    sub-problem took longer than T (twice: a first call may carry one-time costs such as plan
    creation) is dropped, because the full problem cannot be faster.

    The bound, for costs linear in the work (tests/layers/test_lkca_timing.py): a dropped
    candidate costs at most 2 x 4 T (the sub-problem that crossed T, twice) + 4/3 T (the smaller
    ones) as long as its smallest sub-problem (1/256 of a problem of 256 units or more) stays
    under T, i.e. it is at most ~256x slower than the best; a competitive one costs 1 + ``repeats``
    calls and its sub-problems. With three candidates the first call of a shape costs at most
    about 25 T.
    """
    stages = sub_problems(*full)
    units = [b * h * d for b, h, d in stages]
    step = dict.fromkeys(candidates, 0)
    last: dict[str, list] = {}  # candidate -> [seconds, stage, confirmed]
    ms: dict[str, float] = {}
    skipped: dict[str, str] = {}
    best, best_impl = math.inf, ""

    def predicted(c: str) -> float:
        if c not in last:
            return 0.0
        t, i, _ = last[c]
        return t * units[step[c]] / units[i]

    while todo := [c for c in candidates if c not in ms and c not in skipped]:
        for c in todo:
            if c in last and last[c][0] > best:
                t, i, confirmed = last[c]
                if not confirmed:
                    last[c] = [min(t, _call(run, c, stages[i], skipped)), i, True]
                if c not in skipped and last[c][0] > best:
                    b, h, d = stages[i]
                    skipped[c] = (f"dropped: {units[i] / units[-1]:.3g} of the problem (batch {b}, "
                                  f"{h} heads, {d} channels each) took {last[c][0] * 1e3:.4g} ms, "
                                  f"more than {best_impl} in full ({best * 1e3:.4g} ms)")
        todo = [c for c in todo if c not in skipped]
        if not todo:
            break
        c = min(todo, key=predicted)
        i = step[c]
        if i < len(stages) - 1:
            t = _call(run, c, stages[i], skipped)
            last[c], step[c] = [t, i, False], i + 1
            continue
        if math.isnan(_call(run, c, full, skipped)):  # warm-up
            continue
        times: list[float] = []
        for _ in range(repeats):
            times.append(_call(run, c, full, skipped))
            if math.isnan(times[-1]) or times[0] > 2 * best:
                break
        if c in skipped:
            continue
        ms[c] = statistics.median(times) * 1e3
        if ms[c] / 1e3 < best:
            best, best_impl = ms[c] / 1e3, c
    return ms, skipped


def _call(run: Run, impl: str,
          size: tuple[int, int, int], skipped: dict[str, str]) -> float:
    """``run(impl, size)``; an error (out of memory, unsupported here) skips the candidate: NaN."""
    try:
        return run(impl, size)
    except Exception as err:  # noqa: BLE001 - any failure means "not this implementation here"
        if torch.cuda.is_available():  # after an out-of-memory error, return the cached blocks
            torch.cuda.empty_cache()
        first = (str(err).strip().splitlines() or [""])[0][:200]
        skipped[impl] = f"failed: {type(err).__name__}: {first}"
        return math.nan


def free_memory(device: torch.device) -> float | None:
    """Bytes the device can still allocate (None: unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
        except OSError:
            return None
    return None
