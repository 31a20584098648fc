"""``lkca tables``: the paper's Tables 1-7 regenerated as Markdown, ours beside the paper's.

For every row: the paper's params, "Flops" and accuracy; our params and MACs of the registered
model standing for the row (:data:`lkca.analysis.paper_tables.MODEL_NAMES`), measured with
:func:`lkca.profile` at the table's input; and our accuracy where a finished run of that model on
that data set (segmentation: that backbone, head and iteration count) exists under the runs
folder, with the difference to the paper. Rows without a run say "no run"; unfinished runs say
"running (done/total)"; rows whose model is not registered yet say so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lkca.analysis.paper_tables import (
    MODEL_NAMES,
    SEG_BACKBONES,
    TABLES,
    ClsRow,
    ClsTable,
    SegTable,
)
from lkca.analysis.run_index import Run, cls_key, find_runs, seg_matches

DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN",
                  "tinyimagenet": "Tiny-ImageNet"}
TINY_NOTE = (" The paper prints the same counts as for CIFAR-10 (32x32, 10 classes) for the "
             "models its CIFAR tables share, so a few % more params here is the 200-class head "
             "and the 8x8 patch embedding.")

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


def profile_classifier(name: str, img_size: int, num_classes: int) -> dict[str, int]:
    """Params, MACs and token-mixing MACs of a registered classifier at one input."""
    from lkca.analysis.profile import profile
    from lkca.models.registry import create_model

    with without_init():
        model = create_model(name, num_classes=num_classes, img_size=img_size)
    return profile(model, img_size)


def profile_segmentor(backbone: str, head: str, model_args: dict[str, Any],
                      crop_size: int) -> dict[str, int]:
    """Params and MACs of an ADE20K segmentor (150 classes) at ``crop_size`` x ``crop_size``.

    The forward runs on the meta device: the flop counter needs shapes only, and a ViT-B
    UperNet at 512x512 would take many seconds on a CPU.
    """
    from lkca.analysis.profile import profile
    from lkca.seg.segmentor import create_segmentor

    with without_init():
        model = create_segmentor(backbone, head, 150, **model_args)
    return profile(model.to("meta"), crop_size)


class Profiler:
    """Params/MACs per (model, input), each measured once per ``lkca tables`` call."""

    def __init__(self) -> None:
        self._cache: dict[tuple, dict[str, int]] = {}

    def classifier(self, name: str, img_size: int, num_classes: int) -> dict[str, int]:
        key = ("cls", name, img_size, num_classes)
        if key not in self._cache:
            self._cache[key] = profile_classifier(name, img_size, num_classes)
        return self._cache[key]

    def segmentor(self, backbone: str, head: str, model_args: dict[str, Any],
                  crop_size: int) -> dict[str, int]:
        key = ("seg", backbone, head, tuple(sorted(model_args.items())), crop_size)
        if key not in self._cache:
            self._cache[key] = profile_segmentor(backbone, head, model_args, crop_size)
        return self._cache[key]


def registered_name(row: str) -> str | None:
    """The canonical registered model of a classification row, None if not registered (yet)."""
    from lkca.models.registry import resolve_name

    try:
        return resolve_name(MODEL_NAMES[row])
    except (KeyError, ValueError):
        return None


def seg_registered(row: str) -> bool:
    from lkca.seg.backbone import BACKBONES

    return row in SEG_BACKBONES and SEG_BACKBONES[row].name in BACKBONES


def render_tables(runs_dir: str | Path = "runs", numbers: Iterable[int] | None = None,
                  profiler: Profiler | None = None) -> str:
    """Markdown of the asked tables (default all, 1-7), ours beside the paper's."""
    runs = find_runs(runs_dir)
    profiler = profiler or Profiler()
    parts = [f"# The paper's tables, regenerated\n\nRuns from `{runs_dir}`. Top-1 / aAcc / mIoU "
             "in %; ours is the final evaluation of a finished run (difference = ours - paper). "
             "MACs: ours excluding token mixing, as the paper counts (all MACs in brackets)."]
    for number in numbers or sorted(TABLES):
        table = TABLES[number]
        if isinstance(table, ClsTable):
            parts.append(cls_table_markdown(table, runs, profiler))
        else:
            parts.append(seg_table_markdown(table, runs, profiler))
    return "\n\n".join(parts) + "\n"


def cls_table_markdown(table: ClsTable, runs: list[Run], profiler: Profiler) -> str:
    """One classification table: counts per row, then accuracy per data set (paper, ours, diff)."""
    head = ["paper row", "model", "params (paper)", "params (ours)", "Flops (paper)",
            "MACs (ours)"]
    for ds in table.datasets:
        label = DATASET_LABELS.get(ds, ds)
        head += [f"{label} (paper)", f"{label} (ours)", "diff"]
    lines = [f"## Table {table.number}: {table.title}", "",
             f"Our counts at {table.img_size}x{table.img_size}, {table.num_classes} classes."
             + (TINY_NOTE if table.datasets == ("tinyimagenet",) else ""), "",
             _md_row(head), _md_row(["---"] * len(head))]
    used: list[str] = []
    for row in table.rows:
        name = registered_name(row.row)
        cells = [row.row, f"`{name}`" if name else f"`{MODEL_NAMES.get(row.row, '?')}` not registered",
                 _millions(row.params)]
        if name:
            stats = profiler.classifier(name, table.img_size, table.num_classes)
            core = stats["macs"] - stats["token_mixing_macs"]
            cells += [f"{_millions(stats['params'])} ({_pct(stats['params'], row.params)})",
                      _millions(row.macs),
                      f"{_millions(core)} ({_pct(core, row.macs)}) [{_millions(stats['macs'])}]"]
        else:
            cells += ["—", _millions(row.macs), "—"]
        for ds, paper in zip(table.datasets, row.top1, strict=True):
            cells += _accuracy_cells(row, name, ds, paper, runs, used)
        lines.append(_md_row(cells))
    if used:
        lines += ["", "Runs used:", *used]
    return "\n".join(lines)


def _accuracy_cells(row: ClsRow, name: str | None, dataset: str, paper: float,
                    runs: list[Run], used: list[str]) -> list[str]:
    if name is None:
        return [f"{paper:.2f}", "—", ""]
    matching = [r for r in runs if r.task == "cls" and cls_key(r) == (name, dataset)]
    run = pick(matching)
    if run is None:
        return [f"{paper:.2f}", "no run", ""]
    if not run.finished or run.summary is None:  # finished implies a summary
        return [f"{paper:.2f}", run.status(), ""]
    top1 = float(run.summary["top1"])
    best = run.summary.get("best_top1")
    used.append(f"- {row.row} on {DATASET_LABELS.get(dataset, dataset)}: `{run.path}` "
                f"({run.total} epochs, final {top1:.2f}"
                + (f", best {float(best):.2f})" if best is not None else ")"))
    return [f"{paper:.2f}", f"{top1:.2f}", f"{top1 - paper:+.2f}"]


def seg_table_markdown(table: SegTable, runs: list[Run], profiler: Profiler) -> str:
    """One segmentation table: counts per row, then aAcc and mIoU (paper, ours, diff)."""
    head = ["backbone", "head", "iters", "model", "params (paper)", "params (ours)",
            "Flops (paper)", "MACs (ours)", "aAcc (paper)", "aAcc (ours)", "diff",
            "mIoU (paper)", "mIoU (ours)", "diff"]
    lines = [f"## Table {table.number}: {table.title}", "",
             f"Our counts: the whole segmentor (150 classes) at {table.crop_size}x"
             f"{table.crop_size}; the paper does not say what its segmentation Flops cover.", "",
             _md_row(head), _md_row(["---"] * len(head))]
    used: list[str] = []
    for row in table.rows:
        spec = SEG_BACKBONES.get(row.backbone)
        label = f"`{spec.name}`" if spec else "?"
        if spec and spec.model_args:
            label += " " + ", ".join(f"{k}={v}" for k, v in spec.model_args.items())
        cells = [row.backbone, row.head, str(row.iters)]
        if spec is None or not seg_registered(row.backbone):
            cells += [f"{label} not registered", _millions(row.params), "—", _giga(row.macs), "—",
                      f"{row.aAcc:.2f}", "—", "", f"{row.mIoU:.2f}", "—", ""]
            lines.append(_md_row(cells))
            continue
        stats = profiler.segmentor(spec.name, row.head, spec.model_args, table.crop_size)
        core = stats["macs"] - stats["token_mixing_macs"]
        cells += [label, _millions(row.params),
                  f"{_millions(stats['params'])} ({_pct(stats['params'], row.params)})",
                  _giga(row.macs), f"{_giga(core)} ({_pct(core, row.macs)}) [{_giga(stats['macs'])}]"]
        run = pick([r for r in runs if r.task == "seg"
                    and seg_matches(r, spec.name, spec.model_args, row.head, row.iters)])
        if run is None or not run.finished or run.summary is None:
            status = "no run" if run is None else run.status()
            cells += [f"{row.aAcc:.2f}", status, "", f"{row.mIoU:.2f}", status, ""]
        else:
            aacc, miou = float(run.summary["aAcc"]), float(run.summary["mIoU"])
            cells += [f"{row.aAcc:.2f}", f"{aacc:.2f}", f"{aacc - row.aAcc:+.2f}",
                      f"{row.mIoU:.2f}", f"{miou:.2f}", f"{miou - row.mIoU:+.2f}"]
            used.append(f"- {row.backbone} + {row.head}, {row.iters} iters: `{run.path}`")
        lines.append(_md_row(cells))
    if used:
        lines += ["", "Runs used:", *used]
    return "\n".join(lines)


def pick(runs: list[Run]) -> Run | None:
    """The run to report among matching ones: the newest finished one, else the newest."""
    finished = [r for r in runs if r.finished]
    candidates = finished or runs
    return max(candidates, key=lambda r: r.mtime) if candidates else None


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def _giga(n: float) -> str:
    return f"{n / 1e9:.2f}G"


def _pct(ours: float, paper: float) -> str:
    return f"{100 * (ours / paper - 1):+.1f}%"
