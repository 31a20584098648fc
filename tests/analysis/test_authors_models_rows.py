"""docs/baselines.md's block of the RvT, RegionViT, CrossViT, XCiT and Twins-SVT rows is the one
rendered from benchmarks/results/authors_models_rows.json, whose parameter counts are today's models'
and whose authors' columns equal ours (their code counted by benchmarks/authors_models_rows.py)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import lkca

ROOT = Path(__file__).resolve().parents[2]
RESULT = json.loads((ROOT / "benchmarks" / "results" / "authors_models_rows.json").read_text())


def test_docs_block_is_rendered_from_the_json(monkeypatch):
    spec = importlib.util.spec_from_file_location("authors_models_rows",
                                                  ROOT / "benchmarks" / "authors_models_rows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["authors_models_rows.py", "--check"])
    assert module.main() == 0, "docs/baselines.md is stale: run python benchmarks/authors_models_rows.py"
    assert [r["name"] for r in RESULT["rows"]] == [r[2] for r in module.ROWS]


@pytest.mark.parametrize("row", RESULT["rows"], ids=[r["name"] for r in RESULT["rows"]])
def test_json_rows_are_todays_models_and_equal_the_authors_code(row):
    for img, classes in ((32, 10), (64, 200)):
        model = lkca.create_model(row["name"], img_size=img, num_classes=classes)
        assert row[f"params_{img}"] == sum(p.numel() for p in model.parameters())
        assert row[f"authors_params_{img}"] == row[f"params_{img}"]
    assert row["macs_64"] == row["authors_macs_64"]
    if not row["name"].startswith("twins_svt"):  # the authors' Twins-SVT fails at 32 px
        assert row["macs_32"] == row["authors_macs_32"]
    assert abs(row["params_64"] - row["readme_params"]) <= 5000  # README: M to 2 decimals
