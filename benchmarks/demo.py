"""The digits demo as a new user runs it, and the pictures of docs/analysis.md made from its run.

    python benchmarks/demo.py                # a few minutes on 2 cores; writes into a new folder
    python benchmarks/demo.py --out DIR      # into DIR (new or empty)
    python benchmarks/demo.py --record       # also update the repository's figures and pictures

Everything is made inside its own folder OUT (``--out``, new or empty; default a new temporary
folder, named at the end), and nothing outside it is touched: no run under the repository's or
the current folder's ``runs/`` is deleted or written. Runs, with OUT as the current folder, each
as its own process:

1. ``lkca train --out runs/digits-lkca_digits`` (the default job): its final and best test
   top-1, the run's wall time (``summary.json``) and the whole command's (start-up included);
2. ``lkca erf --checkpoint runs/digits-lkca_digits --with-init --out
   docs/img/erf_digits_trained.png``: the ERF shares of the trained model and of its init;
3. ``lkca erf --model vit_lkca_500k --model vit_500k --out docs/img/erf_digits_init.png``,
   ``lkca kernels --checkpoint RUN --out docs/img/kernels_digits.png``,
   ``lkca plot RUN --out docs/img/curves_digits.png``: the other pictures of docs/analysis.md.

Writes ``OUT/demo_cpu.json``: the machine, the lkca version and commit, the models it measured,
the figures, and every command with its printed output (``outputs``; the paths are OUT's, the
same as the repository's, so the printed output is what docs/analysis.md quotes). ``--record``
then copies it to ``benchmarks/results/demo_cpu.json`` and the pictures to ``docs/img/``: README.md
and docs/ quote these figures through ``<!--fig demo_cpu.json ...-->`` marks, checked by
tests/test_docs.py, so when the demo's model or recipe changes, run ``--record`` on a quiet
machine and the pages follow (or the test names every figure that no longer matches).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from lkca_mixer import machine  # noqa: E402

from lkca.errors import UserError  # noqa: E402
from lkca.version import __version__  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = "runs/digits-lkca_digits"  # inside OUT, as `lkca train` names the default job's run
IMG = Path("docs") / "img"  # inside OUT; --record copies its pictures to the repository's
PICTURES = ("erf_digits_trained.png", "erf_digits_init.png", "kernels_digits.png",
            "curves_digits.png")
RESULT = "demo_cpu.json"
TRAIN_ARGS: tuple[str, ...] = ("--no-progress",)  # the default job, as README runs it


def lkca(*args: str, cwd: Path) -> tuple[str, float]:
    """Run ``python -m lkca ARGS`` in ``cwd``; (stdout, wall seconds)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lkca", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=3600)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"lkca {' '.join(args)} failed (exit {out.returncode}): {last}")
    return out.stdout, time.perf_counter() - start


def own_folder(out: str | None) -> Path:
    """The demo's folder: ``out`` when it is new or empty (created), else a UserError; without
    ``out``, a new temporary folder."""
    if out is None:
        return Path(tempfile.mkdtemp(prefix="lkca-demo-"))
    folder = Path(out).expanduser().absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"--out {out} is not an empty folder; the demo writes only into a folder "
                        "of its own: pass a new or empty one")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def erf_shares(printed: str) -> dict[str, list[float]]:
    """{panel label: [share %, ...]} from ``lkca erf``'s table."""
    shares = {}
    for line in printed.splitlines():
        m = re.match(r"\s+(.+?)\s+((?:\d+\.\d%\s+)+)\(", line)
        if m:
            shares[m.group(1)] = [float(v) for v in re.findall(r"(\d+\.\d)%", m.group(2))]
    return shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="the demo's own folder, new or empty (default: a new "
                                      "temporary folder)")
    parser.add_argument("--record", action="store_true",
                        help=f"copy {RESULT} to benchmarks/results/ and the pictures to docs/img/ "
                             "of the repository")
    args = parser.parse_args(argv)
    out = own_folder(args.out)
    outputs: dict[str, dict[str, str]] = {}  # name -> the command and what it printed

    def record(name: str, *argv: str) -> str:
        printed, wall = lkca(*argv, cwd=out)
        outputs[name] = {"command": "lkca " + " ".join(argv), "output": printed,
                         "wall_s": round(wall, 1)}
        return printed

    record("train", "train", "--out", RUN, *TRAIN_ARGS)
    summary = json.loads((out / RUN / "summary.json").read_text())
    trained = record("erf_trained", "erf", "--checkpoint", RUN, "--with-init", "--out",
                     str(IMG / PICTURES[0]))
    init = record("erf_init", "erf", "--model", "vit_lkca_500k", "--model", "vit_500k", "--out",
                  str(IMG / PICTURES[1]))
    record("kernels", "kernels", "--checkpoint", RUN, "--out", str(IMG / PICTURES[2]))
    record("plot", "plot", RUN, "--out", str(IMG / PICTURES[3]))
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
    (out / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("train", "erf_trained")}, indent=1))
    if args.record:
        shutil.copyfile(out / RESULT, ROOT / "benchmarks" / "results" / RESULT)
        for picture in PICTURES:
            shutil.copyfile(out / IMG / picture, ROOT / IMG / picture)
        print(f"recorded {RESULT} in {ROOT / 'benchmarks' / 'results'} and the pictures in "
              f"{ROOT / IMG}")
    print(f"the demo's run, pictures and {RESULT} are in {out}")
    return 0

if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
