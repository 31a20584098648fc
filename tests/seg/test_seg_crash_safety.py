"""`lkca seg train` killed with SIGKILL inside a checkpoint write and at random moments, then
resumed: the final weights and metrics equal an uninterrupted run's; no file is half-written.

The runs compared are separate runs, so they choose LKCA's implementation by the fixed rule
(``impl_policy: rule``): autotune times its candidates on the machine as it is, and on a busy one
two runs may choose differently (a resumed run replays its own run's choices, not another's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_train import TINY_SEG_YAML

BASE = Path(__file__).resolve().parents[2] / "configs" / "seg" / "ade20k" / "base.yaml"


@pytest.mark.slow
def test_seg_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, tiny_train_data,
                                                                crash_kit):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY_SEG_YAML.format(base=BASE, iters=40, eval_interval=4)
                   + "impl_policy: rule\n")
    argv = ["seg", "train", "--config", str(cfg), "--data-dir", str(tmp_path / "data")]
    crash_kit.killed_run_equals_uninterrupted(argv, tmp_path)
