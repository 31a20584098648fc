"""The block-reading fit (benchmarks/block_readings.py): its committed output is what the script
computes, and LKCA-S follows its best reading (docs/block-readings.md); the registered ViT-LKCA
sizes are the authors' models instead (tests/models/test_authors_models.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lkca.seg.backbone import create_backbone

ROOT = Path(__file__).resolve().parents[2]
RESULTS = json.loads((ROOT / "benchmarks" / "results" / "block_readings.json").read_text())


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("block_readings",
                                                  ROOT / "benchmarks" / "block_readings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(name):
    (row,) = [r for r in RESULTS["classification"] if name in r["rows"]]
    return row


@pytest.mark.slow
def test_the_whole_fit_regenerates(script):
    """Every count of the committed JSON and of the doc's tables, recomputed from models as built
    (the width interpolation checks itself against two more widths)."""
    assert script.main(["--check"]) == 0


def test_counts_are_quadratic_in_the_width(script):
    """The interpolation the fit rests on, at a width it did not use: params and MACs of a build
    equal the polynomial's (for the reading with the most kinds of weights)."""
    counts = script._counts_in_width_and_depth("attn_lkca_head", 32, 10)
    args = script.cls_model_args("attn_lkca_head", 208, 13, 1, 32, 10)
    assert counts[208] == script._linear_in_depth(args, 32)


def test_lkca_b_is_best_fitted_by_sa_lkca_mlp_with_a_kernel_per_block():
    row = _row("LKCA-B")
    pinned = row["pinned"]
    assert min(pinned, key=lambda r: pinned[r]["max_err"]) == "attn_lkca_block"
    assert pinned["attn_lkca_block"]["params"] == 2_697_523
    assert pinned["lkca_only"]["params"] == 2_751_010
    assert row["best"] == "attn_lkca_block"
    assert (row["readings"]["attn_lkca_block"]["dim"], row["readings"]["attn_lkca_block"]["depth"]
            ) == (192, 9)  # the free search lands on SPT's ViT-B shape


def test_lkca_s_follows_table_7():
    (t7,) = [t for t in RESULTS["segmentation"] if t["table"] == 7]
    fit = t7["readings"]["lkca_only_block"]
    assert fit["depth"] == 12 and fit["heads"]["fpn"]["in_rounding"]
    cfg = create_backbone("lkca_s_seg").cfg
    assert (cfg.mixers, cfg.kernel_heads, cfg.depth) == ("lkca", 1, 12)
    assert t7["readings"]["lkca_only"]["max_err"] > 0.03  # a kernel per head does not fit
