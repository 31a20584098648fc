"""Tables of registered models: our params and MACs beside the paper's (DESIGN.md section 4)."""

from __future__ import annotations

from typing import Any

from lkca.analysis.profile import profile
from lkca.models.registry import create_model, list_models, paper_figures


def model_rows() -> list[dict[str, Any]]:
    """One row per registered model that has a paper figure, profiled at the paper's input."""
    rows = []
    for name in list_models():
        paper = paper_figures(name)
        if not paper:
            continue
        stats = profile(create_model(name), paper["img_size"])
        rows.append({"name": name, "aliases": list(paper["aliases"]), "paper_row": paper["row"],
                     "img_size": paper["img_size"], "num_classes": paper["num_classes"],
                     "params": stats["params"], "paper_params": int(paper["params"]),
                     "macs": stats["macs"], "token_mixing_macs": stats["token_mixing_macs"],
                     "paper_macs": int(paper["macs"])})
    return rows


def model_table_markdown(rows: list[dict[str, Any]]) -> str:
    """Markdown table: params and MACs (with and without token mixing) vs the paper."""
    lines = [
        "| model | paper row | input | params | paper | diff | MACs | MACs w/o mixing | paper | diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        core = r["macs"] - r["token_mixing_macs"]
        name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        lines.append(
            f"| {name} | {r['paper_row']} | {r['img_size']}x{r['img_size']} | "
            f"{r['params'] / 1e6:.2f}M | {r['paper_params'] / 1e6:.2f}M | "
            f"{100 * (r['params'] / r['paper_params'] - 1):+.1f}% | {r['macs'] / 1e6:.1f}M | "
            f"{core / 1e6:.1f}M | {r['paper_macs'] / 1e6:.2f}M | "
            f"{100 * (core / r['paper_macs'] - 1):+.1f}% |"
        )
    return "\n".join(lines)
