"""A segmentation table goes the same way, through `lkca seg train` (a tiny table of our own on
an ADE20K-shaped fixture)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reproduce_kit import ROOT, starts

from lkca.cli import main

TINY = f"""base: {ROOT / 'configs' / 'seg' / 'ade20k' / 'base.yaml'}
backbone: lkca_s_seg
head: fpn
model_args: {{depth: 4, dim: 32, num_heads: 2, head_channels: 16}}
crop_size: 64
img_scale: [128, 64]
batch_size: 2
iters: 3
eval_interval: 3
warmup_iters: 1
slide_stride: 32
"""


def _ade(root: Path) -> Path:
    """Two training and one validation image in the ADEChallengeData2016 layout."""
    rng = np.random.default_rng(0)
    for split, stems in (("training", ["ADE_train_00000001", "ADE_train_00000002"]),
                         ("validation", ["ADE_val_00000001"])):
        for folder in ("images", "annotations"):
            (root / "ADEChallengeData2016" / folder / split).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
                root / "ADEChallengeData2016" / "images" / split / f"{stem}.jpg")
            Image.fromarray(rng.integers(0, 151, (24, 32), dtype=np.uint8), mode="L").save(
                root / "ADEChallengeData2016" / "annotations" / split / f"{stem}.png")
    return root


@pytest.mark.slow
def test_a_segmentation_table_runs_through_lkca_seg_train(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    spec = tmp_path / "seg_table.yaml"
    spec.write_text("title: ADE20K, tiny\nrows:\n  - row: LKCA tiny FPN\n    config: tiny.yaml\n"
                    "    paper: [60.0, 30.0]\n")
    runs = tmp_path / "runs"
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs), "--data-dir",
                 str(_ade(tmp_path / "data"))]) == 0
    run = runs / "ade20k" / "tiny" / "seed0"
    (start,) = starts(run)
    assert start["command"][1:5] == ["-m", "lkca", "seg", "train"]
    rows = list(csv.DictReader((runs / "seg_table.csv").open()))
    assert [(r["metric"], r["paper"], r["n"], r["status"]) for r in rows] == [
        ("aAcc", "60", "1", "finished"), ("top10_mIoU", "30", "1", "finished"),
        ("mIoU", "", "1", "finished")]
    assert rows[0]["model"] == "lkca_s_seg+fpn" and rows[0]["runs"] == str(run)
    assert "| LKCA tiny FPN | fpn | 3 |" in (runs / "seg_table.md").read_text()
