"""One run, several table rows: a tiny `lkca seg train` on the ADE20K-layout fixture evaluates
after the iterations it names (``eval_iters``), logs each evaluation, and `lkca tables` reads two
rows from that one run (the one-run reading of Tables 6-7, docs/segmentation.md section 4); the
per-row reading of the same table reads runs of the rows' own lengths instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lkca.analysis import paper_report, paper_tables
from lkca.analysis.paper_tables import SegBackbone, SegRow, SegTable
from lkca.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = f"""base: {ROOT / 'configs' / 'seg' / 'ade20k' / 'base.yaml'}
backbone: lkca_s_seg
head: fpn
model_args: {{depth: 4, dim: 16, num_heads: 2, head_channels: 8}}
crop_size: 32
img_scale: [64, 32]
batch_size: 2
iters: 4
eval_interval: 100
eval_iters: [2, 3]
warmup_iters: 1
impl_policy: rule
device: cpu
progress: false
"""
FAKE = {"params": 1_000_000, "macs": 60_000_000, "token_mixing_macs": 10_000_000}


def _cells(md: str, iters: int) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:3] == ["LKCA tiny", "fpn", str(iters)]:
            return cells
    raise AssertionError(f"no row at {iters} iterations")


def test_one_run_evaluated_at_named_iterations_fills_two_rows(ade, tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(TINY)
    run = tmp_path / "runs" / "tiny"
    assert main(["seg", "train", "--config", str(tmp_path / "tiny.yaml"), "--data-dir", str(ade),
                 "--out", str(run)]) == 0
    evaluations = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in evaluations] == [2, 3, 4]  # the named two, and the last
    by_iter = {e["iter"]: e for e in evaluations}

    # a two-row table read from one 4-iteration run, through `lkca tables` (counts faked)
    spec = SegBackbone("lkca_s_seg", {"depth": 4, "dim": 16, "num_heads": 2, "head_channels": 8,
                                      "neck_resample": "bilinear"})
    rows = tuple(SegRow("LKCA tiny", it, "fpn", 50.0, 30.0, None, None, model=spec)
                 for it in (2, 3))
    monkeypatch.setitem(paper_tables.TABLES, 7, SegTable(7, "tiny", rows, 32, run_iters=4))
    monkeypatch.setattr(paper_report, "profile_segmentor", lambda *a: dict(FAKE))
    monkeypatch.setattr(paper_report.Profiler, "_cache", {})
    out = tmp_path / "table.md"
    assert main(["tables", "--runs", str(tmp_path / "runs"), "--table", "7", "--out",
                 str(out)]) == 0
    md = out.read_text()
    for it in (2, 3):
        cells = _cells(md, it)
        assert cells[9] == f"{by_iter[it]['aAcc']:.2f}" and cells[12] == (
            f"{by_iter[it]['top10_mIoU']:.2f}") and cells[14] == f"{by_iter[it]['mIoU']:.2f}"
    assert md.count(f"`{run}`") == 2  # both rows name the one run

    # the per-row reading asks for runs of 2 and 3 iterations: there are none
    assert main(["tables", "--runs", str(tmp_path / "runs"), "--table", "7", "--seg-reading",
                 "per-row", "--out", str(out)]) == 0
    assert [_cells(out.read_text(), it)[9] for it in (2, 3)] == ["no run", "no run"]


@pytest.mark.parametrize("bad, message", [("[0]", "eval_iters 0 is outside 1..iters (4)"),
                                          ("[5]", "eval_iters 5 is outside 1..iters (4)"),
                                          ("[two]", "eval_iters must be a list of ints")])
def test_eval_iters_outside_the_run_is_one_clear_line(tmp_path, capsys, bad, message):
    (tmp_path / "tiny.yaml").write_text(TINY.replace("eval_iters: [2, 3]", f"eval_iters: {bad}"))
    assert main(["seg", "train", "--config", str(tmp_path / "tiny.yaml"), "--data-dir",
                 str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "r").exists()
