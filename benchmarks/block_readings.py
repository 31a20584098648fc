"""Which ViT-LKCA block the paper built: every reading of its text against every LKCA table row.

    python benchmarks/block_readings.py            # writes results/block_readings.json and the
                                                   # tables of docs/block-readings.md
    python benchmarks/block_readings.py --check    # exit 1 if either is out of date

The readings (:data:`READINGS`, each a set of ``ViTConfig`` fields):

- ``lkca_only``: LKCA in place of self-attention in every block, no value/output projections,
  one kernel per head (lkca 0.1.0's ViT-LKCA);
- ``lkca_only_block``: the same with one kernel per block (``kernel_heads=1``);
- ``lkca_proj``: the same with value and output projections (Linear C -> C before and after);
- ``attn_lkca_head``: the paper's text read literally, self-attention + LKCA + MLP, each pre-LN
  (``mixers="attn_lkca"``), one kernel per head;
- ``attn_lkca_block``: the same with one kernel per block (``kernel_heads=1``).

Classification (Tables 1-5; the rows of Tables 1-3 and 4-5 share their counts): for each LKCA
row and reading, the best-fitting width and depth. "Best-fitting": over SPT's ViT design space
(heads of 16 channels as SPT's ``dim_head=16``, MLP ratio 2, width a multiple of 16 from 16 to
1024, depth 1 to 40), the (width, depth) whose larger relative error, over the parameter count
and the MACs without token mixing (the paper's "Flops", :func:`lkca.models.profile
.macs_without_mixing`), is smallest; ties go to the smaller parameter error. LKCA-B is also
shown at the one width and depth the paper pins: SPT's ViT-B (dim 192, 12 heads, depth 9; 18 for
LKCA-only, whose blocks have half the weights), which is the paper's ViT and "ViT-Small".

Segmentation (Tables 6-7, ADE20K 512x512, 150 classes): the width is the ViT row's (ViT-S:
384, 6 heads; ViT-B: 768, 12 heads; MLP ratio 4) and the neck and heads are the same for both
rows of a pair, so what discriminates is the pair difference "ViT row - LKCA row" in "# Params"
(ours: the ViT backbone at depth 12 minus the reading at depth D). For each reading the depth D
in 4..24 with the smallest largest relative error of that difference over the table's pairs
(Table 7: UperNet and FPN; Table 6: UperNet). The paper's printed rounding gives each
difference an interval (+-0.01M for Table 7, +-1M for Table 6); ``in_rounding`` says whether
ours lies in it. The paper's segmentation "Flops" are not used: the same backbone pair differs
by +1.31G under UperNet and -1.78G under FPN, which no backbone change can do.

Parameters and MACs are measured on models as built (on the meta device, no weights): each
count is exactly linear in the depth and, with heads of 16 channels, a polynomial of degree two in
the width (every weight is width x width, width x a constant, or a constant per head), so two
depths at three widths per reading give every (width, depth) of the search, and two more widths,
built and compared, check that (:func:`_counts_in_width_and_depth`). Conclusions:
docs/block-readings.md.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from lkca.analysis.paper_tables import CLS_TABLES, TABLE_6, TABLE_7
from lkca.analysis.tables import replace_between_markers
from lkca.models.profile import macs_without_mixing, profile

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "block_readings.json"
DOC = ROOT / "docs" / "block-readings.md"
MARKERS = {"cls": ("<!-- readings:cls:start -->", "<!-- readings:cls:end -->"),
           "seg": ("<!-- readings:seg:start -->", "<!-- readings:seg:end -->")}

READINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "lkca_only": ("LKCA only, no projections, kernel per head",
                  {"mixers": "lkca", "lkca_projections": False, "kernel_heads": None}),
    "lkca_only_block": ("LKCA only, no projections, kernel per block",
                        {"mixers": "lkca", "lkca_projections": False, "kernel_heads": 1}),
    "lkca_proj": ("LKCA only, value/output projections, kernel per head",
                  {"mixers": "lkca", "lkca_projections": True, "lkca_value_bias": True,
                   "kernel_heads": None}),
    "attn_lkca_head": ("SA + LKCA + MLP, kernel per head",
                       {"mixers": "attn_lkca", "lkca_projections": False, "kernel_heads": None}),
    "attn_lkca_block": ("SA + LKCA + MLP, kernel per block",
                        {"mixers": "attn_lkca", "lkca_projections": False, "kernel_heads": 1}),
}
HEAD_DIM, MLP_RATIO = 16, 2.0  # SPT's ViT: dim_head=16, mlp_dim_ratio=2
WIDTHS = range(16, 1025, 16)
DEPTHS = range(1, 41)
SEG_DEPTHS = range(4, 25)
# LKCA-B at SPT's ViT-B: dim 192, 12 heads, depth 9 (the blocks with self-attention) or 18
# (LKCA-only blocks have about half the weights: the design lkca 0.1.0 registered).
PINNED = {"dim": 192, "heads": 12, "depth": {"lkca_only": 18, "lkca_only_block": 18,
                                             "lkca_proj": 12,
                                             "attn_lkca_head": 9, "attn_lkca_block": 9}}


def cls_rows() -> list[dict[str, Any]]:
    """The distinct LKCA rows of Tables 1-5 with the tables printing them and their input."""
    rows: dict[tuple[float, float], dict[str, Any]] = {}
    for table in CLS_TABLES:
        for r in table.rows:
            if "LKCA" not in r.row:
                continue
            big = r.row == "LKCA-L"  # measured at its own input (64x64, 200 classes)
            key = (r.params, r.macs)
            entry = rows.setdefault(key, {"rows": [], "tables": [], "params": r.params,
                                          "macs": r.macs, "img_size": 64 if big else 32,
                                          "num_classes": 200 if big else 10})
            if r.row not in entry["rows"]:
                entry["rows"].append(r.row)
            if table.number not in entry["tables"]:
                entry["tables"].append(table.number)
    return list(rows.values())


def _measure(overrides: dict[str, Any], img_size: int) -> tuple[int, int]:
    from lkca.models.vit import VisionTransformer

    with torch.device("meta"):
        model = VisionTransformer(**overrides)
    stats = profile(model, img_size)
    return stats["params"], macs_without_mixing(stats)


def _linear_in_depth(overrides: dict[str, Any], img_size: int, depths: tuple[int, int] = (1, 2)):
    """(params, MACs) as functions of the depth: (base, per block) pairs, from two builds."""
    a, b = depths
    pa, ma = _measure({**overrides, "depth": a}, img_size)
    pb, mb = _measure({**overrides, "depth": b}, img_size)
    per_p, per_m = (pb - pa) // (b - a), (mb - ma) // (b - a)
    return (pa - a * per_p, per_p), (ma - a * per_m, per_m)


FIT_WIDTHS, CHECK_WIDTHS = (16, 32, 48), (512, 1024)


def _quadratic(points: dict[int, int]) -> Any:
    """The polynomial of degree two through three (width, count) points, exactly (Lagrange, in
    fractions): a function returning the integer count at a width."""
    (x0, y0), (x1, y1), (x2, y2) = points.items()

    def at(x: int) -> int:
        value = (Fraction(y0 * (x - x1) * (x - x2), (x0 - x1) * (x0 - x2))
                 + Fraction(y1 * (x - x0) * (x - x2), (x1 - x0) * (x1 - x2))
                 + Fraction(y2 * (x - x0) * (x - x1), (x2 - x0) * (x2 - x1)))
        assert value.denominator == 1, (points, x)
        return int(value)

    return at


def _counts_in_width_and_depth(reading: str, img_size: int, num_classes: int):
    """For every width of :data:`WIDTHS`: ((params base, per block), (MACs base, per block)),
    interpolated from builds at :data:`FIT_WIDTHS` and checked against builds at
    :data:`CHECK_WIDTHS` (an AssertionError if a count is not the polynomial the docstring of
    this module says)."""
    def built(d: int):
        return _linear_in_depth(cls_model_args(reading, d, d // HEAD_DIM, 1, img_size,
                                               num_classes), img_size)

    fit = {d: built(d) for d in FIT_WIDTHS}
    # four polynomials: params base, params per block, MACs base, MACs per block
    polys = [_quadratic({d: fit[d][i][j] for d in FIT_WIDTHS}) for i in (0, 1) for j in (0, 1)]

    def counts(d: int):
        pb, pp, mb, mp = (f(d) for f in polys)
        return (pb, pp), (mb, mp)

    for d in CHECK_WIDTHS:
        assert counts(d) == built(d), f"{reading}: counts at width {d} are not quadratic in it"
    return {d: counts(d) for d in WIDTHS}


def cls_model_args(reading: str, dim: int, heads: int, depth: int, img_size: int,
                   num_classes: int) -> dict[str, Any]:
    """The ``ViTConfig`` fields of a reading at a width and depth (mean pooling, patch img/8)."""
    return {**READINGS[reading][1], "dim": dim, "num_heads": heads, "depth": depth,
            "mlp_ratio": MLP_RATIO, "pool": "mean", "img_size": img_size,
            "patch_size": img_size // 8, "num_classes": num_classes}


def _fit_entry(params: int, macs: int, paper_params: float, paper_macs: float) -> dict[str, Any]:
    pe, me = params / paper_params - 1, macs / paper_macs - 1
    return {"params": params, "macs": macs, "params_err": round(pe, 6), "macs_err": round(me, 6),
            "max_err": round(max(abs(pe), abs(me)), 6)}


def fit_classification() -> list[dict[str, Any]]:
    """The best fit of every reading for every LKCA row (and LKCA-B at SPT's ViT-B shape)."""
    rows = cls_rows()
    settings = sorted({(r["img_size"], r["num_classes"]) for r in rows})
    lines = {(rd, d, s): counts for rd in READINGS for s in settings
             for d, counts in _counts_in_width_and_depth(rd, *s).items()}
    out = []
    for row in rows:
        setting = (row["img_size"], row["num_classes"])
        fits: dict[str, Any] = {}
        for rd in READINGS:
            best = None
            for d in WIDTHS:
                (p0, p1), (m0, m1) = lines[rd, d, setting]
                for depth in DEPTHS:
                    entry = _fit_entry(p0 + depth * p1, m0 + depth * m1, row["params"], row["macs"])
                    score = (entry["max_err"], abs(entry["params_err"]))
                    if best is None or score < best[0]:
                        best = (score, {"dim": d, "heads": d // HEAD_DIM, "depth": depth, **entry})
            assert best is not None
            fits[rd] = best[1]
        row = {**row, "readings": fits, "best": min(fits, key=lambda k: fits[k]["max_err"])}
        if "LKCA-B" in row["rows"]:
            row["pinned"] = pinned_lkca_b()
        out.append(row)
    return out


def pinned_lkca_b() -> dict[str, Any]:
    """Every reading at SPT's ViT-B width (dim 192, 12 heads; depth :data:`PINNED`), beside
    LKCA-B's 2.69M / 170.81M."""
    (row,) = [r for r in cls_rows() if "LKCA-B" in r["rows"]]
    pinned = {}
    for rd in READINGS:
        depth = PINNED["depth"][rd]
        args = cls_model_args(rd, PINNED["dim"], PINNED["heads"], depth, row["img_size"],
                              row["num_classes"])
        p, m = _measure(args, row["img_size"])
        pinned[rd] = {"dim": PINNED["dim"], "heads": PINNED["heads"], "depth": depth,
                      **_fit_entry(p, m, row["params"], row["macs"])}
    return pinned


def _segmentor_counts(backbone: str, head: str, overrides: dict[str, Any]) -> tuple[int, int]:
    from lkca.seg.segmentor import create_segmentor

    with torch.device("meta"):
        model = create_segmentor(backbone, head, 150, **overrides)
    stats = profile(model, 512)
    return stats["params"], macs_without_mixing(stats)


SEG_PAIRS = {  # table: (ViT row, LKCA row, width overrides, interval half-width of a difference)
    7: ("Vit-S", "LKCA-S", {}, 0.01e6),
    6: ("ViT-B", "LKCA-B", {"dim": 768, "num_heads": 12}, 1e6),
}


def fit_segmentation() -> list[dict[str, Any]]:
    out = []
    for table in (TABLE_7, TABLE_6):
        vit_row, lkca_row, width, half = SEG_PAIRS[table.number]
        heads = sorted({r.head for r in table.rows if r.backbone == lkca_row})
        paper = {h: {r.backbone: (r.params, r.macs) for r in table.rows if r.head == h}
                 for h in heads}
        vit = {h: _segmentor_counts("vit_s_seg", h, width) for h in heads}
        readings: dict[str, Any] = {}
        for rd, (_, fields) in READINGS.items():
            args = {**width, **fields}
            lines = {h: ((_segmentor_counts("lkca_s_seg", h, {**args, "depth": 4}),
                          _segmentor_counts("lkca_s_seg", h, {**args, "depth": 5}))) for h in heads}
            best = None
            for depth in SEG_DEPTHS:
                per_head = {}
                for h in heads:
                    (p4, m4), (p5, m5) = lines[h]
                    params, macs = p4 + (depth - 4) * (p5 - p4), m4 + (depth - 4) * (m5 - m4)
                    ours_diff = vit[h][0] - params
                    paper_diff = paper[h][vit_row][0] - paper[h][lkca_row][0]
                    per_head[h] = {
                        "params": params, "paper_params": int(paper[h][lkca_row][0]),
                        "macs": macs, "paper_macs": int(paper[h][lkca_row][1]),
                        "vit_params": vit[h][0], "paper_vit_params": int(paper[h][vit_row][0]),
                        "diff": ours_diff, "paper_diff": int(paper_diff),
                        "diff_err": round(ours_diff / paper_diff - 1, 6),
                        "in_rounding": abs(ours_diff - paper_diff) <= half,
                    }
                score = (max(abs(v["diff_err"]) for v in per_head.values()), abs(depth - 12))
                if best is None or score < best[0]:
                    best = (score, {"depth": depth, "max_err": round(score[0], 6),
                                    "heads": per_head})
            assert best is not None
            readings[rd] = best[1]
        out.append({"table": table.number, "vit_row": vit_row, "lkca_row": lkca_row,
                    "width": {"dim": width.get("dim", 384), "num_heads": width.get("num_heads", 6)},
                    "readings": readings,
                    "best": min(readings, key=lambda k: readings[k]["max_err"])})
    return out


def results() -> dict[str, Any]:
    """Everything the script writes (deterministic: counts of models as built)."""
    return {
        "readings": {k: {"label": v[0], "model_args": v[1]} for k, v in READINGS.items()},
        "design_space": {"head_dim": HEAD_DIM, "mlp_ratio": MLP_RATIO,
                         "widths": [WIDTHS.start, WIDTHS.stop - 1, WIDTHS.step],
                         "depths": [DEPTHS.start, DEPTHS.stop - 1],
                         "seg_depths": [SEG_DEPTHS.start, SEG_DEPTHS.stop - 1]},
        "classification": fit_classification(),
        "segmentation": fit_segmentation(),
    }


def _pct(x: float) -> str:
    return f"{100 * x:+.2f}%"


def cls_markdown(data: dict[str, Any]) -> str:
    """Rows x readings: best (dim, depth), params and MACs w/o mixing, % off the paper."""
    names = list(data["readings"])
    head = "| paper row (tables) | paper | " + " | ".join(
        data["readings"][n]["label"] for n in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    for row in data["classification"]:
        best = min(row["readings"][n]["max_err"] for n in names)
        cells = []
        for n in names:
            f = row["readings"][n]
            cell = (f"{f['dim']} x {f['depth']}: {f['params'] / 1e6:.3f}M "
                    f"({_pct(f['params_err'])}), {f['macs'] / 1e6:.2f}M ({_pct(f['macs_err'])})")
            cells.append(f"**{cell}**" if f["max_err"] == best else cell)
        tables = ", ".join(map(str, row["tables"]))
        lines.append(f"| {' = '.join(row['rows'])} ({tables}) | {row['params'] / 1e6:.2f}M, "
                     f"{row['macs'] / 1e6:.2f}M | " + " | ".join(cells) + " |")
    pinned = [r for r in data["classification"] if "pinned" in r]
    for row in pinned:
        cells = []
        for n in names:
            f = row["pinned"][n]
            cells.append(f"{f['dim']} x {f['depth']}: {f['params']:,} ({_pct(f['params_err'])}), "
                         f"{f['macs'] / 1e6:.2f}M ({_pct(f['macs_err'])})")
        lines.append(f"| LKCA-B at SPT's ViT-B width | {row['params'] / 1e6:.2f}M, "
                     f"{row['macs'] / 1e6:.2f}M | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seg_markdown(data: dict[str, Any]) -> str:
    """Tables x readings: best depth, our pair difference vs the paper's, % off, in rounding."""
    names = list(data["readings"])
    lines = ["| pair (head) | paper | " + " | ".join(
        data["readings"][n]["label"] for n in names) + " |", "|---|---|" + "---|" * len(names)]
    for t in data["segmentation"]:
        heads = list(t["readings"][names[0]]["heads"])
        for h in heads:
            paper = t["readings"][names[0]]["heads"][h]["paper_diff"]
            cells = []
            for n in names:
                f = t["readings"][n]
                v = f["heads"][h]
                mark = " (in rounding)" if v["in_rounding"] else ""
                cells.append(f"depth {f['depth']}: {v['diff'] / 1e6:.3f}M "
                             f"({_pct(v['diff_err'])}){mark}")
            lines.append(f"| Table {t['table']}: {t['vit_row']} - {t['lkca_row']} ({h}) | "
                         f"{paper / 1e6:.2f}M | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_doc(data: dict[str, Any], text: str) -> str:
    """``text`` (docs/block-readings.md) with both tables regenerated between their markers."""
    text = replace_between_markers(text, *MARKERS["cls"], cls_markdown(data))
    return replace_between_markers(text, *MARKERS["seg"], seg_markdown(data))


def print_tables(data: dict[str, Any]) -> None:
    print(cls_markdown(data))
    print()
    print(seg_markdown(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is out of date")
    args = parser.parse_args(argv)
    data = results()
    text = json.dumps(data, indent=2) + "\n"
    doc = DOC.read_text()
    if args.check:
        fresh = OUT.exists() and OUT.read_text() == text and render_doc(data, doc) == doc
        return 0 if fresh else 1
    OUT.write_text(text)
    DOC.write_text(render_doc(data, doc))
    print_tables(data)
    print(f"\nwrote {OUT} and the tables of {DOC}")
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
