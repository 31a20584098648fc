"""Pick the fastest LKCA implementation for a shape from a fixed cost model (no timing at run time).

Each implementation's time is predicted as a weighted sum of its work terms, the weights being
seconds per unit of work measured once per device type and mode (training = forward + backward,
inference = forward only):

- ``conv``:     B*C*taps (multiply-adds inside the grid: taps = in-grid (token, kernel tap) pairs,
  which is all that oneDNN computes), B*C*H*W*kh*kw (every tap, the padded weight-gradient
  convolution of the backward), B*C*H*W (memory passes), 1 (per-call overhead);
- ``toeplitz``: B*C*N^2 (the matmul), heads*N^2 (build the N x N matrices, scatter their
  gradient), B*C*N (layout copies), 1;
- ``fft``:      B*C*L*log2(L) with L = Lh*Lw the FFT sizes of ``lkca_fft`` (the transforms),
  B*C*L (complex products and memory passes), heads*L*log2(L) (the kernel's spectrum), 1.

The weights come from ``benchmarks/calibrate_lkca_cost.py``, which times the three on a grid of
shapes and fits them by non-negative least squares on relative error; run it on another machine
(e.g. a GPU) and paste its output into ``COSTS`` to recalibrate. The choice depends only on the
arguments, so it is reproducible: the same shapes always run the same code.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

# Seconds per unit of each work term above, per (device type, training). Measured on the CPU of
# benchmarks/results/lkca_cost_calibration_cpu.json (2-core AMD EPYC, torch 2.13, 2 threads).
COSTS: dict[tuple[str, bool], dict[str, tuple[float, ...]]] = {
    ("cpu", True): {
        "conv": (2e-10, 3e-10, 1e-9, 1e-4),
        "toeplitz": (1e-11, 4e-9, 3e-9, 1e-4),
        "fft": (1e-10, 3e-9, 1e-9, 2e-4),
    },
    ("cpu", False): {
        "conv": (2e-11, 0.0, 5e-10, 3e-5),
        "toeplitz": (4e-12, 1.5e-9, 1e-9, 3e-5),
        "fft": (5e-11, 1e-9, 5e-10, 1e-4),
    },
}
# CUDA: NOT measured (no GPU when this was written). Rough H100-class figures: fp32 matmul
# ~40 TFLOP/s, half precision ~8x faster on tensor cores; FFTs and copies bound by ~2 TB/s of
# memory; depthwise convolution far from peak; ~10 us of kernel launches per call. This makes
# toeplitz the choice up to N ~ 1024 (2-D grids up to 32x32) and fft above, conv only for small
# kernels on large grids. Recalibrate with benchmarks/calibrate_lkca_cost.py --device cuda.
COSTS[("cuda", True)] = {
    "conv": (1e-12, 1e-12, 3e-11, 3e-5),
    "toeplitz": (7.5e-14, 1e-11, 3e-11, 3e-5),
    "fft": (3e-13, 1e-11, 1e-11, 6e-5),
}
COSTS[("cuda", False)] = {impl: tuple(c / 3 for c in w) for impl, w in COSTS[("cuda", True)].items()}
HALF_MATMUL_SPEEDUP = {"cpu": 1.0, "cuda": 8.0}  # bf16 / fp16 toeplitz matmul vs fp32


def _pairs(n: int, k: int) -> int:
    """In-grid (token, tap) pairs along one axis of length n for an odd kernel of size k."""
    p = min(k // 2, n - 1)
    return n * (2 * p + 1) - p * (p + 1)


def work_terms(
    batch: int, channels: int, heads: int, grid_size: tuple[int, int], kernel_size: tuple[int, int]
) -> dict[str, tuple[float, ...]]:
    """The work terms of each implementation (see the module docstring), in its cost's order."""
    from lkca.layers.lkca import _fft_size  # lkca.py imports this module

    (H, W), (kh, kw) = grid_size, kernel_size
    kh, kw = min(kh, 2 * H - 1), min(kw, 2 * W - 1)  # lkca_apply crops to the global kernel
    N, BC = H * W, batch * channels
    L = _fft_size(H + kh // 2) * _fft_size(W + kw // 2)
    return {
        "conv": (BC * _pairs(H, kh) * _pairs(W, kw), BC * N * kh * kw, BC * N, 1),
        "toeplitz": (BC * N * N, heads * N * N, BC * N, 1),
        "fft": (BC * L * math.log2(L), BC * L, heads * L * math.log2(L), 1),
    }


def predict(
    batch: int,
    channels: int,
    heads: int,
    grid_size: tuple[int, int],
    kernel_size: tuple[int, int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    training: bool = True,
) -> dict[str, float]:
    """Predicted seconds of each implementation (on the calibration machine for that device)."""
    kind = torch.device(device).type
    costs = COSTS.get((kind, training), COSTS[("cpu", training)])
    terms = work_terms(batch, channels, heads, (grid_size[0], grid_size[1]),
                       (kernel_size[0], kernel_size[1]))
    times = {impl: sum(c * t for c, t in zip(costs[impl], terms[impl])) for impl in terms}
    if dtype in (torch.float16, torch.bfloat16):  # fft always computes in fp32
        speedup = HALF_MATMUL_SPEEDUP.get(kind, 1.0)
        times["toeplitz"] /= speedup
        times["conv"] /= max(1.0, speedup / 4)
    return times


def choose_impl(
    batch: int,
    channels: int,
    heads: int,
    grid_size: tuple[int, int],
    kernel_size: tuple[int, int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    training: bool = True,
) -> str:
    """"conv", "toeplitz" or "fft": the implementation with the lowest predicted time."""
    kind = torch.device(device).type
    if dtype == torch.float32 and torch.is_autocast_enabled(kind):  # matmul / conv run in half
        dtype = torch.get_autocast_dtype(kind)
    shape = (int(batch), int(channels), int(heads), tuple(grid_size), tuple(kernel_size))
    return _choose(*shape, dtype, kind, bool(training))


@lru_cache(maxsize=4096)
def _choose(batch, channels, heads, grid_size, kernel_size, dtype, kind, training) -> str:
    times = predict(batch, channels, heads, grid_size, kernel_size, dtype, kind, training)
    return min(times, key=times.__getitem__)
