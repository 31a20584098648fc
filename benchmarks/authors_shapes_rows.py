"""The comparison models built to the authors' shapes (Swin, CaiT, T2T, MobileViT, CvT, DeepViT):
params and MACs beside the paper's, the authors' README's and the authors' code's.

MACs are counted as the authors' ``count.py`` counts them: ptflops' ``get_model_complexity_info``
with its defaults (PyTorch backend, functional ops counted; ptflops 0.7.5 here), one image; and
with functional counting off (modules only), where the two codes are seen alike. Our
params and MACs are measured here, at CIFAR (32x32, 10 classes) and Tiny-ImageNet (64x64, 200
classes). The authors' code's MACs were measured the same way on their ``models/<family>.py``
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet at commit 7b9370a) outside this
repository, which does not hold their code; they are data below.

    pip install ptflops
    python benchmarks/authors_shapes_rows.py          # measure, write results/authors_shapes_rows.json and
                                                  # the table of docs/baselines.md
    python benchmarks/authors_shapes_rows.py --check  # exit 1 if the JSON's params or the docs table
                                                  # are stale (no ptflops needed)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

import lkca
from lkca.analysis.tables import replace_between_markers
from lkca.models.registry import paper_figures

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "baselines.md"
OUT = ROOT / "benchmarks" / "results" / "authors_shapes_rows.json"
START, END = "<!-- authors-shapes-rows:start -->", "<!-- authors-shapes-rows:end -->"
INPUTS = {"cifar": (32, 10), "tiny": (64, 200)}

# our name, the authors' name and its create_model.py line, the shape in words, the README row's
# (params, MACs) at 64x64 (Table 5 rows only), and the authors' code's ptflops MACs (cifar, tiny)
ROWS: list[tuple[str, str, str, tuple[float, float] | None, tuple[int, int]]] = [
    ("swin_t", "swin-t:132", "embed 64, depths 1/2/1, heads 2/4/8, window 4, MLP 2, patch 2 (4)",
     (1.06e6, 38.90e6), (38_515_210, 39_153_864)),
    ("swin_s", "swin-s:120", "embed 84, depths 1/3/2, heads 3/6/12, window 4, MLP 2, patch 2 (4)",
     (2.93e6, 95.55e6), (95_157_802, 95_995_976)),
    ("cait_t", "cait-t:150", "dim 72, 16 + 1 class layers, 4 heads of 32, MLP 144, patch 4 (8)",
     (1.03e6, 61.85e6), (61_454_326, 62_140_964)),
    ("cait_s", "cait-s:145", "dim 96, 18 + 2 class layers, 4 heads of 64, MLP 192, patch 4 (8)",
     (2.77e6, 164.46e6), (163_989_938, 164_902_320)),
    ("t2t_t", "t2t-t:164", "split 11/8; dim 128, depth 10, 4 heads of 32, MLP 128",
     (1.07e6, 78.23e6), (18_364_466, 78_481_136)),
    ("t2t_s", "t2t-s:160", "splits 11/8, 7/4; dim 96, depth 3, 4 heads of 24, MLP 96",
     (2.56e6, 52.96e6), (12_815_354, 53_011_284)),
    ("t2t_b", "t2t-b:156", "splits 7/4, 3/2, 2/1; dim 256, depth 8, 4 heads of 64, MLP 256",
     (13.45e6, 853.02e6), (193_255_082, 853_579_208)),
    ("mobilevitv2_t", "mbv2-t:104", "dims 54/60/72, channels 10-20-36-54-72-94-384",
     None, (7_436_170, 30_278_584)),
    ("mobilevitv2_s", "mbv2-s:109", "dims 144/180/224, channels 24-48-54-72-108-120-384",
     None, (24_575_508, 98_835_936)),
    ("mobilevitv2_b", "mbv2:114", "dims 224/302/324, channels 48-53-72-80-120-156-384",
     (8.17e6, 189.77e6), (47_368_884, 190_009_440)),
    ("cvt_b", "cvt-b:168", "widths 32/96/192, depths 1/2/10, heads 1/3/6 of 64, MLP 4",
     (6.52e6, 102.56e6), (25_626_746, 102_557_640)),
    ("deepvit_t", "deepvit-t:198", "dim 80, depth 10, 4 heads of 64, MLP 80, patch 4 (8)",
     (0.99e6, 62.96e6), (62_360_962, 63_122_848)),
    ("deepvit_s", "deepvit-s:213", "dim 136, depth 14, 4 heads of 64, MLP 136, patch 4 (8)",
     (2.54e6, 162.85e6), (161_935_658, 163_224_280)),
]
# The authors' code's MACs with ptflops' functional counting off (modules only: what ptflops
# sees the same way in both codes), at (32, 64); measured as AUTHORS' MACs above
AUTHORS_MODULE_MACS = {
    "swin_t": (38_418_954, 39_057_608),
    "swin_s": (94_986_538, 95_824_712),
    "cait_t": (61_044_322, 61_730_960),
    "cait_s": (163_472_938, 164_385_320),
    "t2t_t": (17_591_306, 67_412_936),
    "t2t_s": (12_620_506, 49_994_120),
    "t2t_b": (190_905_274, 812_859_272),
    "mobilevitv2_t": (7_280_172, 29_182_128),
    "mobilevitv2_s": (24_306_352, 97_286_848),
    "mobilevitv2_b": (46_996_328, 188_046_752),
    "cvt_b": (25_573_130, 102_323_400),
    "deepvit_t": (62_308_962, 63_070_848),
    "deepvit_s": (161_811_898, 163_100_520),
}

# The paper prints CvT-B's figures of the authors' model at 32x32 with 10 classes (6.48M params,
# 25.63M MACs), though it is registered at Table 5's 64x64 (models/baselines/cvt.py)
PAPER_INPUT = {"cvt_b": "cifar"}
# Why our ptflops MACs differ from the authors' code's (the architectures compute the same
# logits: the difference is which operations ptflops sees)
WHY = {
    "swin": "attention via scaled_dot_product_attention, which ptflops does not count",
    "cait": "the authors' einsum (bound by `from torch import einsum`) escapes ptflops; ours "
            "(torch.einsum) is counted",
    "deepvit": "as CaiT: their einsum escapes ptflops, ours is counted",
    "cvt": "their attention einsum escapes ptflops; our matmuls are counted",
}


# Where ours and the authors' differ with modules only: they pool with a module, ours by .mean
POOLING = {f: " (their pooling module)" for f in ("swin", "mobilevitv2", "cvt")}


def params(name: str, img: int, classes: int) -> int:
    model = lkca.create_model(name, img_size=img, num_classes=classes)
    return sum(p.numel() for p in model.parameters())


def measure() -> list[dict[str, Any]]:
    from ptflops import get_model_complexity_info

    rows = []
    for name, authors, shape, readme, authors_macs in ROWS:
        row: dict[str, Any] = {"name": lkca.models.registry.resolve_name(name), "alias": name,
                               "authors": authors, "shape": shape,
                               "paper": paper_figures(name), "readme": readme}
        for (key, (img, classes)), theirs in zip(INPUTS.items(), authors_macs):
            model = lkca.create_model(name, img_size=img, num_classes=classes).eval()
            macs, _ = get_model_complexity_info(model, (3, img, img), as_strings=False,
                                                print_per_layer_stat=False, verbose=False)
            modules, _ = get_model_complexity_info(
                model, (3, img, img), as_strings=False, print_per_layer_stat=False,
                verbose=False, backend_specific_config={"count_functional": False})
            row[key] = {"params": params(name, img, classes), "macs": int(macs),
                        "authors_macs": theirs, "module_macs": int(modules),
                        "authors_module_macs": AUTHORS_MODULE_MACS[name][key == "tiny"]}
        rows.append(row)
        print(name, row["cifar"], row["tiny"], flush=True)
    return rows


def _m(v: float) -> str:
    return f"{v / 1e6:.2f}M"


def _diff(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.1f}%"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of docs/baselines.md: params (equal to the authors' code's, tested) and ptflops
    MACs at 32x32 / 10 classes and 64x64 / 200 classes, beside the paper's and the README's."""
    lines = [
        "| paper row | authors' name (create_model.py line) | ours | shape (patch at 64x64) | "
        "params 32 / 64 (= authors') | paper params | README params | MACs 32 / 64 | "
        "authors' MACs 32 / 64 | paper MACs | README MACs | ours vs paper / README | "
        "modules only, ours - authors' 32 / 64 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper, readme = r["paper"], r["readme"]
        paper_input = PAPER_INPUT.get(r["alias"], "cifar" if paper["img_size"] == 32 else "tiny")
        at_paper = r[paper_input]
        vs = _diff(at_paper["macs"], paper["macs"])
        if readme:
            vs += " / " + _diff(r["tiny"]["macs"], readme[1])
        family = r["alias"].split("_")[0]
        module_diff = [r[k]["module_macs"] - r[k]["authors_module_macs"] for k in INPUTS]
        why = f" ({WHY[family]})" if family in WHY else ""
        lines.append(
            f"| {paper['row']} | `{r['authors']}` | `{r['name']}` ({r['alias']}) | {r['shape']} | "
            f"{_m(r['cifar']['params'])} / {_m(r['tiny']['params'])} | {_m(paper['params'])} "
            f"(at {INPUTS[paper_input][0]}) | {_m(readme[0]) if readme else '-'} | "
            f"{_m(r['cifar']['macs'])} / {_m(r['tiny']['macs'])} | "
            f"{_m(r['cifar']['authors_macs'])} / {_m(r['tiny']['authors_macs'])} | "
            f"{_m(paper['macs'])} | {_m(readme[1]) if readme else '-'} | {vs}{why} | "
            f"{module_diff[0]:+,} / {module_diff[1]:+,}{POOLING.get(family, '')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        rows = json.loads(OUT.read_text())["rows"]
        stale = [r["name"] for r in rows for key, (img, k) in INPUTS.items()
                 if r[key]["params"] != params(r["name"], img, k)]
        doc = DOC.read_text()
        return 1 if stale or replace_between_markers(doc, START, END, markdown(rows)) != doc else 0
    try:
        rows = measure()
    except ImportError:
        print("error: counting as the authors' count.py needs ptflops: pip install ptflops",
              file=sys.stderr)
        return 2
    OUT.write_text(json.dumps({
        "benchmark": "authors_shapes_rows", "torch": torch.__version__,
        "machine": platform.platform(), "processor": platform.processor(),
        "counting": f"ptflops {version('ptflops')} get_model_complexity_info defaults (pytorch "
                    "backend, functional ops counted), one image, eval mode",
        "authors_macs_source": "CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet "
        "@7b9370a models/<family>.py built by models/create_model.py, counted the same way",
        "rows": rows}, indent=2) + "\n")
    DOC.write_text(replace_between_markers(DOC.read_text(), START, END, markdown(rows)))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
