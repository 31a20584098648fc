"""`lkca seg train` killed with SIGKILL inside a checkpoint write and at random moments, then
resumed: the final weights and metrics equal an uninterrupted run's; no file is half-written.

The runs compared are separate runs, so they choose LKCA's implementation by the fixed rule
(``impl_policy: rule``): autotune times its candidates on the machine as it is, and on a busy one
two runs may choose differently (a resumed run replays its own run's choices, not another's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_train import TINY_SEG_YAML

BASE = Path(__file__).resolve().parents[2] / "configs" / "seg" / "ade20k" / "base.yaml"


@pytest.mark.slow
def test_seg_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, write_pair, crash_kit):
    root = tmp_path / "data" / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for i in range(4):
        write_pair(root, "training", f"ADE_train_{i:08d}", (32, 40), seed=i,
                   label=rng.integers(1, 4, (32, 40), dtype=np.uint8))
    write_pair(root, "validation", "ADE_val_00000001", (32, 32), seed=9)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY_SEG_YAML.format(base=BASE, iters=40, eval_interval=4)
                   + "impl_policy: rule\n")
    argv = ["seg", "train", "--config", str(cfg), "--data-dir", str(tmp_path / "data")]
    crash_kit.killed_run_equals_uninterrupted(argv, tmp_path)
