"""Our results for the rows of the paper's tables (and of tables of your own): which registered
model or backbone stands for a row, and the finished runs of each row aggregated over seeds
(the newest finished run of each seed: mean, sample standard deviation, number). Rendered as
Markdown and CSV by :mod:`lkca.analysis.paper_report`.

Segmentation rows are read one of two ways (:data:`SEG_READINGS`, docs/segmentation.md section
4): "one-run" (the paper's tables' default) takes the evaluation after the row's iterations of
one run per backbone and head of the table's ``run_iters``; "per-row" takes the final evaluation
of a run of the row's own length.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from lkca.analysis.paper_tables import (
    MODEL_NAMES,
    SEG_BACKBONES,
    ClsRow,
    ClsTable,
    SegBackbone,
    SegRow,
    SegTable,
)
from lkca.analysis.run_index import Run, cls_matches, same_config, seg_matches
from lkca.errors import UserError

SEG_READINGS = ("one-run", "per-row")


def seg_reading(table: SegTable, reading: str) -> SegTable:
    """``table`` read the ``reading`` way: "one-run" as it is (a paper table's rows are the
    evaluations of its ``run_iters`` run), "per-row" with each row its own run."""
    if reading not in SEG_READINGS:
        raise UserError(f"unknown segmentation reading {reading!r}; choose one of "
                        f"{', '.join(SEG_READINGS)}")
    return table if reading == "one-run" else dataclasses.replace(table, run_iters=None)


def registered_name(row: ClsRow) -> str | None:
    """The canonical registered model of a classification row, None if not registered (yet)."""
    from lkca.models.registry import resolve_name

    try:
        return resolve_name(row.model or MODEL_NAMES[row.row])
    except (KeyError, ValueError):
        return None


def seg_model(row: SegRow) -> SegBackbone | None:
    """The backbone (and architecture ``model_args``) standing for a segmentation row."""
    return row.model or SEG_BACKBONES.get(row.backbone)


def seg_registered(row: SegRow) -> bool:
    from lkca.seg.backbone import BACKBONES

    spec = seg_model(row)
    return spec is not None and spec.name in BACKBONES


@dataclass(frozen=True)
class SeedResult:
    """One metric of one table cell over the seeds of its runs.

    ``values`` and ``used``: the newest finished run of each seed (by seed); ``unfinished``: for
    each seed without a finished run, its newest run. ``at``: the iteration whose evaluation is
    read (a segmentation row of the one-run reading), None: the run's final result.
    """

    values: tuple[float, ...]
    used: tuple[Run, ...]
    unfinished: tuple[Run, ...]
    at: int | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (ddof 1); None below two seeds."""
        return statistics.stdev(self.values) if self.n >= 2 else None

    def status(self) -> str:
        """"finished", "partial" (some seeds still running), "running (...)" or "no run"."""
        if self.values:
            return "partial" if self.unfinished else "finished"
        if self.unfinished:
            newest = max(self.unfinished, key=lambda r: r.mtime)
            if self.at is not None and (newest.finished or newest.done > self.at):
                return f"no evaluation at iter {self.at}"
            return newest.status()
        return "no run"

    def cell(self) -> str:
        """"93.00" (one seed), "93.00 ± 0.40 (n=2)", with ", 1 running" while seeds are missing."""
        if not self.values:
            status = self.status()
            return status + (f" (+{len(self.unfinished) - 1} more)" if len(self.unfinished) > 1
                             else "")
        text = f"{self.mean:.2f}" if self.n == 1 else f"{self.mean:.2f} ± {self.std:.2f} (n={self.n})"
        return text + (f", {len(self.unfinished)} running" if self.unfinished else "")

    def diff(self, paper: float | None) -> str:
        return "" if paper is None or self.mean is None else f"{self.mean - paper:+.2f}"


def seed_result(runs: Iterable[Run], metric: str, at: int | None = None) -> SeedResult:
    """``metric`` of the summary of the newest finished run of each seed among ``runs``; with
    ``at``, of the evaluation after iteration ``at`` of the newest run of each seed that has it
    (:meth:`Run.evaluation`; the run may still be training)."""
    by_seed: dict[int | None, list[Run]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, []).append(run)
    values: list[float] = []
    used: list[Run] = []
    unfinished: list[Run] = []
    for seed in sorted(by_seed, key=lambda s: (s is None, s or 0)):
        chosen = pick(by_seed[seed], at)
        record = None if chosen is None else _result(chosen, at)
        if chosen is not None and record is not None:
            if record.get(metric) is not None:  # a record without it: not counted
                values.append(float(record[metric]))
                used.append(chosen)
        elif chosen is not None:
            unfinished.append(chosen)
    return SeedResult(tuple(values), tuple(used), tuple(unfinished), at)


def _result(run: Run, at: int | None) -> dict | None:
    """The record a row reads from ``run``: its summary once finished, or its evaluation ``at``."""
    if at is not None:
        return run.evaluation(at)
    return run.summary if run.finished else None


# The top-1 the paper's columns are compared with: the best epoch's, the headline of every run of
# the authors' main.py (SPT's: it logs "best top-1: ..., final top-1: ..." at main.py:282 and
# prints "Best acc1" after every epoch, :274); the final epoch's is shown beside it
# (docs/recipe.md, "evaluation").
PAPER_TOP1, FINAL_TOP1 = "best_top1", "top1"


def cls_results(table: ClsTable, runs: list[Run]) -> list[
        tuple[ClsRow, str | None, list[tuple[SeedResult, SeedResult] | None]]]:
    """Per row: its registered model (None if not registered) and, per data set of the table, the
    best and the final top-1 over seeds (None where the model is not registered)."""
    out: list[tuple[ClsRow, str | None, list[tuple[SeedResult, SeedResult] | None]]] = []
    for row in table.rows:
        name = registered_name(row)
        results: list[tuple[SeedResult, SeedResult] | None] = []
        for ds in table.datasets:
            matching = [] if name is None else [
                r for r in runs if r.task == "cls" and cls_matches(r.config, name, ds, row.model_args)
                and (row.config is None or same_config(r.config, row.config))]
            results.append(None if name is None else (seed_result(matching, PAPER_TOP1),
                                                      seed_result(matching, FINAL_TOP1)))
        out.append((row, name, results))
    return out


# The metric the paper's "mIoU" column is compared with: the paper (section 4.2) reports "aAcc and
# mIoU in 10 high-score categories", and its mIoU beside its aAcc (22.28 at 40.90 after 2,000
# iterations from scratch) fits the mean IoU of the 10 best classes, not of all 150
# (docs/segmentation.md, "Which mIoU"). The 150-class mIoU is shown beside it.
PAPER_MIOU = "top10_mIoU"


def seg_results(table: SegTable, runs: list[Run]) -> list[
        tuple[SegRow, SeedResult | None, SeedResult | None, SeedResult | None]]:
    """Per row: aAcc, the paper's mIoU (:data:`PAPER_MIOU`, the top-10 mIoU) and the 150-class
    mIoU over seeds (None where the backbone is not registered). With ``table.run_iters`` (the
    one-run reading) a row is the evaluation after ``row.iters`` of a run of ``run_iters``
    iterations; without, the final result of a run of ``row.iters``."""
    out: list[tuple[SegRow, SeedResult | None, SeedResult | None, SeedResult | None]] = []
    for row in table.rows:
        spec = seg_model(row)
        if spec is None or not seg_registered(row):
            out.append((row, None, None, None))
            continue
        length, at = (table.run_iters, row.iters) if table.run_iters else (row.iters, None)
        matching = [r for r in runs if r.task == "seg"
                    and seg_matches(r.config, spec.name, spec.model_args, row.head, length)
                    and (row.config is None or same_config(r.config, row.config))]
        out.append((row, seed_result(matching, "aAcc", at), seed_result(matching, PAPER_MIOU, at),
                    seed_result(matching, "mIoU", at)))
    return out


def pick(runs: list[Run], at: int | None = None) -> Run | None:
    """The run to report among matching ones: the newest finished one (with ``at``: the newest
    that has evaluated after iteration ``at``), else the newest."""
    finished = [r for r in runs if _result(r, at) is not None]
    candidates = finished or runs
    return max(candidates, key=lambda r: r.mtime) if candidates else None
