"""The training device and its precision."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import torch

from lkca.autotune.timing import cpu_ticks, foreign_load
from lkca.errors import UserError
from lkca.runtime.console import plural

# The device names lkca trains and evaluates on: auto, cpu, cuda, cuda:N (DEVICE_NAME.fullmatch)
DEVICE_NAME = re.compile(r"auto|cpu|cuda(?::[0-9]{1,3})?")


def devices_here() -> list[str]:
    """The device names this machine has, for messages: ``auto, cpu`` and its CUDA GPUs."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda"] + [f"cuda:{i}" for i in range(count)]
    return names


def check_device_name(name: object, what: str = "--device") -> None:
    """UserError (one line, listing this machine's devices) unless ``name`` is ``auto``,
    ``cpu``, ``cuda`` or ``cuda:N``: the one check of a device name, whichever command reads it
    (a config's ``device:`` is checked by its spelling only: a run may be planned on a machine
    without the GPU it will train on)."""
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        shown = repr(name)[:40]
        gpus = ("cuda:N for the N-th GPU" if torch.cuda.is_available()
                else "this machine has no CUDA GPU")
        raise UserError(f"{what} {shown} is not a device lkca runs on; use one of "
                        f"{', '.join(devices_here())} ({gpus})")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when visible, else CPU; ``"cuda"`` -> this process's GPU (LOCAL_RANK
    under torchrun). UserError (one line naming this machine's devices) for a name that is not
    a device (:func:`check_device_name`), CUDA asked for but not visible, or a GPU index past
    the GPUs visible."""
    check_device_name(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA GPU is visible; use one of "
                        f"{', '.join(devices_here())}")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} visible "
                        f"GPU(s); use one of {', '.join(devices_here())}")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


# The precision of a run's forward passes (config key ``precision``, docs/recipe.md "Precision"):
# fp32 (the authors' runs, on an RTX 2080 Ti, which has no TF32), tf32 (fp32 storage, matrix
# products and convolutions in TF32 on GPUs that have it), bf16 or fp16 autocast; fp16 also
# scales the loss (Session.backward_and_step).
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (nothing for fp32 and tf32, whose
    tensors stay fp32: :func:`float32_arithmetic`), on CPU and CUDA alike. Reusable across
    ``with`` blocks."""
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision in ("fp32", "tf32"):
        return nullcontext()
    return torch.autocast(device.type, dtype=_AUTOCAST[precision])


# How long lkca train samples the CPUs' use before choosing its threads: long enough to span
# several scheduler ticks (10 ms each at USER_HZ 100), short beside a run's start-up.
LOAD_SAMPLE_S = 0.15
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def own_affinity() -> set[int]:
    """The CPUs this process may run on (``os.sched_getaffinity``; OSError where there is none)."""
    if not hasattr(os, "sched_getaffinity"):
        raise OSError("no CPU affinity on this platform")
    return os.sched_getaffinity(0)


def usable_cpus(affinity: Callable[[], set[int]] = own_affinity,
                cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP,
                ) -> tuple[int | None, str]:
    """(the CPUs this process may use, what limits them) from its CPU affinity
    (``os.sched_getaffinity``) and its cgroup's CPU quota (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; a quota of 1.5 CPUs counts as 2); (None, "")
    where the platform says neither."""
    limits: list[tuple[int, str]] = []
    try:
        limits.append((len(affinity()), "the process's CPU affinity"))
    except OSError:
        pass
    quota = cgroup_quota(cgroup_root, self_cgroup)
    if quota is not None:
        limits.append((max(1, math.ceil(quota - 1e-9)), f"the CPU quota of its cgroup ({quota:.3g} CPUs)"))
    if not limits:
        return None, ""
    return min(limits)


def cgroup_quota(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """CPUs' worth of time this process's cgroup may use (quota / period), None without a quota."""
    try:
        groups = self_cgroup.read_text().splitlines()
    except OSError:
        groups = []
    v2 = [line.split(":", 2)[2] for line in groups if line.startswith("0::")]
    v1 = [line.split(":", 2)[2] for line in groups
          if line.count(":") >= 2 and "cpu" in line.split(":", 2)[1].split(",")]
    candidates: list[tuple[Path, Path | None]] = [
        (cgroup_root / g.lstrip("/") / "cpu.max", None) for g in v2]
    candidates.append((cgroup_root / "cpu.max", None))
    for folder in ("cpu", "cpu,cpuacct"):
        candidates += [(cgroup_root / folder / g.lstrip("/") / "cpu.cfs_quota_us",
                        cgroup_root / folder / g.lstrip("/") / "cpu.cfs_period_us") for g in v1]
        candidates.append((cgroup_root / folder / "cpu.cfs_quota_us",
                           cgroup_root / folder / "cpu.cfs_period_us"))
    for quota_file, period_file in candidates:
        try:
            fields = quota_file.read_text().split()
            if period_file is not None:
                fields = [fields[0], period_file.read_text().split()[0]]
            if fields[0] in ("max", "-1"):
                return None  # this process's group sets no quota
            quota, period = float(fields[0]), float(fields[1])
        except (OSError, ValueError, IndexError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


@contextmanager
def float32_arithmetic(precision: str) -> Iterator[None]:
    """Inside the block, CUDA matrix products and cuDNN convolutions of fp32 tensors run in TF32
    when ``precision`` is ``tf32`` and in IEEE fp32 otherwise (torch's default lets cuDNN
    convolutions use TF32, so a plain ``fp32`` run would not be exact fp32 on a GPU with TF32);
    the settings before the block are restored after it. CPUs have no TF32: there ``tf32`` is
    fp32. Under bf16 / fp16 it governs what autocast leaves in fp32."""
    # the flags torch.compile's kernels read too (allow_tf32; setting torch's newer
    # fp32_precision flags instead makes reading these an error)
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


def cpu_threads(device: torch.device, *, sample_s: float = LOAD_SAMPLE_S,
                ticks: Callable[[], tuple[int, int, int]] = cpu_ticks,
                wait: Callable[[float], None] = time.sleep,
                cpus: Callable[[], tuple[int | None, str]] = usable_cpus,
                ) -> tuple[int, str | None]:
    """(intra-op threads to train with, the log line saying why, or None when unchanged).

    torch uses one thread per core; for models as small as lkca's on a CPU that other processes
    already load, threads beyond the free cores contend and a step can become many times slower
    (docs/benchmarks.md, "Threads"). So on CPU, unless ``OMP_NUM_THREADS`` chooses, lkca
    measures the load now: the machine's busy ticks in /proc/stat over ``sample_s`` seconds, less
    this process's own (:func:`lkca.autotune.timing.cpu_ticks`), as cores other processes
    hold; it uses as many threads as that leaves cores free, and no more than the CPUs the
    process may use (:func:`usable_cpus`: affinity, cgroup quota); at least 1, at most torch's
    count. Where the platform tells neither (no /proc, no affinity, no quota): torch's choice.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ or threads <= 1:
        return threads, None
    allowed, limit = cpus()
    before = ticks()
    wait(sample_s)
    others = foreign_load(before, ticks())  # share of all the machine's cores
    cores = os.cpu_count() or threads
    reasons, free = [], threads
    if others is not None:
        held = others * cores
        free = max(1, min(free, round(cores - held)))
        reasons.append(f"other processes used {held:.1f} of the {cores} CPUs over the last "
                       f"{sample_s:g} s (/proc/stat), leaving about {max(1, round(cores - held))} "
                       "free")
    if allowed is not None and allowed < free:
        free = allowed
        reasons.append(f"{limit} allows {plural(allowed, 'CPU')}")
    if free >= threads:
        return threads, None
    return free, (f"threads: {plural(free, 'intra-op thread')} instead of torch's {threads}: "
                  f"{'; '.join(reasons)}; more threads than free cores contend; set "
                  "OMP_NUM_THREADS to choose")
