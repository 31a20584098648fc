"""Regenerate the README's model table (params and MACs beside the paper's) and models.json.

    python benchmarks/model_table.py            # rewrites README.md between the markers
    python benchmarks/model_table.py --check    # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lkca.analysis.tables import model_rows, replace_between_markers, vit_table_markdown

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- models:start -->", "<!-- models:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    rows = model_rows()
    table = vit_table_markdown(rows)
    readme = (ROOT / "README.md").read_text()
    updated = replace_between_markers(readme, START, END, table)
    if args.check:
        return 0 if updated == readme else 1
    (ROOT / "README.md").write_text(updated)
    out = ROOT / "benchmarks" / "results" / "models.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
