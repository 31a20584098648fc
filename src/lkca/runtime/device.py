"""The training device and its precision."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

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


def cpu_threads(device: torch.device) -> tuple[int, str | None]:
    """(intra-op threads to train with, the log line saying why, or None when unchanged).

    torch uses one thread per core; for models as small as lkca's on a CPU that other processes
    already load, threads beyond the free cores contend and a step can become many times slower
    (docs/benchmarks.md, "Threads": the digits demo 13x slower with 2 threads than with 1 on a
    loaded 2-core machine). So on CPU, unless ``OMP_NUM_THREADS`` chooses, lkca uses as many
    threads as the 1-minute load average leaves cores free (at least 1, at most torch's count).
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ or threads <= 1:
        return threads, None
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: torch's choice
        return threads, None
    cores = os.cpu_count() or threads
    free = max(1, min(threads, round(cores - load)))
    if free >= threads:
        return threads, None
    return free, (f"threads: {plural(free, 'intra-op thread')} instead of torch's {threads}: the "
                  f"load average ({load:.1f}) leaves about {free} of the {cores} CPUs free, and "
                  "more threads than free cores contend; set OMP_NUM_THREADS to choose")
