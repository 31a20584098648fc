"""What packing runs pays: total training images/s of K concurrent small runs vs one run.

    python benchmarks/run_packing.py                        # CPU: 1 vs 2 concurrent digits runs
    python benchmarks/run_packing.py --device cuda --counts 1 2 4 \
        --config configs/cls/cifar10/vit_lkca_2p7m.yaml --data-dir DIR --epochs 1

Each case starts K ``lkca train`` processes at once with the environment the local launcher of
``lkca reproduce`` gives its children (docs/reproduce.md): on the CPU each gets cores / K threads
(OMP_NUM_THREADS), as with ``--jobs K``; on a GPU all K share GPU 0, as with
``--runs-per-gpu K``. Every run trains the same config for the same number of steps (seeds
differ). Two figures per case:

- ``train``: the sum over the K runs of their training images/s (``train_images_per_s`` of each
  ``summary.json``: training steps only, no start-up or evaluation);
- ``wall``: all images the K runs trained / the wall time from starting them to the last one
  ending (start-up, evaluation and checkpoints included: what a reproduction sees).

The cases are measured round-robin for ``--rounds`` rounds and each figure is the median, so drift
in the load of a shared machine hits all cases alike; the load average is recorded at start and
end. Writes ``benchmarks/results/run_packing_<device>.json`` with the machine description and
prints the ratios to one run (quote ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def one_case(k: int, args: argparse.Namespace, folder: Path) -> dict:
    """Start ``k`` runs at once, wait for all; their summed train and wall throughput."""
    cores = os.cpu_count() or 1
    procs, outs = [], []
    start = time.perf_counter()
    for i in range(k):
        out = folder / f"k{k}_{i}_{time.monotonic_ns()}"
        env = dict(os.environ)
        if args.device == "cpu":
            env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=str(max(1, cores // k)))
        else:
            env.update(CUDA_VISIBLE_DEVICES="0")
        cmd = [sys.executable, "-m", "lkca", "train", "--config", str(args.config), "--out", str(out),
               "--seed", str(i), "--no-progress", "--epochs", str(args.epochs), "--device",
               args.device]
        if args.data_dir:
            cmd += ["--data-dir", str(args.data_dir)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
        outs.append(out)
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"a run failed (exit {p.returncode}): {err.strip().splitlines()[-1:]}")
    wall = time.perf_counter() - start
    summaries = [json.loads((o / "summary.json").read_text()) for o in outs]
    images = sum(_images(o) for o in outs)
    return {"train": sum(s["train_images_per_s"] for s in summaries), "wall": images / wall,
            "wall_s": wall}


def _images(run: Path) -> int:
    """Training images of a finished run (steps x batch), from its config."""
    import yaml

    from lkca.reproduce.cost import run_length

    return run_length("cls", yaml.safe_load((run / "config.yaml").read_text()))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2],
                        help="concurrent runs per case (default 1 2)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs/cls/digits/default.yaml")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        help="JSON to write (default benchmarks/results/run_packing_<device>.json)")
    args = parser.parse_args()
    load_start = os.getloadavg()
    samples: dict[int, list[dict]] = {k: [] for k in args.counts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k in args.counts:
                s = one_case(k, args, Path(tmp))
                samples[k].append(s)
                print(f"round {r + 1}: {k} run(s): train {s['train']:.0f} img/s, wall "
                      f"{s['wall']:.0f} img/s ({s['wall_s']:.1f} s)", flush=True)
    base = args.counts[0]
    result: dict = {"benchmark": "run_packing: total training images/s of K concurrent runs",
                    "device": args.device,
                    "machine": machine(torch.device("cuda" if args.device == "cuda" else "cpu")),
                    "load_average_start": load_start, "load_average_end": os.getloadavg(),
                    "settings": {"config": str(args.config.relative_to(ROOT)
                                               if args.config.is_relative_to(ROOT) else args.config),
                                 "epochs": args.epochs, "rounds": args.rounds,
                                 "counts": args.counts},
                    "cases": {}}
    print(f"\n| concurrent runs | train img/s (median) | x vs {base} | wall img/s | x vs {base} |")
    print("|---|---|---|---|---|")
    for k in args.counts:
        train = statistics.median(s["train"] for s in samples[k])
        wall = statistics.median(s["wall"] for s in samples[k])
        b_train = statistics.median(s["train"] for s in samples[base])
        b_wall = statistics.median(s["wall"] for s in samples[base])
        result["cases"][str(k)] = {"train_images_per_s": train, "wall_images_per_s": wall,
                                   "train_ratio": train / b_train, "wall_ratio": wall / b_wall,
                                   "samples": samples[k]}
        print(f"| {k} | {train:.0f} | {train / b_train:.2f}x | {wall:.0f} | {wall / b_wall:.2f}x |")
    out = args.out or ROOT / "benchmarks" / "results" / f"run_packing_{args.device}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
