"""How ``LKCA(impl="auto")`` chooses among conv, toeplitz and fft: measured on the device at hand.

docs/benchmarks.md ("How auto chooses") is the user-facing description; in short:

- **Policy** (:func:`set_impl_policy`): ``"autotune"`` (default) times the three implementations
  the first time a shape key is seen; ``"rule"`` uses :func:`rule_impl` (no timing); ``"conv"``,
  ``"toeplitz"`` or ``"fft"`` run that one everywhere.
- **Shape key** (:class:`ShapeKey`): device type, dtype (and autocast dtype), training or not,
  batch, channels, heads, grid, kernel. The timings are cached per key in memory and on disk
  (:mod:`lkca.autotune.cache`), per torch version and device name, with how they were
  made; a cached choice is re-checked once per process (:mod:`lkca.autotune.record`).
- **Record and replay**: :func:`impl_choices` returns every choice made so far as JSON-able data,
  :func:`pin_impl_choices` makes ``auto`` use a record (resume, or every DDP rank using rank 0's
  choices).
- **No timing** while tracing (``torch.compile``, ``torch.export``, ONNX, ``torch.jit.trace``,
  CUDA graph capture, a dispatch mode such as the flop counter, functorch transforms): the choice
  already made for the shape (pinned, or timed for the largest batch of the same shape) or the rule.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lkca.autotune.cache import AutotuneWarning, DiskCache, machine_name
from lkca.autotune.record import (
    CANDIDATES,
    Choice,
    entry,
    from_entry,
    load_doubt,
    now,
    recheck,
)
from lkca.autotune.timing import (
    FINAL_MARGIN,
    FINAL_ROUNDS,
    Impl,
    LoadMeter,
    free_memory,
    race,
    timer,
)
from lkca.errors import ConfigError, UserError

POLICIES = ("autotune", "rule", *CANDIDATES)
RULE_MAX_TOKENS = 1024  # rule_impl: toeplitz up to 32x32 grids (benchmarks/lkca_mixer.py rows)
MEMORY_SHARE = 0.5  # a candidate whose estimated workspace exceeds this share of free memory is skipped

# Estimated bytes an implementation needs: (impl, batch, heads, d, grid, kernel, itemsize, training).
Workspace = Callable[[str, int, int, int, tuple[int, int], tuple[int, int], int, bool], float]

_KEY = re.compile(r"(\S+) (\S+) (train|infer) B(\*|\d+) C(\d+) h(\d+) g(\d+)x(\d+) k(\d+)x(\d+)")


@dataclass(frozen=True)
class ShapeKey:
    """What the choice depends on. ``batch`` is None for choices made while tracing (any batch).

    Written as ``"cuda float32+autocast:bfloat16 train B128 C192 h12 g8x8 k15x15"``.
    """

    device: str  # device type: "cpu", "cuda", ...
    dtype: str  # the values' dtype, "+autocast:<dtype>" under autocast
    training: bool  # forward + backward (grad enabled and something requires grad) or forward only
    batch: int | None
    channels: int
    heads: int
    grid: tuple[int, int]
    kernel: tuple[int, int]

    def __str__(self) -> str:
        batch = "*" if self.batch is None else self.batch
        return (f"{self.device} {self.dtype} {'train' if self.training else 'infer'} B{batch} "
                f"C{self.channels} h{self.heads} g{self.grid[0]}x{self.grid[1]} "
                f"k{self.kernel[0]}x{self.kernel[1]}")

    @classmethod
    def parse(cls, text: str) -> ShapeKey:
        """The key written by ``str(key)``; ConfigError (a UserError) if ``text`` is not one."""
        m = _KEY.fullmatch(str(text))
        if m is None:
            raise ConfigError(f"{text!r} is not an LKCA shape key; use the keys of "
                            "lkca.impl_choices(), e.g. 'cpu float32 train B8 C64 h4 g8x8 k15x15'")
        g = m.groups()
        return cls(g[0], g[1], g[2] == "train", None if g[3] == "*" else int(g[3]), int(g[4]),
                   int(g[5]), (int(g[6]), int(g[7])), (int(g[8]), int(g[9])))

    def any_batch(self) -> ShapeKey:
        return ShapeKey(self.device, self.dtype, self.training, None, self.channels, self.heads,
                        self.grid, self.kernel)


def rule_impl(key: ShapeKey) -> str:
    """The choice without timing: ``toeplitz`` on grids of at most 1,024 tokens, else ``fft``.

    Measured: the fastest of the three on every row of ``benchmarks/lkca_mixer.py`` on CPU (the
    default global kernel, 8x8 to 64x64); the GPU rows of ``benchmarks/gpu_acceptance.py`` record
    the rule's pick beside the measured fastest. It depends on the grid only, so it never
    specialises a symbolic batch while tracing. It ignores the kernel size: for small kernels on
    large grids conv can be much faster (the autotuner finds that).
    """
    return "toeplitz" if key.grid[0] * key.grid[1] <= RULE_MAX_TOKENS else "fft"


class _State:
    """Process-wide: the policy, pins, the record of choices and the timings (memory and disk)."""

    def __init__(self) -> None:
        self.policy = "autotune"
        self.pins: dict[ShapeKey, str] = {}
        self.record: dict[ShapeKey, Choice] = {}
        self.tuned: dict[tuple[str, ShapeKey], Choice] = {}  # (machine, key) -> timed choice
        self.memo: dict[tuple, str] = {}  # fast path: raw call signature -> impl
        self.disk = DiskCache()
        self.loaded: set[tuple[str, str | None]] = set()  # (machine, cache path) read from disk

    def load(self, machine: str) -> None:
        """Merge the disk cache's entries for ``machine`` (once per machine and path)."""
        path = self.disk.path()
        if (machine, str(path)) in self.loaded:
            return
        self.loaded.add((machine, str(path)))
        for text, data in self.disk.load(machine).items():
            try:
                key = ShapeKey.parse(text)
            except UserError:
                continue
            choice = from_entry(data, note=f"from {path}")
            if choice is not None:
                self.tuned.setdefault((machine, key), choice)


_STATE = _State()


# --- the public API --------------------------------------------------------------------------


def set_impl_policy(policy: str) -> None:
    """How ``impl="auto"`` chooses: "autotune" (default), "rule", "conv", "toeplitz" or "fft"."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown LKCA impl policy {policy!r}; choose one of {', '.join(POLICIES)}")
    _STATE.policy = policy
    _STATE.memo.clear()


def impl_policy() -> str:
    """The current policy (see :func:`set_impl_policy`)."""
    return _STATE.policy


def impl_choices(details: bool = False) -> dict:
    """Every choice ``auto`` made in this process: ``{shape key: impl}``, JSON-able.

    With ``details``, each value is a dict: impl, source ("timed", "cache", "pinned", "rule",
    "policy"), the ms of each candidate timed in full (the fastest of its calls), why others were
    skipped, the time the timing took, the load while timing, and a note on any re-check. Pass
    the plain form to :func:`pin_impl_choices` to replay it.
    """
    items = sorted(_STATE.record.items(), key=lambda kv: str(kv[0]))
    return {str(k): (c.as_dict() if details else c.impl) for k, c in items}


def pin_impl_choices(choices: Mapping[str, str] | None) -> None:
    """Make ``auto`` use these choices (``{shape key: impl}`` from :func:`impl_choices`).

    A pinned key is used whatever the policy "autotune" or "rule" would pick; unpinned keys are
    chosen as usual. Replaces any earlier pins; ``None`` or ``{}`` removes them. A resumed run
    pins the record of the run it continues, so it runs the same code (bit-exact resume); DDP
    ranks pin rank 0's record so all ranks run the same code.
    """
    pins: dict[ShapeKey, str] = {}
    for text, impl in (choices or {}).items():
        if impl not in CANDIDATES:
            raise ConfigError(f"pinned LKCA impl {impl!r} for {text!r} is not one of "
                            f"{', '.join(CANDIDATES)}; pin a record from lkca.impl_choices()")
        pins[ShapeKey.parse(text)] = impl
    _STATE.pins = pins
    _STATE.memo.clear()


def broadcast_impl_choices(src: int = 0) -> dict[str, str]:
    """DDP: every rank pins rank ``src``'s record (call on all ranks, e.g. after the first step);
    returns it. Without an initialised process group: this process's record, nothing pinned."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return impl_choices()
    box = [impl_choices()]
    dist.broadcast_object_list(box, src=src)
    pin_impl_choices(box[0])
    return box[0]


def set_autotune_cache(path: str | Path | None) -> None:
    """Where the autotuner's timings persist: a JSON file path, or None for memory only.

    Default: ``$LKCA_AUTOTUNE_CACHE`` if set (empty: memory only), else
    ``$XDG_CACHE_HOME/lkca/autotune.json`` (``~/.cache/lkca/autotune.json``).
    """
    _STATE.disk.set_path(path)
    _STATE.memo.clear()


def autotune_cache_path() -> Path | None:
    """The JSON file the timings persist in (None: memory only)."""
    return _STATE.disk.path()


def autotune_cache_entries() -> dict[str, dict[str, dict]]:
    """The cache file's entries, ``{machine: {shape key: entry}}`` ({} if none)."""
    return _STATE.disk.entries()


def clear_autotune_cache() -> int:
    """Delete the cache file and forget this process's timings: every shape is timed again.
    Returns the number of shapes the file held; a path that is not a cache lkca wrote is refused
    (:meth:`~lkca.autotune.cache.DiskCache.clear`)."""
    count = _STATE.disk.clear()
    _STATE.tuned.clear()
    _STATE.loaded.clear()
    _STATE.memo.clear()
    return count


def reset_impl_choices() -> None:
    """Forget this process's record, timings and pins (the policy, the cache path and the cache
    file stay)."""
    global _STATE
    policy, disk = _STATE.policy, _STATE.disk
    _STATE = _State()
    _STATE.policy, _STATE.disk = policy, disk


# --- choosing ------------------------------------------------------------------------------------


def _dtype_label(dtype: torch.dtype, autocast: torch.dtype | None) -> str:
    name = str(dtype).removeprefix("torch.")
    return name if autocast is None else f"{name}+autocast:{str(autocast).removeprefix('torch.')}"


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def choose(v: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int], impls: Mapping[str, Impl],
           workspace: Workspace) -> str:
    """The implementation ``auto`` runs for v (B, heads, N, d) with weight (heads, kh, kw)."""
    device_type = v.device.type
    training = torch.is_grad_enabled() and (v.requires_grad or weight.requires_grad)
    if torch.compiler.is_compiling():  # torch.compile / torch.export: the batch may be symbolic
        return _choose_while_tracing(device_type, v.dtype, _autocast_dtype(device_type), training,
                                     weight.shape[0] * v.shape[-1], weight.shape[0], (grid[0], grid[1]),
                                     (weight.shape[-2], weight.shape[-1]))
    raw = (v.device, v.dtype, _autocast_dtype(device_type), training, tuple(v.shape),
           tuple(weight.shape), tuple(grid), torch.get_num_threads())
    impl = _STATE.memo.get(raw)
    if impl is None:
        impl = _decide(raw, v, weight, grid, impls, workspace)
    return impl


def _choose_while_tracing(device_type: str, dtype: torch.dtype, autocast: torch.dtype | None,
                          training: bool, channels: int, heads: int, grid: tuple[int, int],
                          kernel: tuple[int, int]) -> str:
    key = ShapeKey(device_type, _dtype_label(dtype, autocast), training, None, channels, heads,
                   grid, kernel)
    choice = _untimed(key, "tracing (torch.compile / torch.export)")
    _STATE.record[key] = choice
    return choice.impl


# Evaluated once per trace, its result a constant: what ``@torch.compiler.assume_constant_result``
# does, which is to set this attribute (torch 2.13; tests/autotune/test_tuner.py checks that
# it still is). The decorator itself imports torch._dynamo, which doubles the start-up time of
# every `lkca` command; the attribute alone does not.
_choose_while_tracing._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _nearest(table: Mapping[ShapeKey, str], key: ShapeKey) -> str | None:
    """The entry for ``key``, else the one of the largest batch of the same shape otherwise."""
    if key in table:
        return table[key]
    same = [k for k in table if k.any_batch() == key.any_batch()]
    return table[max(same, key=lambda k: k.batch or 0)] if same else None


def _untimed(key: ShapeKey, why: str) -> Choice:
    """The choice when nothing may be timed: policy, pin, an earlier timing, else the rule."""
    st = _STATE
    if st.policy in CANDIDATES:
        return Choice(st.policy, "policy")
    pinned = _nearest(st.pins, key)
    if pinned is not None:
        return Choice(pinned, "pinned")
    if st.policy == "autotune":
        st.load(machine_name(torch.device(key.device)))
        timed = _nearest({k: c.impl for (_, k), c in st.tuned.items() if k.device == key.device}, key)
        if timed is not None:
            return Choice(timed, "cache", note=f"no timing while {why}")
    return Choice(rule_impl(key), "rule", note=f"no timing while {why}" if st.policy != "rule" else "")


def _cannot_time(v: torch.Tensor) -> str | None:
    """Why v cannot be timed here (tracing, capture, a dispatch mode ...), or None."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    if type(v) not in (torch.Tensor, torch.nn.Parameter) or v.device.type == "meta":
        return f"running on a {type(v).__name__} on {v.device.type}"
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return "tracing (torch.jit / ONNX)"
    if v.device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return "capturing a CUDA graph"
    if _get_current_dispatch_mode() is not None:
        return "a dispatch mode is active (e.g. the flop counter)"
    if torch._C._are_functorch_transforms_active():
        return "a functorch transform is active"
    return None


def _decide(raw: tuple, v: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int],
            impls: Mapping[str, Impl], workspace: Workspace) -> str:
    st = _STATE
    B, heads, _, d = v.shape
    key = ShapeKey(v.device.type, _dtype_label(v.dtype, raw[2]), raw[3], B, heads * d, heads,
                   (grid[0], grid[1]), (weight.shape[-2], weight.shape[-1]))
    why = _cannot_time(v)
    memoize = why is None
    if st.policy in CANDIDATES:
        choice = Choice(st.policy, "policy")
    elif key in st.pins:
        choice = Choice(st.pins[key], "pinned")
    elif st.policy == "rule":
        choice = Choice(rule_impl(key), "rule")
    elif why is not None:
        choice = _untimed(key, why)
    else:
        machine = machine_name(v.device)
        st.load(machine)
        cached = st.tuned.get((machine, key))
        if cached is not None and cached.checked:
            choice = Choice(cached.impl, "cache", ms=cached.ms, skipped=cached.skipped,
                            load=cached.load, note=cached.note)
        else:
            choice = (_tune(key, v, weight, grid, impls, workspace) if cached is None
                      else _recheck(key, cached, v, weight, grid, impls, workspace))
            if choice.source == "timed" and choice.made == "race":
                st.tuned[(machine, key)] = choice
                st.disk.save(machine, str(key), entry(choice))
            elif choice.source == "cache":
                st.tuned[(machine, key)] = choice
            else:  # nothing could be timed: do not remember, try again next time
                memoize = False
    st.record[key] = choice
    if memoize:
        st.memo[raw] = choice.impl
    return choice.impl


def _timed_race(key: ShapeKey, v: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int],
                impls: Mapping[str, Impl], candidates: list[str]) -> Choice:
    """:func:`timing.race` of ``candidates`` on the caller's problem, ending in the final
    when the load so far puts the timing in doubt (:func:`load_doubt`): a "timed" Choice of the
    fastest ("" when none could be timed) with the full timings, the failures, the load, the
    time it took, and a note when the final ran."""
    start, meter, note = time.perf_counter(), LoadMeter(), ""

    def busy() -> bool:
        nonlocal note
        why = load_doubt(meter.read())
        if why:
            note = (f"under load ({why}): the candidates within {FINAL_MARGIN}x the best timed "
                    f"again, {FINAL_ROUNDS} calls each in turn (mean without the fastest and "
                    "slowest)")
        return bool(why)

    ms, failed = race(timer(v, weight, grid, impls, key.training),
                      (v.shape[0], v.shape[1], v.shape[3]), candidates, busy=busy)
    return Choice(min(ms, key=ms.__getitem__) if ms else "", "timed", ms=ms, skipped=failed,
                  tuning_ms=(time.perf_counter() - start) * 1e3, load=meter.read(), note=note)


def _tune(key: ShapeKey, v: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int],
          impls: Mapping[str, Impl], workspace: Workspace) -> Choice:
    B, heads, _, d = v.shape
    itemsize = (torch.empty((), dtype=_autocast_dtype(v.device.type) or v.dtype).element_size())
    free = free_memory(v.device)
    needs = {impl: workspace(impl, B, heads, d, key.grid, key.kernel, itemsize, key.training)
             for impl in CANDIDATES}
    candidates = [impl for impl in CANDIDATES if free is None or needs[impl] <= MEMORY_SHARE * free]
    skipped = {impl: f"not timed: needs about {needs[impl] / 2**30:.3g} GiB, more than "
                     f"{MEMORY_SHARE:.0%} of the {free / 2**30:.3g} GiB free"
               for impl in CANDIDATES if impl not in candidates and free is not None}
    raced = _timed_race(key, v, weight, grid, impls, candidates)
    skipped.update(raced.skipped)
    if raced.ms:
        return replace(raced, skipped=skipped, made="race", when=now())
    # Nothing timed: all too large for memory (take the smallest) or all failed (take the rule's).
    fallback = rule_impl(key) if candidates else min(needs, key=needs.__getitem__)
    if candidates:
        _warn_once(f"LKCA autotune could not time any implementation for {key} ("
                   + "; ".join(f"{k}: {why}" for k, why in skipped.items()) + f"); using {fallback}")
    return Choice(fallback, "rule", skipped=skipped, tuning_ms=raced.tuning_ms,
                  note="nothing could be timed")


def _recheck(key: ShapeKey, cached: Choice, v: torch.Tensor, weight: torch.Tensor,
             grid: tuple[int, int], impls: Mapping[str, Impl], workspace: Workspace) -> Choice:
    """A cache entry's first use in this process (:func:`record.recheck`)."""
    def pair(candidates: list[str]) -> Choice:
        raced = _timed_race(key, v, weight, grid, impls, candidates)
        return raced if raced.ms else replace(raced, impl=candidates[0])

    return recheck(cached, pair, lambda: _tune(key, v, weight, grid, impls, workspace))


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, AutotuneWarning, stacklevel=3)
