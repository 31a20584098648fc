"""The ``lkca reproduce`` command (docs/reproduce.md).

Imports only argparse at module level (the CLI loads it for every command).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` sub-command."""
    p = sub.add_parser("reproduce", help="train every run of a paper table (or your own) and "
                                         "write it beside the paper's")
    p.set_defaults(func=_cmd_reproduce)
    p.add_argument("--table", required=True, metavar="N|FILE",
                   help="paper table 1-7, or a YAML file describing a table of your own")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="folder of the run directories (<dataset>/<config>/seed<K>) and tables "
                        "(default runs/, where lkca tables looks)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the data sets as distributed")
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="only these data sets of the table (e.g. cifar10 svhn for Table 4)")
    p.add_argument("--seeds", type=int, default=1, metavar="K",
                   help="seeds 0..K-1 per config (default 1: the config's seed 0)")
    p.add_argument("--configs", metavar="DIR", help="the configs folder (default: the repository's "
                                                    "configs/)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: the runs on this machine's GPUs (or CPU); slurm: a Slurm job array")
    p.add_argument("--seg-reading", default="one-run", metavar="one-run|per-row",
                   help="Tables 6-7: one 20k run per backbone and head, its evaluations the rows "
                        "(one-run, the default), or a run of its own per row (per-row); "
                        "docs/segmentation.md section 4")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost, run nothing")
    p.add_argument("--images-per-s", type=float, metavar="X",
                   help="throughput of one device for the projection (default: measured from "
                        "finished runs, else the stated figure of docs/reproduce.md)")
    local = p.add_argument_group("local launcher")
    local.add_argument("--runs-per-gpu", type=int, metavar="N",
                       help="runs sharing each visible GPU (default: the memory rule of "
                            "docs/reproduce.md, at most 4)")
    local.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="concurrent runs without a GPU (default 1)")
    slurm = p.add_argument_group("slurm launcher (pip install 'lkca[cluster]')")
    slurm.add_argument("--time", type=int, default=24 * 60, metavar="MIN",
                       help="time limit of each task in minutes (default 1440); a run that needs "
                            "longer is requeued and resumed")
    slurm.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    slurm.add_argument("--account", help="Slurm account to charge (default: yours)")
    slurm.add_argument("--gpus-per-task", type=int, default=1, metavar="N",
                       help="GPUs of each task (default 1)")
    slurm.add_argument("--cpus-per-task", type=int, metavar="N",
                       help="CPU cores of each task (default: Slurm's)")
    slurm.add_argument("--mem-gb", type=float, metavar="GB",
                       help="memory of each task in GB (default: Slurm's)")
    slurm.add_argument("--array-parallelism", type=int, metavar="N",
                       help="at most N tasks of the array at once")


MAX_SEEDS = 100  # runs per config: a paper table's row is usually 1-5 seeds


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from lkca.errors import UserError
    from lkca.reproduce.plan import check_configs_dir, default_configs_dir
    from lkca.reproduce.reproduction import launch, plan, plan_text

    for name in ("seeds", "jobs", "runs_per_gpu", "time", "gpus_per_task"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "gpus_per_task" else 1):
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.seeds > MAX_SEEDS:
        raise UserError(f"--seeds must be at most {MAX_SEEDS} (runs per config), got {args.seeds}")
    if args.images_per_s is not None and not (math.isfinite(args.images_per_s)
                                              and args.images_per_s > 0):
        raise UserError(f"--images-per-s must be a positive number, got {args.images_per_s}")
    runs_dir = Path(args.runs)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs {runs_dir} is a file; pass a folder for the run directories")
    configs = check_configs_dir(Path(args.configs) if args.configs else default_configs_dir())
    rep = plan(args.table, runs_dir, configs, args.seeds, args.datasets, args.seg_reading)
    print(plan_text(rep, args.images_per_s))
    if args.dry_run:
        return
    if args.launcher == "local":
        launch(rep, runs_dir, args.data_dir, lambda runs: _run_local(runs, args))
    else:
        launch(rep, runs_dir, args.data_dir, lambda runs: _run_slurm(runs, args, runs_dir))


def _run_local(runs, args: argparse.Namespace):
    from lkca.reproduce.local import run_local, slots, visible_gpus
    from lkca.reproduce.packing import default_runs_per_gpu, gpu_memory_bytes

    gpus = visible_gpus()
    per_gpu = args.runs_per_gpu
    if gpus and per_gpu is None:
        per_gpu, largest = default_runs_per_gpu(runs, gpu_memory_bytes())
        print(f"{per_gpu} runs per GPU (largest run ~{largest / 2**30:.1f} GiB of "
              f"{gpu_memory_bytes() / 2**30:.0f} GiB; --runs-per-gpu to choose)")
    devices = slots(gpus, per_gpu or 1, args.jobs)
    print(f"launching on {len(devices)} slot(s): {', '.join(sorted(set(devices)))}")
    return run_local(runs, args.data_dir, devices)


def _run_slurm(runs, args: argparse.Namespace, runs_dir: Path):
    from lkca.reproduce import slurm
    from lkca.reproduce.plan import run_state

    todo = [r for r in runs if run_state(r).kind in ("new", "resume")]
    jobs = slurm.submit(todo, args.data_dir, runs_dir / ".slurm", time_min=args.time,
                        partition=args.partition, account=args.account,
                        gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                        mem_gb=args.mem_gb, array_parallelism=args.array_parallelism)
    print(f"submitted {len(jobs)} task(s)" + (f" as job array {jobs[0].job_id.split('_')[0]}"
                                               if jobs else "") + "; waiting for them")
    outcome = slurm.wait(jobs, todo)
    outcome.skipped += [r for r in runs if r not in todo and run_state(r).kind == "finished"]
    outcome.failed += [(r, run_state(r).detail) for r in runs if run_state(r).kind == "conflict"]
    return outcome
