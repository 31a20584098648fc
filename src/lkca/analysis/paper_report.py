"""``lkca tables``: the paper's Tables 1-7 regenerated as Markdown, ours beside the paper's.

For every row: the paper's params, "Flops" and accuracy; our params and MACs of the registered
model standing for the row (:data:`lkca.analysis.paper_tables.MODEL_NAMES`), measured with
:func:`lkca.profile` at the table's input; and our accuracy where finished runs of that model on
that data set (segmentation: that backbone, head and iteration count) exist under the runs
folder, with the difference to the paper. Runs of one row with different seeds are repetitions:
the newest finished run of each seed counts, and the cell shows their mean, standard deviation
and number (one seed: its value). Rows without a run say "no run"; unfinished runs say
"running (done/total)"; rows whose model is not registered yet say so. The same results can be
written as CSV, one line per row, data set and metric (:func:`tables_csv`).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from lkca.analysis.paper_results import (
    FINAL_TOP1,
    PAPER_MIOU,
    PAPER_TOP1,
    cls_results,
    seg_model,
    seg_reading,
    seg_results,
)
from lkca.analysis.paper_tables import MODEL_NAMES, TABLES, ClsTable, SegTable
from lkca.analysis.run_index import Run, find_runs

DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN",
                  "tinyimagenet": "Tiny-ImageNet"}
TINY_NOTE = (" The paper prints the same counts as for CIFAR-10 (32x32, 10 classes) for the "
             "models its CIFAR tables share, so a few % more params here is the 200-class head "
             "and the 8x8 patch embedding.")
BEST_NOTE = ("Ours: the best epoch's test top-1, compared with the paper's (the headline of the "
             "authors' main.py), and the final epoch's beside it (docs/recipe.md, \"evaluation\").")

_INIT_FUNCTIONS = ("trunc_normal_", "normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_",
                   "xavier_uniform_", "xavier_normal_", "constant_", "zeros_", "ones_")


@contextlib.contextmanager
def without_init() -> Iterator[None]:
    """Build models with ``torch.nn.init`` turned into no-ops (weights left uninitialised).

    Counting parameters and MACs needs shapes only; initialising a ViT-B UperNet takes seconds
    on a CPU, most of the time its construction takes.
    """
    from unittest import mock

    import torch

    with contextlib.ExitStack() as stack:
        for name in _INIT_FUNCTIONS:
            stack.enter_context(mock.patch.object(torch.nn.init, name, _identity))
        yield


def _identity(tensor, *args, **kwargs):
    return tensor


def profile_classifier(name: str, img_size: int, num_classes: int,
                       model_args: dict[str, Any] | None = None) -> dict[str, int]:
    """Params, MACs and token-mixing MACs of a registered classifier (with architecture
    overrides ``model_args``) at one input, counted on the meta device."""
    from lkca.models.profile import profile
    from lkca.models.registry import create_model

    with without_init():
        model = create_model(name, num_classes=num_classes, img_size=img_size, **(model_args or {}))
    return profile(model.to("meta"), img_size)  # shapes only: see profile_segmentor


def profile_segmentor(backbone: str, head: str, model_args: dict[str, Any],
                      crop_size: int) -> dict[str, int]:
    """Params and MACs of an ADE20K segmentor (150 classes) at ``crop_size`` x ``crop_size``.

    The forward runs on the meta device: the flop counter needs shapes only, and a ViT-B
    UperNet at 512x512 would take many seconds on a CPU.
    """
    from lkca.models.profile import profile
    from lkca.seg.segmentor import create_segmentor

    with without_init():
        model = create_segmentor(backbone, head, 150, **model_args)
    return profile(model.to("meta"), crop_size)


class Profiler:
    """Params/MACs per (model, input), each measured once per process: the counts depend only
    on the registered code, so ``lkca tables``, the README's model table and the tests that
    render tables share one cache."""

    _cache: ClassVar[dict[tuple, dict[str, int]]] = {}

    def classifier(self, name: str, img_size: int, num_classes: int,
                   model_args: dict[str, Any] | None = None) -> dict[str, int]:
        key = ("cls", name, img_size, num_classes, tuple(sorted((model_args or {}).items())))
        if key not in self._cache:
            self._cache[key] = (profile_classifier(name, img_size, num_classes, model_args)
                                if model_args else profile_classifier(name, img_size, num_classes))
        return dict(self._cache[key])

    def segmentor(self, backbone: str, head: str, model_args: dict[str, Any],
                  crop_size: int) -> dict[str, int]:
        key = ("seg", backbone, head, tuple(sorted(model_args.items())), crop_size)
        if key not in self._cache:
            self._cache[key] = profile_segmentor(backbone, head, model_args, crop_size)
        return dict(self._cache[key])


def render_tables(runs_dir: str | Path = "runs", numbers: Iterable[int] | None = None,
                  profiler: Profiler | None = None, reading: str = "one-run") -> str:
    """Markdown of the asked tables (default all, 1-7), ours beside the paper's; segmentation rows
    read the ``reading`` way (:data:`lkca.analysis.paper_results.SEG_READINGS`)."""
    tables = [TABLES[n] for n in numbers or sorted(TABLES)]
    return render([seg_reading(t, reading) if isinstance(t, SegTable) else t for t in tables],
                  runs_dir, profiler)


def render(tables: Sequence[ClsTable | SegTable], runs_dir: str | Path = "runs",
           profiler: Profiler | None = None) -> str:
    """Markdown of ``tables`` (the paper's or tables of your own), ours from ``runs_dir``."""
    runs = find_runs(runs_dir)
    profiler = profiler or Profiler()
    parts = [f"# The paper's tables, regenerated\n\nRuns from `{runs_dir}`. Top-1 / aAcc / mIoU "
             "in %; which value of a run is ours is said under each table (classification: "
             "the best epoch's; segmentation: the evaluation its reading takes), or the mean ± "
             "standard deviation of it over seeds (n = number of seeds), and difference = ours "
             "- paper. "
             "MACs: ours excluding token mixing, as the paper counts (all MACs in brackets)."]
    for table in tables:
        if isinstance(table, ClsTable):
            parts.append(cls_table_markdown(table, runs, profiler))
        else:
            parts.append(seg_table_markdown(table, runs, profiler))
    return "\n\n".join(parts) + "\n"


CSV_COLUMNS = ("table", "row", "model", "dataset", "metric", "paper", "mean", "std", "n", "diff",
               "status", "runs")


def tables_csv(tables: Sequence[ClsTable | SegTable], runs_dir: str | Path = "runs") -> str:
    """The results of ``tables`` as CSV: one line per row, data set and metric, with the paper's
    value, our mean, standard deviation and number of seeds, the difference, the status
    (finished, partial, running (...), no run, not registered) and the run directories used."""
    runs = find_runs(runs_dir)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def line(table, row, model, dataset, metric, paper, result):
        head = [table.number or table.title, row, model, dataset, metric, _num(paper)]
        if result is None:
            writer.writerow([*head, "", "", 0, "", "not registered", ""])
            return
        writer.writerow([*head, _num(result.mean), _num(result.std), result.n,
                         result.diff(paper).lstrip("+"),
                         result.status(), ";".join(str(r.path) for r in result.used)])

    for table in tables:
        if isinstance(table, ClsTable):
            for row, name, results in cls_results(table, runs):
                model = name or row.model or MODEL_NAMES.get(row.row, "")
                for ds, paper, result in zip(table.datasets, row.top1, results, strict=True):
                    # the paper's column against the best epoch (paper_results.PAPER_TOP1)
                    line(table, row.row, model, ds, PAPER_TOP1, paper, result and result[0])
                    line(table, row.row, model, ds, FINAL_TOP1, None, result and result[1])
        else:
            for seg_row, aacc, top10, miou in seg_results(table, runs):
                spec = seg_model(seg_row)
                label = f"{seg_row.backbone} {seg_row.head} {seg_row.iters}"
                model = f"{spec.name}+{seg_row.head}" if spec else ""
                line(table, label, model, "ade20k", "aAcc", seg_row.aAcc, aacc)
                # the paper's mIoU column against the top-10 mIoU (paper_results.PAPER_MIOU)
                line(table, label, model, "ade20k", PAPER_MIOU, seg_row.mIoU, top10)
                line(table, label, model, "ade20k", "mIoU", None, miou)
    return buf.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}".rstrip("0").rstrip(".")


def cls_table_markdown(table: ClsTable, runs: list[Run], profiler: Profiler) -> str:
    """One classification table: counts per row, then accuracy per data set (paper, ours, diff)."""
    head = ["paper row", "model", "params (paper)", "params (ours)", "Flops (paper)",
            "MACs (ours)"]
    for ds in table.datasets:
        label = DATASET_LABELS.get(ds, ds)
        head += [f"{label} (paper)", f"{label} best (ours)", "diff", f"{label} final (ours)"]
    lines = [_heading(table), "",
             f"Our counts at {table.img_size}x{table.img_size}, {table.num_classes} classes."
             + (TINY_NOTE if table.datasets == ("tinyimagenet",) else "") + " " + BEST_NOTE, "",
             _md_row(head), _md_row(["---"] * len(head))]
    used: list[str] = []
    for row, name, results in cls_results(table, runs):
        wanted = row.model or MODEL_NAMES.get(row.row, "?")
        label = f"`{name}`" + "".join(f", {k}={v}" for k, v in row.model_args.items())
        cells = [row.row, label if name else f"`{wanted}` not registered", _millions(row.params)]
        if name:
            stats = profiler.classifier(name, table.img_size, table.num_classes, row.model_args)
            core = _macs_compared(stats)
            cells += [f"{_millions(stats['params'])}{_pct(stats['params'], row.params)}",
                      _millions(row.macs),
                      f"{_millions(core)}{_pct(core, row.macs)} [{_millions(stats['macs'])}]"]
        else:
            cells += ["—", _millions(row.macs), "—"]
        for ds, paper, result in zip(table.datasets, row.top1, results, strict=True):
            if result is None:
                cells += [_paper(paper), "—", "", "—"]
                continue
            best, final = result
            cells += [_paper(paper), best.cell(), best.diff(paper), final.cell()]
            for run in final.used:  # finished runs: each has a summary
                summary = run.summary or {}
                at = summary.get("best_epoch")
                used.append(f"- {row.row} on {DATASET_LABELS.get(ds, ds)}: `{run.path}` "
                            f"({run.total} epochs, final {float(summary[FINAL_TOP1]):.2f}, best "
                            + (f"{float(summary[PAPER_TOP1]):.2f}" if PAPER_TOP1 in summary
                               else "not recorded")
                            + (f" at epoch {at})" if at is not None else ")"))
        lines.append(_md_row(cells))
    if used:
        lines += ["", "Runs used:", *used]
    return "\n".join(lines)


def seg_table_markdown(table: SegTable, runs: list[Run], profiler: Profiler) -> str:
    """One segmentation table: counts per row, then aAcc and the paper's mIoU (paper, ours, diff;
    ours is the top-10 mIoU, :data:`lkca.analysis.paper_results.PAPER_MIOU`), then our
    150-class mIoU."""
    head = ["backbone", "head", "iters", "model", "params (paper)", "params (ours)",
            "Flops (paper)", "MACs (ours)", "aAcc (paper)", "aAcc (ours)", "diff",
            "mIoU (paper)", "top-10 mIoU (ours)", "diff", "150-class mIoU (ours)"]
    lines = [_heading(table), "",
             f"Our counts: the whole segmentor (150 classes) at {table.crop_size}x"
             f"{table.crop_size}; the paper does not say what its segmentation Flops cover. "
             "The paper's mIoU is \"mIoU in 10 high-score categories\" (section 4.2): ours beside "
             "it is the mean IoU of our 10 best classes; the mean over all 150 classes follows "
             "(docs/segmentation.md, \"Which mIoU\"). " + _reading_note(table), "",
             _md_row(head), _md_row(["---"] * len(head))]
    used: list[str] = []
    for row, aacc, top10, miou in seg_results(table, runs):
        spec = seg_model(row)
        label = f"`{spec.name}`" if spec else "?"
        if spec and spec.model_args:
            label += " " + ", ".join(f"{k}={v}" for k, v in spec.model_args.items())
        cells = [row.backbone, row.head, str(row.iters)]
        if spec is None or aacc is None or top10 is None or miou is None:
            cells += [f"{label} not registered", _millions(row.params), "—", _giga(row.macs), "—",
                      _paper(row.aAcc), "—", "", _paper(row.mIoU), "—", "", "—"]
            lines.append(_md_row(cells))
            continue
        stats = profiler.segmentor(spec.name, row.head, spec.model_args, table.crop_size)
        core = _macs_compared(stats)
        cells += [label, _millions(row.params),
                  f"{_millions(stats['params'])}{_pct(stats['params'], row.params)}",
                  _giga(row.macs), f"{_giga(core)}{_pct(core, row.macs)} [{_giga(stats['macs'])}]"]
        cells += [_paper(row.aAcc), aacc.cell(), aacc.diff(row.aAcc),
                  _paper(row.mIoU), top10.cell(), top10.diff(row.mIoU), miou.cell()]
        used += [f"- {row.backbone} + {row.head}, {row.iters} iters: `{run.path}`"
                 for run in aacc.used]
        lines.append(_md_row(cells))
    if used:
        lines += ["", "Runs used:", *used]
    return "\n".join(lines)


def _reading_note(table: SegTable) -> str:
    """How the table's rows are read from runs (docs/segmentation.md, section 4)."""
    if table.run_iters:
        return (f"Each row is the evaluation after its iterations of one {table.run_iters:,}-"
                "iteration run per backbone and head (MMSegmentation's schedule_20k; "
                "`--seg-reading per-row`: a run of its own per row).")
    return "Each row is the final evaluation of a run of its own, ending at the row's iterations."


def _heading(table: ClsTable | SegTable) -> str:
    """"## Table N: title"; a table of your own (number 0) is headed by its title alone."""
    return f"## Table {table.number}: {table.title}" if table.number else f"## {table.title}"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _millions(n: float | None) -> str:
    return "—" if n is None else f"{n / 1e6:.2f}M"


def _giga(n: float | None) -> str:
    return "—" if n is None else f"{n / 1e9:.2f}G"


def _paper(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _macs_compared(stats: dict[str, int]) -> int:
    """Our MACs as compared with a paper "Flops" figure (without the token-mixing products:
    :func:`lkca.models.profile.macs_without_mixing`, the one definition)."""
    from lkca.models.profile import macs_without_mixing  # torch: only when profiling

    return macs_without_mixing(stats)


def _pct(ours: float, paper: float | None) -> str:
    """" (+1.2%)" against the paper's figure, nothing without one."""
    return "" if paper is None else f" ({100 * (ours / paper - 1):+.1f}%)"
