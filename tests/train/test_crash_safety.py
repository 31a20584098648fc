"""SIGKILL at random moments (and during a checkpoint write), then resume: the final weights and
metrics equal an uninterrupted run's, and no checkpoint is ever half-written."""

import pytest

CONFIG = """dataset: digits
model: vit_lkca_500k
model_args: {depth: 2, dim: 32, num_heads: 2, mixers: LA}
epochs: 10
warmup_epochs: 1
batch_size: 32
max_steps_per_epoch: 6
device: cpu
progress: false
"""


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, crash_kit):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    crash_kit.killed_run_equals_uninterrupted(["train", "--config", str(cfg)], tmp_path)
