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
  B*C*L (complex products and memory passes), max(0, B*C*L - FFT_SPILL) (the spectra no longer
  fit in cache: each further element costs several times more), 1.

The weights come from ``benchmarks/calibrate_lkca_cost.py``, which times the three on a grid of
shapes and fits them by non-negative least squares on relative error; run it on another machine
(e.g. a GPU) and paste its output into ``COSTS`` to recalibrate. The CPU toeplitz and fft weights
were refit the same way on the 23 shapes of ``benchmarks/results/lkca_cost_fit_cpu.json`` (the
mixer benchmark's rows, the segmentation and digits shapes, 4x4 to 64x64 grids, global and 7x7
kernels; conv where it is not too slow to time): the choice is the fastest on every
global-kernel training shape and within 1.6x of the fastest on every shape
(tests/layers/test_lkca_cost_fit.py). The choice depends only on the arguments, so it is
reproducible: the same shapes always run the same code.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

# Seconds per unit of each work term above, per (device type, training). Measured on the CPU of
# benchmarks/results/lkca_cost_calibration_cpu.json (2-core AMD EPYC, torch 2.13, 2 threads).
COSTS: dict[tuple[str, bool], dict[str, tuple[float, ...]]] = {
    ("cpu", True): {
        "conv": (1.78e-11, 1.95e-10, 0.0, 1.17e-3),
        "toeplitz": (3.6e-11, 2.06e-9, 2.54e-9, 2.63e-4),
        "fft": (0.0, 8.47e-9, 2.68e-8, 4.31e-4),
    },
    ("cpu", False): {
        "conv": (1.3e-11, 1.15e-12, 0.0, 2.13e-4),
        "toeplitz": (1.31e-11, 6.66e-10, 6.77e-10, 4.18e-5),
        "fft": (0.0, 2.9e-9, 9.63e-9, 1.6e-4),
    },
}
FFT_SPILL = 6e6  # spectrum elements (complex64: ~48 MB) past which the CPU FFT slows (fit above)
# Depthwise convolution leaves oneDNN's fast path for large kernels (47x47 at batch 1: 48 ms
# against 1 ms for fft), which no linear term captures: on CPU, conv is a candidate only up to
# this kernel side.
CPU_CONV_MAX_KERNEL = 15
# CUDA: NOT measured (no GPU when this was written). Rough H100-class figures: fp32 matmul
# ~40 TFLOP/s, half precision ~8x faster on tensor cores; FFTs and copies bound by ~2 TB/s of
# memory; depthwise convolution far from peak; ~10 us of kernel launches per call. This makes
# toeplitz the choice up to N ~ 1024 (2-D grids up to 32x32) and fft above, conv only for small
# kernels on large grids. Recalibrate with benchmarks/calibrate_lkca_cost.py --device cuda.
COSTS[("cuda", True)] = {
    "conv": (1e-12, 1e-12, 3e-11, 3e-5),
    "toeplitz": (7.5e-14, 1e-11, 3e-11, 3e-5),
    "fft": (3e-13, 1e-11, 0.0, 6e-5),  # no cache-spill term measured on GPU
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
        "fft": (BC * L * math.log2(L), BC * L, max(0.0, BC * L - FFT_SPILL), 1),
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
    if kind == "cpu" and max(kernel_size) > CPU_CONV_MAX_KERNEL:
        times["conv"] = math.inf
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
