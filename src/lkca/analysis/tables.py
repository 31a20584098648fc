"""Tables of registered models: our params and MACs beside the paper's (docs/models.md)."""

from __future__ import annotations

from typing import Any

from lkca.analysis.paper_report import Profiler
from lkca.analysis.profile import paper_comparison
from lkca.models.registry import is_baseline, list_models, paper_figures


def model_rows() -> list[dict[str, Any]]:
    """One row per ViT / ViT-LKCA model with a paper figure, profiled at the paper's input.

    The comparison models of ``lkca.models.baselines`` have their own table
    (:func:`baseline_rows`, docs/baselines.md).
    """
    return [_row(n) for n in list_models(baselines=False) if paper_figures(n)]


def baseline_rows() -> list[dict[str, Any]]:
    """One row per comparison model (paper Tables 4-5), as :func:`model_rows`, plus ``table``."""
    return [dict(_row(n), table=paper_figures(n).get("table", ""))
            for n in list_models() if is_baseline(n)]


def _row(name: str) -> dict[str, Any]:
    paper = paper_figures(name)
    stats = Profiler().classifier(name, paper["img_size"], paper["num_classes"])
    return {"name": name, "aliases": list(paper["aliases"]), "paper_row": paper["row"],
            "img_size": paper["img_size"], "num_classes": paper["num_classes"],
            "params": stats["params"], "paper_params": int(paper["params"]),
            "macs": stats["macs"], "token_mixing_macs": stats["token_mixing_macs"],
            "paper_macs": int(paper["macs"])}


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
