"""The digits demo as a new user runs it, and the pictures of docs/analysis.md made from its run.

    python benchmarks/demo.py     # a few minutes on 2 cores

Runs, from the repository root, each as its own process:

1. ``lkca train --out RUN`` (the default job; ``--run``, default ``runs/digits-lkca_digits``,
   is emptied first): its final and best test top-1, the run's wall time (``summary.json``) and the
   whole command's (start-up included);
2. ``lkca erf --checkpoint RUN --with-init --out docs/img/erf_digits_trained.png``: the ERF shares
   of the trained model and of its init;
3. ``lkca erf --model vit_lkca_500k --model vit_500k --out docs/img/erf_digits_init.png``,
   ``lkca kernels --checkpoint RUN --out docs/img/kernels_digits.png``,
   ``lkca plot RUN --out docs/img/curves_digits.png``: the other pictures of docs/analysis.md.

Writes ``benchmarks/results/demo_cpu.json``: the machine, the lkca version and commit, the models
it measured, the figures, and every command with its printed output (``outputs``). README.md and docs/ quote
these figures through ``<!--fig demo_cpu.json ...-->`` marks, checked by tests/test_docs.py: when
the demo's model or recipe changes, run this script again and the pages follow (or the test names
every figure that no longer matches).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from lkca_mixer import machine  # noqa: E402

from lkca.version import __version__  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMG = Path("docs") / "img"


def lkca(*args: str) -> tuple[str, float]:
    """Run ``python -m lkca ARGS`` in the repository root; (stdout, wall seconds)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lkca", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=3600)
    if out.returncode:
        raise SystemExit(f"lkca {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout, time.perf_counter() - start


def erf_shares(printed: str) -> dict[str, list[float]]:
    """{panel label: [share %, ...]} from ``lkca erf``'s table."""
    shares = {}
    for line in printed.splitlines():
        m = re.match(r"\s+(.+?)\s+((?:\d+\.\d%\s+)+)\(", line)
        if m:
            shares[m.group(1)] = [float(v) for v in re.findall(r"(\d+\.\d)%", m.group(2))]
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/digits-lkca_digits",
                        help="run directory of the demo, relative to the repository root")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "demo_cpu.json"))
    args = parser.parse_args()
    shutil.rmtree(ROOT / args.run, ignore_errors=True)
    outputs: dict[str, dict[str, str]] = {}  # name -> the command and what it printed

    def record(name: str, *argv: str) -> str:
        printed, wall = lkca(*argv)
        outputs[name] = {"command": "lkca " + " ".join(argv), "output": printed,
                         "wall_s": round(wall, 1)}
        return printed

    record("train", "train", "--out", args.run, "--no-progress")
    summary = json.loads((ROOT / args.run / "summary.json").read_text())
    trained = record("erf_trained", "erf", "--checkpoint", args.run, "--with-init", "--out",
                     str(IMG / "erf_digits_trained.png"))
    init = record("erf_init", "erf", "--model", "vit_lkca_500k", "--model", "vit_500k", "--out",
                  str(IMG / "erf_digits_init.png"))
    record("kernels", "kernels", "--checkpoint", args.run, "--out", str(IMG / "kernels_digits.png"))
    record("plot", "plot", args.run, "--out", str(IMG / "curves_digits.png"))
    shares = erf_shares(trained)
    labels = list(shares)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {
        "benchmark": "demo", "machine": machine(torch.device("cpu")), "lkca_version": __version__,
        "commit": commit, "models": sorted({summary["model"], "vit_lkca_500k", "vit_500k"}),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_end": list(os.getloadavg()),
        "train": {"model": summary["model"], "epochs": summary["epochs"],
                  "params": summary["params"], "top1": summary["top1"],
                  "best_top1": summary["best_top1"], "run_wall_s": summary["wall_s"],
                  "command_wall_s": outputs["train"]["wall_s"]},
        "erf_trained": {"trained": shares[labels[0]], "init": shares[labels[1]]},
        "erf_init": erf_shares(init),
        "outputs": outputs,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("train", "erf_trained")}, indent=1))
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
