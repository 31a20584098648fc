"""Tables of registered models: our params and MACs beside the paper's (docs/models.md)."""

from __future__ import annotations

from typing import Any

from lkca.analysis.paper_report import Profiler
from lkca.models.profile import paper_comparison
from lkca.models.registry import is_baseline, list_models, paper_figures


def model_rows() -> list[dict[str, Any]]:
    """One row per ViT / ViT-LKCA model with a paper figure, profiled where the paper counted it
    (``counted_at``: 32 x 32, 10 classes for every row), with ``authors_params``: what the
    authors' code counts (ours plus the class token their ViT-LKCA creates and never uses).

    The comparison models of ``lkca.models.baselines`` have their own table
    (:func:`baseline_rows`, docs/baselines.md).
    """
    rows = []
    for name in list_models(baselines=False):
        paper = paper_figures(name)
        if paper:
            row = _row(name, *paper["counted_at"])
            rows.append(dict(row, authors_params=row["params"] + paper["authors_unused_params"]))
    return rows


def baseline_rows() -> list[dict[str, Any]]:
    """One row per comparison model (paper Tables 4-5), as :func:`model_rows`, plus ``table``."""
    return [dict(_row(n), table=paper_figures(n).get("table", ""))
            for n in list_models() if is_baseline(n)]


def _row(name: str, img_size: int | None = None, num_classes: int | None = None
         ) -> dict[str, Any]:
    paper = paper_figures(name)
    img, classes = img_size or paper["img_size"], num_classes or paper["num_classes"]
    stats = Profiler().classifier(name, img, classes)
    return {"name": name, "aliases": list(paper["aliases"]), "paper_row": paper["row"],
            "img_size": img, "num_classes": classes,
            "params": stats["params"], "paper_params": int(paper["params"]),
            "macs": stats["macs"], "token_mixing_macs": stats["token_mixing_macs"],
            "ptflops_macs": stats.get("ptflops_macs"), "paper_macs": int(paper["macs"])}


def vit_table_markdown(rows: list[dict[str, Any]]) -> str:
    """The README's table of :func:`model_rows`: params (ours, the authors' code, the paper's)
    and MACs as the paper counts them (ptflops' module hooks,
    :func:`lkca.models.profile.ptflops_macs`) beside the paper's "Flops"."""
    lines = [
        "| model | paper row | params | authors' code | paper | MACs (ptflops count) | paper "
        "| diff | all MACs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = paper_comparison(r, {"params": r["paper_params"], "macs": r["paper_macs"]})
        name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        lines.append(
            f"| {name} | {r['paper_row']} | {r['params']:,} | {r['authors_params']:,} | "
            f"{r['paper_params'] / 1e6:.2f}M | {r['ptflops_macs'] / 1e6:.2f}M | "
            f"{r['paper_macs'] / 1e6:.2f}M | {100 * c['ptflops_diff']:+.2f}% | "
            f"{r['macs'] / 1e6:.1f}M |"
        )
    return "\n".join(lines)


def model_table_markdown(rows: list[dict[str, Any]]) -> str:
    """Markdown table: params and MACs (with and without token mixing) vs the paper."""
    lines = [
        "| model | paper row | input | params | paper | diff | MACs | MACs w/o mixing | paper | diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = paper_comparison(r, {"params": r["paper_params"], "macs": r["paper_macs"]})
        name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        row = r["paper_row"] + (f" ({r['table']})" if r.get("table") else "")
        lines.append(
            f"| {name} | {row} | {r['img_size']}x{r['img_size']} | "
            f"{r['params'] / 1e6:.2f}M | {r['paper_params'] / 1e6:.2f}M | "
            f"{100 * c['params_diff']:+.1f}% | {r['macs'] / 1e6:.1f}M | "
            f"{c['macs_without_mixing'] / 1e6:.1f}M | {r['paper_macs'] / 1e6:.2f}M | "
            f"{100 * c['macs_diff']:+.1f}% |"
        )
    return "\n".join(lines)


def replace_between_markers(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` marker lines replaced by ``body``
    (the README / docs tables that scripts regenerate)."""
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"
