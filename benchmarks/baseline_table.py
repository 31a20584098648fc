"""Regenerate the comparison-model table of docs/baselines.md and results/baselines.json.

Every registered baseline (paper Tables 4-5, ``lkca.models.baselines``) profiled at the input its
paper figures hold for: our params and MACs beside the paper's "# Params" and "Flops".

    python benchmarks/baseline_table.py            # rewrites docs/baselines.md between markers
    python benchmarks/baseline_table.py --check    # exit 1 if docs/baselines.md is out of date
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lkca.analysis.tables import baseline_rows, model_table_markdown, replace_between_markers

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "baselines.md"
START, END = "<!-- baselines:start -->", "<!-- baselines:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    rows = baseline_rows()
    table = model_table_markdown(rows)
    doc = DOC.read_text()
    updated = replace_between_markers(doc, START, END, table)
    if args.check:
        return 0 if updated == doc else 1
    DOC.write_text(updated)
    out = ROOT / "benchmarks" / "results" / "baselines.json"
    result = {"benchmark": "baseline_table", "torch": torch.__version__,
              "counting": "lkca.profile: torch.utils.flop_counter / 2, one image, eval mode; "
                          "'token_mixing_macs' = attention matmuls, left out of the paper's counts",
              "rows": rows}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
