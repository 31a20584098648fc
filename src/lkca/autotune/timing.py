"""Timing LKCA implementations against each other on the device at hand (the autotuner's race).

:func:`timer` runs one implementation once on a slice of the caller's problem (synchronised, on
detached copies); :func:`race` times several with sub-problems first, so that a hopeless one is
dropped before it runs in full (docs/benchmarks.md, "How auto chooses").
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

REPEATS = 3  # timed calls per candidate at full size, after one warm-up call; the fastest counts
GROWTH = 4  # work ratio between successive sub-problems of the race
SUB_PROBLEMS = 4  # sub-problems of 1/4, 1/16, 1/64, 1/256 of the work (where that is >= 1 unit)
RETIMES = 3  # calls of a suspect at one sub-problem before it can be dropped (the fastest counts)
CONFIRM = 8  # a suspect predicting at most this multiple of the best full time is timed in full
# Under load (``busy()``): the candidates timed in full within this multiple of the best meet in a
# final of FINAL_ROUNDS rounds, timed in turn; each one's time is the mean of its final calls
# without the fastest and the slowest
FINAL_MARGIN = 4
FINAL_ROUNDS = 5

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


def race(run: Run, full: tuple[int, int, int], candidates: list[str], repeats: int = REPEATS,
         busy: Callable[[], bool] = lambda: False) -> tuple[dict[str, float], dict[str, str]]:
    """Time ``candidates`` on ``full``; returns (ms of those timed in full, skipped ones: why).

    Each candidate climbs the :func:`sub_problems` (one call each), then runs the full problem
    (one warm-up call, then ``repeats`` timed calls; its time is the fastest of them, as load
    only ever adds time; it stops early once three calls in a row, the warm-up included, each took
    over 2x the best so far). The candidate whose next call is predicted cheapest (linear in the
    work) goes next. A sub-problem more than 2x out of line with the one before it (more than
    twice the time the work ratio predicts) is timed again at once.

    The drop rule (docs/benchmarks.md, "How auto chooses"): with T the best full time so far, a
    candidate whose latest sub-problem took longer than T is a suspect. It is timed on that
    sub-problem until it has ``RETIMES`` calls there (the fastest counts), and dropped only if
    that still exceeds T and predicts, linearly, a full time over ``CONFIRM`` x T; a suspect that
    predicts at most ``CONFIRM`` x T is timed in full instead (the drop is confirmed at full size,
    where one call is cheap). So a candidate ``s`` times faster than the best in full is never
    dropped while, of every ``RETIMES`` calls of it at one size, one is clean and its sub-problems
    cost at most ``CONFIRM * s`` times its full per-unit cost (tests/autotune/test_timing.py).

    The final, when ``busy()`` says other processes share the machine (asked once, after the
    race, when two or more candidates were timed in full): the fastest of 3 measures a candidate
    in its quietest moment, but under lasting contention the implementations slow down unequally
    (measured on 2 cores beside a training process: fft 4.6x its quiet time, conv 1.7x) and one
    lucky call decides. So the candidates within ``FINAL_MARGIN`` x the best meet in
    ``FINAL_ROUNDS`` rounds, each round timing each once (after an untimed call of itself, as it
    runs in training), in turn and in the reverse order the next round; a candidate's time is
    then the mean of its final calls without the fastest and the slowest: the cost a run pays
    under that load, from calls all taken under the same conditions, one lucky and one spiked
    call left out.
    """
    stages = sub_problems(*full)
    units = [b * h * d for b, h, d in stages]
    step = dict.fromkeys(candidates, 0)  # the stage each candidate runs next
    seen: dict[str, dict[int, list[float]]] = {c: {} for c in candidates}  # seconds per stage
    confirming: set[str] = set()  # suspects sent to be timed in full
    ms: dict[str, float] = {}
    skipped: dict[str, str] = {}
    best, best_impl = math.inf, ""

    def latest(c: str) -> tuple[int, float] | None:
        """The candidate's largest timed sub-problem and its fastest time there."""
        if not seen[c]:
            return None
        i = max(seen[c])
        return i, min(seen[c][i])

    def sample(c: str, i: int) -> float:
        t = _call(run, c, stages[i], skipped)
        seen[c].setdefault(i, []).append(t)
        return t

    def predicted(c: str) -> float:
        got = latest(c)
        return 0.0 if got is None else got[1] * units[step[c]] / units[got[0]]

    while todo := [c for c in candidates if c not in ms and c not in skipped]:
        for c in todo:
            got = latest(c)
            if got is None or got[1] <= best or c in confirming:
                continue
            i = got[0]
            while True:
                t = min(seen[c][i])
                if t <= best or c in skipped:
                    break
                if t * units[-1] / units[i] <= CONFIRM * best:
                    step[c] = len(stages) - 1  # confirm at full size: one call there is cheap
                    confirming.add(c)
                    break
                if len(seen[c][i]) >= RETIMES:
                    break
                sample(c, i)  # a drop needs RETIMES calls over the bound: load only adds time
            if c in skipped or c in confirming or t <= best:
                continue
            b, h, d = stages[i]
            skipped[c] = (f"dropped: {units[i] / units[-1]:.3g} of the problem (batch {b}, {h} "
                          f"heads, {d} channels each) took {t * 1e3:.4g} ms (fastest of "
                          f"{len(seen[c][i])}), more than {best_impl} in full ({best * 1e3:.4g} ms), "
                          f"predicting {t * units[-1] / units[i] / best:.3g}x its time in full")
        todo = [c for c in todo if c not in skipped]
        if not todo:
            break
        c = min(todo, key=predicted)
        i = step[c]
        if i < len(stages) - 1:
            t = sample(c, i)
            if i > 0 and i - 1 in seen[c] and t > 2 * min(seen[c][i - 1]) * units[i] / units[i - 1]:
                sample(c, i)  # out of line with its neighbour: load, most likely; time it again
            step[c] = i + 1
            continue
        calls = [_call(run, c, full, skipped)]  # warm-up
        times: list[float] = []
        while c not in skipped and len(times) < repeats:
            times.append(_call(run, c, full, skipped))
            calls.append(times[-1])
            if len(calls) >= RETIMES and min(calls[-RETIMES:]) > 2 * best:
                break
        if c in skipped:
            continue
        ms[c] = min(times) * 1e3
        if ms[c] / 1e3 < best:
            best, best_impl = ms[c] / 1e3, c
    finalists = [c for c in ms if ms[c] <= FINAL_MARGIN * best * 1e3]
    if len(finalists) > 1 and busy():
        ms.update(_final(run, full, finalists, skipped))
        for c in finalists:
            if c in skipped:  # failed in the final
                del ms[c]
    return ms, skipped


def _final(run: Run, full: tuple[int, int, int], finalists: list[str],
           skipped: dict[str, str]) -> dict[str, float]:
    """ms of each finalist: the trimmed mean of ``FINAL_ROUNDS`` calls in turn (see :func:`race`)."""
    times: dict[str, list[float]] = {c: [] for c in finalists}
    for r in range(FINAL_ROUNDS):
        for c in finalists if r % 2 == 0 else finalists[::-1]:
            _call(run, c, full, skipped)  # untimed: the candidate runs after itself
            t = _call(run, c, full, skipped)
            if not math.isnan(t):
                times[c].append(t)
    return {c: _trimmed_mean(ts) * 1e3 for c, ts in times.items() if ts}


def _trimmed_mean(times: list[float]) -> float:
    """The mean without the fastest and the slowest call (all calls when fewer than 3)."""
    kept = sorted(times)[1:-1] if len(times) >= 3 else times
    return sum(kept) / len(kept)


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


def cpu_ticks() -> tuple[int, int, int]:
    """(busy ticks of the whole machine, all ticks, this process's ticks) from /proc (Linux);
    (0, 0, 0) where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return 0, 0, 0
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), int(own[11]) + int(own[12])


def foreign_load(before: tuple[int, int, int], after: tuple[int, int, int]) -> float | None:
    """Share of all cores other processes used between two :func:`cpu_ticks` readings (None:
    unknown, no /proc or no tick between them)."""
    busy, total, own = (a - b for a, b in zip(after, before))
    return max(0.0, (busy - own) / total) if total > 0 else None


class LoadMeter:
    """The machine's load while timing: other processes' share of the cores (Linux) and the
    1-minute load average per core (where ``os.getloadavg`` exists); ``None`` where unknown."""

    def __init__(self) -> None:
        self._ticks = cpu_ticks()

    def read(self) -> dict[str, float | None]:
        others = foreign_load(self._ticks, cpu_ticks())
        try:
            loadavg: float | None = os.getloadavg()[0] / (os.cpu_count() or 1)
        except (AttributeError, OSError):  # Windows
            loadavg = None
        return {"others": None if others is None else round(others, 3),
                "loadavg_per_core": None if loadavg is None else round(loadavg, 3)}
