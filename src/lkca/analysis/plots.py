"""Pictures as PNG files: ERF maps, LKCA kernels, training curves (``lkca erf | kernels | plot``).

matplotlib is optional (``pip install "lkca[plot]"``) and imported only inside these functions.
Figures are drawn with matplotlib's object API and the Agg renderer (no pyplot, no global
backend change, no window) at :data:`DPI`, so a figure of w x h inches is a (100 w) x (100 h)
pixel PNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lkca.atomic_files import write_atomic
from lkca.errors import UserError
from lkca.layers import LKCA
from lkca.runtime.run_log import read_metrics

DPI = 100
ERF_PANEL_IN = (3.0, 3.6)  # one ERF map with its two-line title
COLORBAR_IN = 1.0
CURVES_IN = (14.0, 4.0)  # three panels: loss, accuracy (or mIoU), learning rate
KERNEL_CELL_IN = 1.0  # one head's kernel
KERNEL_MARGIN_IN = (2.4, 1.2)  # row labels + colour bar, title + column labels
KERNEL_MIN_WIDTH_IN = 5.0  # room for the title
ERF_DECADES = 3  # ERF maps are shown over three decades below their maximum


def require_matplotlib() -> None:
    """Raise :class:`UserError` naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError('plotting needs matplotlib; install it with: pip install "lkca[plot]"') from None


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure of the given size (inches) at :data:`DPI`, with constrained layout."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def save_png(fig, out: str | Path) -> tuple[int, int]:
    """Write ``fig`` to ``out`` as PNG, atomically (parent folders created); returns its
    (width, height) in px."""
    write_atomic(out, lambda f: fig.savefig(f, format="png", dpi=DPI))
    width, height = fig.get_size_inches()
    return round(width * DPI), round(height * DPI)


# --- effective receptive fields ------------------------------------------------------------------


def erf_figure(panels: list[tuple[str, Any, tuple[float, ...]]], thresholds: tuple[float, ...]):
    """Side-by-side log-scaled ERF maps; ``panels`` holds (name, erf (H, W), area ratios) each.

    Each map is divided by its maximum and shown over :data:`ERF_DECADES` decades (smaller values,
    zeros included, take the darkest colour). Size: ``ERF_PANEL_IN`` per map plus a colour bar.
    """
    from matplotlib.colors import LogNorm

    fig = new_figure(ERF_PANEL_IN[0] * len(panels) + COLORBAR_IN, ERF_PANEL_IN[1])
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    floor = 10.0 ** -ERF_DECADES
    norm = LogNorm(vmin=floor, vmax=1.0)
    image = None
    for ax, (name, erf, ratios) in zip(axes, panels):
        scores = erf.detach().double().cpu().numpy()
        scores = (scores / scores.max()).clip(floor, 1.0)
        image = ax.imshow(scores, cmap="magma", norm=norm, interpolation="nearest")
        shares = "/".join(f"{100 * r:.1f}" for r in ratios)
        marks = "/".join(f"{round(100 * t)}" for t in thresholds)
        ax.set_title(f"{name}\nmass {marks}% in {shares}% of area", fontsize=8.5)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.85)
    bar.set_label("|gradient| / max (log scale)")
    return fig


# --- LKCA kernels --------------------------------------------------------------------------------


def lkca_kernels(model) -> list[tuple[str, Any]]:
    """Every LKCA module's kernel in model order: [(module name, weight (heads, kh, kw)), ...]."""
    return [(name, m.weight.detach().float().cpu()) for name, m in model.named_modules()
            if isinstance(m, LKCA)]


def kernel_mosaic(kernels: list[Any]):
    """Stack (heads, kh, kw) kernels into one (rows * (kh + 1) - 1, heads * (kw + 1) - 1) array.

    Row i, column j holds kernel i's head j, centred in a cell of the largest kernel's size;
    cell borders and unused cells are NaN (drawn blank).
    """
    import numpy as np

    heads = max(k.shape[0] for k in kernels)
    kh = max(k.shape[1] for k in kernels)
    kw = max(k.shape[2] for k in kernels)
    mosaic = np.full((len(kernels) * (kh + 1) - 1, heads * (kw + 1) - 1), np.nan)
    for i, k in enumerate(kernels):
        h, w = k.shape[1:]
        top, left = i * (kh + 1) + (kh - h) // 2, (kw - w) // 2
        for j in range(k.shape[0]):
            x = left + j * (kw + 1)
            mosaic[top : top + h, x : x + w] = k[j].numpy()
    return mosaic


def kernel_figure(title: str, kernels: list[tuple[str, Any]]):
    """Heat maps of LKCA kernels: rows = blocks, columns = heads, one diverging scale centred at 0.

    Size: ``KERNEL_CELL_IN`` per kernel plus ``KERNEL_MARGIN_IN`` (at least ``KERNEL_MIN_WIDTH_IN``
    wide).
    """
    from matplotlib import colormaps

    weights = [w for _, w in kernels]
    heads = max(w.shape[0] for w in weights)
    kh = max(w.shape[1] for w in weights)
    kw = max(w.shape[2] for w in weights)
    fig = new_figure(max(KERNEL_MIN_WIDTH_IN, heads * KERNEL_CELL_IN + KERNEL_MARGIN_IN[0]),
                     len(kernels) * KERNEL_CELL_IN + KERNEL_MARGIN_IN[1])
    ax = fig.subplots()
    mosaic = kernel_mosaic(weights)
    vmax = max(float(abs(w).max()) for w in weights) or 1.0
    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([j * (kw + 1) + (kw - 1) / 2 for j in range(heads)], [str(j) for j in range(heads)])
    ax.set_yticks([i * (kh + 1) + (kh - 1) / 2 for i in range(len(kernels))],
                  [_block_label(name) for name, _ in kernels])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("head")
    ax.set_ylabel("block")
    ax.set_title(f"{title}: LKCA kernels\neach cell: one head's {kh}x{kw} weights over token "
                 "offsets, centre = offset 0", fontsize=9)
    height_in = fig.get_size_inches()[1]
    bar = fig.colorbar(image, ax=ax, shrink=0.8, aspect=4 * height_in)  # a bar about 0.2 in wide
    bar.set_label("kernel weight")
    return fig


def _block_label(module_name: str) -> str:
    """``blocks.3.mixer`` or ``backbone.blocks.3.mixer`` -> ``3``; other names are kept."""
    parts = module_name.split(".")
    for first, second in zip(parts, parts[1:]):
        if first == "blocks" and second.isdigit():
            return second
    return module_name


# --- training curves -----------------------------------------------------------------------------

# kind: (x key, x label, [(panel title, y label, [(key, line style, label suffix)])])
CURVES = {
    "classification": ("epoch", "epoch", [
        ("loss", "cross-entropy", [("train_loss", "-", "train"), ("test_loss", "--", "test")]),
        ("test top-1", "accuracy (%)", [("test_top1", "-", "")]),
        ("learning rate", "learning rate", [("lr", "-", "")]),
    ]),
    "segmentation": ("iter", "iteration", [
        ("training loss", "loss", [("loss", "-", "")]),
        ("validation mIoU", "mIoU (%)", [("mIoU", "-", "")]),
        ("learning rate", "learning rate", [("lr", "-", "")]),
    ]),
}


@dataclass
class RunMetrics:
    """One run's metrics.jsonl: its name (for the legend), kind and records in file order."""

    name: str
    kind: str  # "classification" (per-epoch records) or "segmentation" (per-evaluation)
    records: list[dict[str, Any]]


def read_run(path: str | Path) -> RunMetrics:
    """Read ``RUN_DIR/metrics.jsonl`` (or that file itself); every problem is a one-line UserError."""
    path = Path(path)
    file = path / "metrics.jsonl" if path.is_dir() else path
    name = (path if path.is_dir() else path.parent).resolve().name
    if not file.is_file():
        what = "does not exist" if not path.exists() else "is missing"
        raise UserError(f"{file} {what}; pass run directories written by `lkca train` or "
                        "`lkca seg train` (they hold metrics.jsonl)")
    records = read_metrics(file)
    if not records:
        raise UserError(f"{file} has no records yet; wait until the first epoch or evaluation ends")
    for kind, (x_key, _, _) in CURVES.items():
        if all(x_key in r for r in records):
            return RunMetrics(name, kind, records)
    raise UserError(f"{file} is not an lkca metrics file (records need an 'epoch' or 'iter' field); "
                    "pass run directories written by `lkca train` or `lkca seg train`")


def curves_figure(runs: list[RunMetrics]):
    """Loss, accuracy (mIoU for segmentation) and learning rate against epoch (iteration), one
    colour per run, legend = run name. Size ``CURVES_IN``; all runs must be of one kind."""
    kinds = {r.kind for r in runs}
    if len(kinds) > 1:
        raise UserError("cannot plot classification and segmentation runs together (epochs vs "
                        "iterations); run `lkca plot` once for each kind")
    x_key, x_label, panels = CURVES[kinds.pop()]
    fig = new_figure(*CURVES_IN)
    from matplotlib.ticker import MaxNLocator
    axes = fig.subplots(1, len(panels))
    labels = _unique_names(runs)
    for i, (run, label) in enumerate(zip(runs, labels)):
        colour = f"C{i % 10}"
        x = [r[x_key] for r in run.records]
        for ax, (_, _, lines) in zip(axes, panels):
            for key, style, suffix in lines:
                y = [_number(r.get(key)) for r in run.records]
                if all(math.isnan(v) for v in y):
                    continue
                name = f"{label} ({suffix})" if suffix and len(lines) > 1 else label
                ax.plot(x, y, style, color=colour, label=name, marker="." if len(x) < 30 else None)
    for ax, (title, y_label, _) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs / iterations: no 1.25
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    axes[0].legend(fontsize=8)
    return fig


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _unique_names(runs: list[RunMetrics]) -> list[str]:
    """Run names, numbered where two runs share a folder name (e.g. two ``run`` folders)."""
    names = [r.name for r in runs]
    return [f"{n} [{i + 1}]" if names.count(n) > 1 else n for i, n in enumerate(names)]


__all__ = ["DPI", "require_matplotlib", "new_figure", "save_png", "erf_figure", "lkca_kernels",
           "kernel_mosaic", "kernel_figure", "read_run", "RunMetrics", "curves_figure"]
