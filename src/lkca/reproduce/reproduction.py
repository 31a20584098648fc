"""A whole reproduction: plan the runs of a table, print the plan and its cost, launch the runs
that are not finished, and write the table beside the paper's (docs/reproduce.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lkca.analysis.paper_report import render, tables_csv
from lkca.analysis.paper_results import seg_reading
from lkca.analysis.paper_tables import TABLES, ClsTable, SegTable
from lkca.analysis.run_index import read_run
from lkca.atomic_files import write_atomic
from lkca.errors import UserError
from lkca.reproduce import child
from lkca.reproduce.cost import REFERENCE_MODELS, Speed, hours, measured_speed, stated_speed
from lkca.reproduce.local import Outcome
from lkca.reproduce.plan import (
    PlannedRun,
    TableConfig,
    paper_table_configs,
    plan_runs,
    run_state,
)
from lkca.runtime.run_lock import DirectoryLock


@dataclass(frozen=True)
class Reproduction:
    """A table (the paper's or one of your own), the config of each row and the planned runs."""

    table: ClsTable | SegTable
    configs: list[TableConfig]
    runs: list[PlannedRun]
    stem: str  # output files: RUNS/<stem>.md and RUNS/<stem>.csv

    @property
    def task(self) -> str:
        """"cls" or "seg"."""
        return "cls" if isinstance(self.table, ClsTable) else "seg"


def plan(table: str, runs_dir: Path, configs_dir: Path, seeds: int = 1,
         datasets: list[str] | None = None, seg_runs: str = "one-run") -> Reproduction:
    """Plan ``table`` ("1"-"7", or a YAML file describing a table of your own); the paper's
    segmentation tables read the ``seg_runs`` way (:func:`lkca.analysis.paper_results.seg_reading`:
    "one-run", one run per backbone and head; "per-row", one run per row)."""
    if table.isdigit():
        number = int(table)
        if number not in TABLES:
            raise UserError(f"--table {table}: the paper has Tables 1-7; pass one of them or a "
                            "YAML file describing a table of your own")
        paper_table = TABLES[number]
        if isinstance(paper_table, SegTable):
            paper_table = seg_reading(paper_table, seg_runs)
        if datasets:
            known = paper_table.datasets if isinstance(paper_table, ClsTable) else ("ade20k",)
            unknown = [d for d in datasets if d not in known]
            if unknown:
                raise UserError(f"--datasets {unknown[0]} is not a data set of Table {number}; "
                                f"choose from {', '.join(known)}")
        configs = paper_table_configs(paper_table, configs_dir, datasets)
        stem = f"table{number}"
    else:
        from lkca.reproduce.table_spec import load_table_spec

        if datasets:
            raise UserError("--datasets applies to the paper's tables; a table of your own "
                            "lists its configs itself")
        paper_table, configs = load_table_spec(table)
        stem = Path(table).stem
    return Reproduction(paper_table, configs, plan_runs(configs, seeds, runs_dir), stem)


def stated_speeds(runs: list[PlannedRun]) -> dict[Path, Speed]:
    """The stated throughput of each config's own model (:func:`lkca.reproduce.cost.stated_speed`:
    the reference row's figure scaled by MACs per image)."""
    from lkca.reproduce.run_model import forward_macs

    out = {}
    for run in runs:
        if run.config not in out:
            reference = forward_macs(run.task, REFERENCE_MODELS[run.task])
            out[run.config] = stated_speed(run.task, forward_macs(run.task, run.resolved),
                                           reference)
    return out


def speeds(rep: Reproduction, images_per_s: float | None) -> dict[Path, Speed]:
    """The throughput used for each config: measured from its finished runs, else the given
    ``images_per_s`` (the same for every config), else the stated figure of
    :mod:`lkca.reproduce.cost` projected to the config's model (:func:`stated_speeds`)."""
    fallback = ({r.config: Speed(images_per_s, "--images-per-s") for r in rep.runs}
                if images_per_s else stated_speeds(rep.runs))
    by_config: dict[Path, list] = {}
    for run in rep.runs:
        found = read_run(run.out)
        if found is not None and found.finished and found.summary is not None:
            starts = [r for r in child.read_log(run.out) if r.get("event") == "start"]
            shared = int(starts[-1].get("shared", 1)) if starts else 1
            by_config.setdefault(run.config, []).append((run.images, found.summary, shared))
    return {run.config: measured_speed(by_config.get(run.config, [])) or fallback[run.config]
            for run in rep.runs}


def plan_text(rep: Reproduction, images_per_s: float | None = None) -> str:
    """The plan as Markdown: per config its rows, seeds done, steps and images per run, the
    throughput used and the projected device-hours left; then the totals."""
    title = (f"Table {rep.table.number}: {rep.table.title}" if rep.table.number
             else rep.table.title)
    speed = speeds(rep, images_per_s)
    states = {run: run_state(run) for run in rep.runs}
    unit = "iters" if rep.task == "seg" else "steps"
    lines = [f"## Plan: {title}", "",
             f"| rows | config | seeds finished | {unit} / run | images / run | images/s per "
             "device | device-hours left |", "|---|---|---|---|---|---|---|"]
    by_config: dict[Path, list[PlannedRun]] = {}
    for run in rep.runs:
        by_config.setdefault(run.config, []).append(run)
    total_left = total_hours = 0.0
    for config, runs in by_config.items():
        left = sum(r.images * (1 - _fraction(states[r])) for r in runs)
        h = hours(left, speed[config])
        total_left += left
        total_hours += h
        done = sum(states[r].kind == "finished" for r in runs)
        lines.append(f"| {', '.join(runs[0].rows)} | `{_short(config)}` | {done}/{len(runs)} | "
                     f"{runs[0].steps:,} | {runs[0].images:,} | "
                     f"{speed[config].images_per_s:,.1f} ({speed[config].source}) | {h:.2f} |")
    missing = [f"{tc.row} ({tc.dataset})" for tc in rep.configs if tc.config is None]
    counts = {k: sum(s.kind == k for s in states.values())
              for k in ("finished", "resume", "new", "conflict")}
    lines += ["", f"{len(rep.runs)} runs: {counts['finished']} finished, {counts['resume']} to "
              f"resume, {counts['new']} to start" + (f", {counts['conflict']} in conflict"
                                                     if counts["conflict"] else "")
              + f"; {total_left / 1e6:,.1f}M training images left, projected {total_hours:,.1f} "
              "device-hours at the speeds above (a projection; \"stated\" is not measured, "
              "docs/reproduce.md)."]
    if missing:
        lines.append(f"Rows without a config (not run): {', '.join(missing)}.")
    return "\n".join(lines) + "\n"


def _fraction(state) -> float:
    if state.kind == "finished":
        return 1.0
    return state.done / state.total if state.total else 0.0


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_table(rep: Reproduction, runs_dir: Path) -> tuple[Path, Path, str]:
    """Write ``RUNS/<stem>.md`` and ``RUNS/<stem>.csv`` (ours beside the paper's, from every run
    under ``runs_dir``); returns their paths and the Markdown."""
    md = render([rep.table], runs_dir)
    md_path, csv_path = runs_dir / f"{rep.stem}.md", runs_dir / f"{rep.stem}.csv"
    write_atomic(md_path, md.encode(), fix="choose another --runs")
    write_atomic(csv_path, tables_csv([rep.table], runs_dir).encode(), fix="choose another --runs")
    return md_path, csv_path, md


def launch(rep: Reproduction, runs_dir: Path, data_dir: str | None,
           run_all: Callable[[list[PlannedRun]], Outcome],
           say: Callable[[str], None] = print) -> Outcome:
    """Check the data of every run still to train (:func:`check_data`: one line, nothing
    written, no run started), hold the runs folder's lock (one launcher per folder), run the
    plan's runs with ``run_all``, write the table, and report the failed runs."""
    _check_data_dir(rep, data_dir)
    check_data(rep, data_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    with DirectoryLock(runs_dir, child.LAUNCH_LOCK):
        outcome = run_all(rep.runs)
        md_path, csv_path, md = write_table(rep, runs_dir)
    say("")
    say(md.rstrip())
    say(f"\nwrote {md_path} and {csv_path}: {len(outcome.trained)} runs trained now, "
        f"{len(outcome.skipped)} already finished, {len(outcome.failed)} failed")
    if outcome.failed:
        for run, why in outcome.failed:
            say(f"  failed {run.name}: {why}")
        raise UserError(f"{len(outcome.failed)} of {len(rep.runs)} runs failed (listed above, logs "
                        "in their run directories); fix the cause and run the same command again")
    return outcome


def _check_data_dir(rep: Reproduction, data_dir: str | None) -> None:
    needs = sorted({r.dataset for r in rep.runs if r.dataset != "digits"})
    if needs and data_dir is None:
        raise UserError(f"{', '.join(needs)} need --data-dir DIR, the folder holding the data sets "
                        "as distributed (docs/datasets.md)")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise UserError(f"--data-dir {data_dir} is not a folder; pass the folder holding the data "
                        "sets (docs/datasets.md)")


def check_data(rep: Reproduction, data_dir: str | None) -> None:
    """Load, before any run starts, each data set that a run still to train (new or to resume)
    reads, both splits, as the run will (:func:`lkca.data.load_dataset`; ADE20K:
    :func:`lkca.data.ade20k.load_ade20k`): a data set missing or damaged under ``data_dir`` is
    its loader's one-line error, naming the runs it would have failed, instead of every run
    failing with it in turn. A decoded data set is cached as the loader caches it
    (docs/datasets.md), so the runs read it from there."""
    todo: dict[str, list[PlannedRun]] = {}
    for run in rep.runs:
        if run.dataset != "digits" and run_state(run).kind in ("new", "resume"):
            todo.setdefault(run.dataset, []).append(run)
    if not todo or data_dir is None:
        return
    from lkca.data import load_dataset  # the data loaders (and PIL): only when launching
    from lkca.data.ade20k import load_ade20k

    folder = Path(data_dir).expanduser()
    for dataset, runs in todo.items():
        try:
            if runs[0].task == "seg":
                for split in ("training", "validation"):
                    load_ade20k(folder, split)
            else:
                for split in ("train", "test"):
                    load_dataset(dataset, folder, split)
        except UserError as err:
            message = str(err).rstrip().rstrip(".")
            raise type(err)(f"{message} (checked before the {len(runs)} run(s) that read it, "
                            f"{runs[0].name} first: none was started)") from None


def cost_markdown(configs_dir: Path, seeds: int = 1) -> str:
    """The expected cost of each paper table as a Markdown table (docs/reproduce.md): runs,
    training images (iterations for segmentation) and device-hours at the stated throughput of
    each run's model (:func:`stated_speeds`), with the range of those throughputs; Tables 6-7 in
    the one-run reading (the default) and, below, the per-row one."""
    lines = ["| table | runs | training images | steps / iterations | device-hours at the stated "
             "images/s of each model (projection) |", "|---|---|---|---|---|"]
    cases = [(str(n), "one-run") for n in sorted(TABLES)]
    cases += [(str(t.number), "per-row") for t in TABLES.values() if isinstance(t, SegTable)]
    for number, reading in cases:
        rep = plan(number, Path("runs"), configs_dir, seeds, seg_runs=reading)
        speed = stated_speeds(rep.runs)
        images = sum(r.images for r in rep.runs)
        steps = sum(r.steps for r in rep.runs)
        device_hours = sum(hours(r.images, speed[r.config]) for r in rep.runs)
        fastest = max(s.images_per_s for s in speed.values())
        slowest = min(s.images_per_s for s in speed.values())
        label = number + (" (`--seg-reading per-row`)" if reading == "per-row" else "")
        lines.append(f"| {label} | {len(rep.runs)} | {images / 1e6:,.1f}M | {steps:,} | "
                     f"{device_hours:,.1f} at {slowest:,.1f}-{fastest:,.1f} images/s |")
    return "\n".join(lines)
