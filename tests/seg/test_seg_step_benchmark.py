"""benchmarks/seg_step.py at a small size (the full run takes about 6 minutes): every worker
builds its segmentor, optimiser and schedule as `lkca seg train` does and trains one iteration,
and the JSON holds a row per combination with the checks, so the benchmark cannot rot unnoticed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seg_step.py"


@pytest.mark.slow
def test_seg_step_runs_at_a_small_size(tmp_path):
    out = tmp_path / "seg_step.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "64", "--batch", "2", "--rounds",
                           "1", "--threads", "1", "--out", str(out)], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, LKCA_AUTOTUNE_CACHE=""))
    assert out.is_file(), proc.stderr[-3000:]
    data = json.loads(out.read_text())
    # exit 1 says a speed check failed (timings at this size, beside other tests, mean nothing)
    assert proc.returncode == (0 if all(c["pass"] for c in data["checks"].values()) else 1)
    rows = {(r["head"], r["backbone"]): r for r in data["rows"]}
    assert set(rows) == {(h, b) for h in ("upernet", "fpn") for b in ("vit_s_seg", "lkca_s_seg")}
    assert all(r["s_per_iter"] > 0 and r["params"] > 0 for r in rows.values())
    assert set(data["checks"]) == {"lkca_s_not_slower_than_vit_s_upernet",
                                   "lkca_s_not_slower_than_vit_s_fpn"}
    assert data["models"] == ["lkca_s_seg", "vit_s_seg"] and data["lkca_version"]
