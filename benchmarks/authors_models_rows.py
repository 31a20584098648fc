"""The RvT, RegionViT, CrossViT, XCiT and Twins-SVT rows of docs/baselines.md against the authors'.

For each row of the authors' ``models/create_model.py`` (CatworldLee/LKCA-MiniViTsTrainer-
Pytorch-CIFAR-TinyImageNet): our parameters at CIFAR (32 px, 10 classes) and Tiny-ImageNet (64 px,
200 classes), and our MACs counted as the authors' ``count.py`` counts them (ptflops
``get_model_complexity_info``, backend "pytorch", one image), beside their README's Table 5
figures (Tiny-ImageNet) and the paper's. With ``--authors-repo DIR`` (a checkout of the authors'
repository; needs einops) their own models are built and counted the same way, for the
"authors' code" columns. Needs ptflops (``pip install ptflops``; lkca itself does not).

    python benchmarks/authors_models_rows.py --authors-repo DIR   # rewrites the JSON and the docs block
    python benchmarks/authors_models_rows.py --check               # exit 1 if the docs block is stale
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "baselines.md"
OUT = ROOT / "benchmarks" / "results" / "authors_models_rows.json"
START, END = "<!-- authors-models-rows:start -->", "<!-- authors-models-rows:end -->"

# (paper row, authors' create_model name, our name, shape as create_model.py gives it,
#  README "# Parameters", README "Flops" (Tiny-ImageNet, 64 px, 200 classes))
ROWS = [
    ("RvT-T", "rvt-t", "rvt_t_tiny", "dim 64, depth 6, 8 heads x 64, mlp 64", 1.10e6, 57.61e6),
    ("RvT-S", "rvt-s", "rvt_s_tiny", "dim 128, depth 7, 8 heads x 64, mlp 128", 2.72e6, 145.09e6),
    ("RegionViT-T", "regionvit-t", "regionvit_t_tiny", "dims 48/72/108/112, depths 1/1/2/1",
     0.97e6, 29.38e6),
    ("RegionViT-S", "regionvit-s", "regionvit_s_tiny", "dims 48/96/128/256, depths 1/2/3/2",
     2.86e6, 53.82e6),
    ("RegionViT-B", "regionvit-b", "regionvit_b_tiny", "dims 64/128/256/512, depths 2/2/8/2",
     12.39e6, 195.02e6),
    ("CrossViT-T", "crossvit-t", "crossvit_t_tiny",
     "dims 102/102, enc 1/4, mlp 102, 8 heads x 16, cross 1, depth 2", 1.04e6, 57.59e6),
    ("CrossViT-S", "crossvit-s", "crossvit_s_tiny",
     "dims 128/128, enc 1/4, mlp 128, 8 heads x 16, cross 2, depth 3", 2.40e6, 126.11e6),
    ("XCiT-T", "xcit-t", "xcit_t_tiny", "dim 120, depth 8 + 2, 4 heads x 30, mlp 120",
     0.96e6, 51.44e6),
    ("XCiT-S", "xcit-s", "xcit_s_tiny", "dim 192, depth 10 + 2, 4 heads x 48, mlp 192",
     2.81e6, 157.54e6),
    ("Twins_SVT-S", "twinssvt-s", "twins_svt_s_tiny", "dims 16/16/24/48, depths 1/1/2/1",
     2.76e6, 197.00e6),
    ("Twins_SVT-B", "twinssvt-b", "twins_svt_b_tiny", "dims 16/32/64/128, depths 1/1/3/2",
     9.04e6, 308.74e6),
]
INPUTS = ((32, 10), (64, 200))


def ptflops_macs(model: torch.nn.Module, img: int) -> int | None:
    """MACs of one image as the authors' count.py counts them (None where the model fails)."""
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(model.eval(), (3, img, img), as_strings=False,
                                        print_per_layer_stat=False, verbose=False,
                                        backend="pytorch")
    return macs


def authors_models(repo: Path, img: int, classes: int) -> dict[str, Any]:
    """The authors' create_model() for each row (their code, imported from ``repo``). Their
    models/swin.py imports timm, which no row here builds: a stand-in module satisfies the import."""
    import types

    if "timm" not in sys.modules:
        layers = types.ModuleType("timm.models.layers")
        layers.to_2tuple = layers.trunc_normal_ = None  # type: ignore[attr-defined]
        for name, module in (("timm", types.ModuleType("timm")),
                             ("timm.models", types.ModuleType("timm.models")),
                             ("timm.models.layers", layers)):
            sys.modules[name] = module
    sys.path.insert(0, str(repo))
    from models.create_model import create_model  # the authors' module

    out = {}
    for _, name, *_ in ROWS:
        out[name] = create_model(img, classes, argparse.Namespace(model=name, sd=0.1))
    return out


def converted_logit_diff(theirs: torch.nn.Module, name: str, img: int,
                         classes: int) -> float | None:
    """Largest |logit difference| between their model and ours loaded with its state dict
    through its family's converter (``lkca.authors.loader.LAYOUTS``; eval mode, 2 random images;
    None where their code fails)."""
    import lkca
    from lkca.authors.loader import LAYOUTS
    from lkca.authors.vit import converter_for

    convert = converter_for(name, LAYOUTS)
    assert convert is not None, name
    ours = lkca.create_model(name, img_size=img, num_classes=classes).eval()
    ours.load_state_dict(convert(theirs.state_dict()))
    x = torch.randn(2, 3, img, img, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        try:
            reference = theirs.eval()(x)
        except Exception:  # their Twins-SVT at 32x32: an 8x8 window on a 4x4 map
            return None
        return float((ours(x) - reference).abs().max())


def measure(authors_repo: Path | None) -> dict[str, Any]:
    from importlib import metadata

    import lkca
    from lkca.models.registry import paper_figures

    rows = []
    for paper_row, authors, ours, shape, readme_params, readme_macs in ROWS:
        paper = paper_figures(ours)
        row: dict[str, Any] = {
            "paper_row": paper_row, "authors_name": authors, "name": ours, "shape": shape,
            "paper_params": int(paper["params"]), "paper_macs": int(paper["macs"]),
            "readme_params": int(readme_params), "readme_macs": int(readme_macs)}
        for img, classes in INPUTS:
            model = lkca.create_model(ours, img_size=img, num_classes=classes)
            row[f"params_{img}"] = sum(p.numel() for p in model.parameters())
            row[f"macs_{img}"] = ptflops_macs(model, img)
        rows.append(row)
    if authors_repo is not None:
        for img, classes in INPUTS:
            theirs = authors_models(authors_repo, img, classes)
            for row in rows:
                model = theirs[row["authors_name"]]
                row[f"authors_params_{img}"] = sum(p.numel() for p in model.parameters())
                row[f"authors_macs_{img}"] = ptflops_macs(model, img)
                row[f"logit_maxdiff_{img}"] = converted_logit_diff(model, row["name"], img,
                                                                   classes)
    return {"benchmark": "authors_models_rows", "torch": torch.__version__,
            "ptflops": metadata.version("ptflops"), "machine": platform.platform(),
            "counting": "ptflops get_model_complexity_info(backend='pytorch'), one image, as the "
                        "authors' count.py; authors_* columns: their models/create_model.py "
                        "built from a checkout of their repository and counted the same way "
                        "(None: their code fails at that input); logit_maxdiff_*: their model "
                        "against ours loaded with its converted state dict (lkca.authors.loader.LAYOUTS)",
            "rows": rows}


def _m(x: int | None, digits: int = 2) -> str:
    return "fails" if x is None else f"{x / 1e6:.{digits}f}M"


def _diff(ours: int | None, ref: int | None) -> str:
    return "" if ours is None or ref is None else f"{100 * (ours / ref - 1):+.1f}%"


def render(result: dict[str, Any]) -> str:
    """The docs table: params at both inputs (ours / authors' code), MACs at 64 px (ours /
    authors' code / their README / the paper, ours' difference to each)."""
    lines = [
        "| paper row | authors' name | our name | shape (create_model.py) | params 32 px, 10 cl. "
        "(ours / authors') | params 64 px, 200 cl. (ours / authors' / README / paper) | "
        "MACs 64 px (ours / authors' / README / paper) | ours vs README, paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['paper_row']} | `{r['authors_name']}` | `{r['name']}` | {r['shape']} | "
            f"{r['params_32']:,} / {r.get('authors_params_32', 0):,} | "
            f"{r['params_64']:,} / {r.get('authors_params_64', 0):,} / "
            f"{_m(r['readme_params'])} / {_m(r['paper_params'])} | "
            f"{_m(r['macs_64'])} / {_m(r.get('authors_macs_64'))} / {_m(r['readme_macs'])} / "
            f"{_m(r['paper_macs'])} | {_diff(r['macs_64'], r['readme_macs'])}, "
            f"{_diff(r['macs_64'], r['paper_macs'])} |")
    return "\n".join(lines)


def replace_block(doc: str, table: str) -> str:
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare docs/baselines.md with the JSON (no ptflops needed)")
    parser.add_argument("--authors-repo", type=Path, default=None,
                        help="a checkout of the authors' repository, to count their models too")
    args = parser.parse_args()
    if args.check:
        result = json.loads(OUT.read_text())
        doc = DOC.read_text()
        return 0 if replace_block(doc, render(result)) == doc else 1
    result = measure(args.authors_repo)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    DOC.write_text(replace_block(DOC.read_text(), render(result)))
    print(render(result))
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
