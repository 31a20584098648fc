"""Fit the constants of ``lkca.layers.lkca_cost`` from timings of conv, toeplitz and fft on many shapes.

    PYTHONPATH=src python benchmarks/calibrate_lkca_cost.py                  # CPU, ~10 minutes
    PYTHONPATH=src python benchmarks/calibrate_lkca_cost.py --device cuda    # on a GPU machine
    PYTHONPATH=src python benchmarks/calibrate_lkca_cost.py --refit          # refit saved timings

Every shape runs a whole ``LKCA`` module (no projections) with each implementation, in training
(forward + backward) and inference (forward under no_grad), timed round-robin by
``lkca_mixer.measure`` (median, samples under foreign CPU load retaken). Conv training with more
than ``--max-conv-macs`` padded multiply-adds is skipped (seconds to minutes; never the fastest).
For each (mode, implementation) the constants c >= 0 of ``time = sum_i c_i * term_i``
(``lkca_cost.work_terms``) are fitted by non-negative least squares on relative error. The script
prints the ``COSTS`` entries to paste into ``src/lkca/layers/lkca_cost.py`` and, per shape, the
measured best, the model's choice and its measured slowdown; it writes the raw timings to
``benchmarks/results/lkca_cost_calibration_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from lkca_mixer import machine, measure
from scipy.optimize import nnls

from lkca import LKCA
from lkca.layers.lkca import global_kernel_size
from lkca.layers.lkca_cost import COSTS, work_terms

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ("conv", "toeplitz", "fft")
GRIDS = [(4, 4), (8, 8), (14, 14), (16, 16), (24, 24), (32, 32), (48, 48), (64, 64),
         (8, 16), (16, 32), (24, 40)]


def shapes(quick: bool = False) -> list[dict]:
    """(batch, dim, heads, grid, kernel): ~8k tokens per batch and batch 1, global and odd kernels."""
    out = []
    for grid in GRIDS if not quick else GRIDS[2::2]:
        N = grid[0] * grid[1]
        glob = global_kernel_size(grid)
        kernels = [glob] + [(k, k) for k in ((3, 7, 15) if not quick else (7,)) if k < min(glob)]
        big = (384, 6) if N >= 1024 else (192, 12)
        for (dim, heads), batch in ((big, max(1, 8192 // N)), ((96, 3) if N < 1024 else big, 1)):
            out += [dict(batch=batch, dim=dim, heads=heads, grid=grid, kernel=k) for k in kernels]
    return out


def time_shape(s: dict, device: torch.device, dtype: torch.dtype, repeats: int, max_conv_macs: float):
    torch.manual_seed(0)
    B, C, grid = s["batch"], s["dim"], s["grid"]
    N = grid[0] * grid[1]
    module = LKCA(C, s["heads"], grid, kernel_size=s["kernel"]).to(device)
    x = torch.randn(B, N, C, device=device, requires_grad=True)
    grad = torch.randn(B, N, C, device=device)
    amp = dtype != torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def case(impl: str, training: bool):
        def run() -> None:
            module.impl = impl
            with torch.autocast(device.type, dtype=dtype, enabled=amp), torch.set_grad_enabled(training):
                out = module(x)  # as in a model: fp32 from LayerNorm, autocast inside
            if training:
                out.backward(grad)

        return run

    cases = {}
    for impl in IMPLS:
        for training in (True, False):
            if impl == "conv" and training and B * C * N * s["kernel"][0] * s["kernel"][1] > max_conv_macs:
                continue
            cases[f"{impl}/{'train' if training else 'infer'}"] = case(impl, training)
    timed = measure(cases, repeats, sync)
    return {name: t["s"] for name, t in timed.items()}, [n for n, t in timed.items() if t["noisy"]]


def fit(records: list[dict], kind: str, training: bool) -> dict[str, tuple[float, ...]]:
    mode = "train" if training else "infer"
    costs = {}
    for impl in IMPLS:
        rows = [r for r in records if f"{impl}/{mode}" in r["s"]]
        X = np.array([work_terms(r["batch"], r["dim"], r["heads"], r["grid"], r["kernel"])[impl]
                      for r in rows], dtype=np.float64)
        t = np.array([r["s"][f"{impl}/{mode}"] for r in rows])
        scale = X.max(axis=0)
        c, _ = nnls(X / scale / t[:, None], np.ones(len(t)))  # relative error, scaled columns
        costs[impl] = tuple(float(f"{v:.3g}") for v in c / scale)
    return costs


def predict_with(costs, r, impl) -> float:
    terms = work_terms(r["batch"], r["dim"], r["heads"], r["grid"], r["kernel"])[impl]
    return sum(c * t for c, t in zip(costs[impl], terms))


def report(records: list[dict], all_costs: dict, kind: str) -> float:
    worst = 1.0
    for training in (True, False):
        mode = "train" if training else "infer"
        costs = all_costs[(kind, training)]
        print(f"\n{mode}: model error (predicted / measured) per impl")
        for impl in IMPLS:
            errs = [predict_with(costs, r, impl) / r["s"][f"{impl}/{mode}"] for r in records
                    if f"{impl}/{mode}" in r["s"]]
            print(f"  {impl:>8}: median {np.median(errs):.2f}, range {min(errs):.2f} .. {max(errs):.2f}")
        print(f"{mode}: shapes where the model's choice is not the measured best")
        print(f"  {'B':>4} {'C':>4} {'h':>3} {'grid':>7} {'kernel':>7}  {'best':>8} {'choice':>8} slowdown"
              "  (conv, toeplitz, fft / best)")
        for r in records:
            t = {i: r["s"].get(f"{i}/{mode}", math.inf) for i in IMPLS}
            pred = {i: predict_with(costs, r, i) for i in IMPLS}
            best, choice = min(t, key=t.get), min(pred, key=pred.get)
            slow = t[choice] / t[best]
            worst = max(worst, slow)
            if choice != best:
                g, k = "x".join(map(str, r["grid"])), "x".join(map(str, r["kernel"]))
                rel = ", ".join(f"{t[i] / t[best]:.2f}" for i in IMPLS)
                print(f"  {r['batch']:>4} {r['dim']:>4} {r['heads']:>3} {g:>7} {k:>7}  {best:>8} "
                      f"{choice:>8} {slow:>7.2f}   ({rel})")
    print(f"\nworst slowdown of the model's choice over the measured best: {worst:.2f}")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer shapes")
    parser.add_argument("--max-conv-macs", type=float, default=1e9)
    parser.add_argument("--refit", action="store_true", help="refit the timings saved in --out")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("calibrate_lkca_cost: CUDA is not available; use --device cpu", file=sys.stderr)
        return 2
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    suffix = "" if args.dtype == "fp32" else f"_{args.dtype}"
    out = args.out or ROOT / "benchmarks" / "results" / f"lkca_cost_calibration_{device.type}{suffix}.json"
    if args.refit:
        records = json.loads(out.read_text())["records"]
    else:
        records = []
        todo = shapes(args.quick)
        for i, s in enumerate(todo):
            times, noisy = time_shape(s, device, dtype, args.repeats, args.max_conv_macs)
            s = {**s, "s": times, "noisy": noisy}
            records.append(s)
            ms = "  ".join(f"{k} {v * 1e3:.2f}" for k, v in s["s"].items())
            ms += f"  (noisy: {', '.join(noisy)})" if noisy else ""
            print(f"[{i + 1}/{len(todo)}] B={s['batch']} C={s['dim']} h={s['heads']} grid={s['grid']} "
                  f"kernel={s['kernel']}: {ms} ms", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine(device), "dtype": args.dtype,
                                   "records": records}, indent=1) + "\n")
        print(f"wrote {out}")
    costs = {(device.type, t): fit(records, device.type, t) for t in (True, False)}
    print("\nCOSTS entries for src/lkca/layers/lkca_cost.py:")
    for key, value in costs.items():
        print(f"    {key!r}: {{")
        for impl, c in value.items():
            print(f"        {impl!r}: ({', '.join(f'{v:.3g}' for v in c)}),")
        print("    },")
    report(records, costs, device.type)
    if device.type in {k for k, _ in COSTS}:
        print("\nfor comparison, the constants now in lkca_cost.py on these timings:")
        report(records, {k: COSTS[k] for k in costs}, device.type)
    return 0


if __name__ == "__main__":
    sys.exit(main())
