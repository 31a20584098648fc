"""SIGKILL at random moments (and during a checkpoint write), then resume: the final weights and
metrics equal an uninterrupted run's, and no checkpoint is ever half-written."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

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


def _metrics(out: Path):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, crash_kit):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    argv = ["train", "--config", str(cfg), "--out"]
    ref = crash_kit.start(argv + [str(tmp_path / "ref")])
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    out = tmp_path / "killed"
    kills = crash_kit.kill_and_resume(argv + [str(out)], out, kills=3)
    assert kills >= 3, kills
    ref_w = load_file(str(tmp_path / "ref" / "checkpoints" / "last.safetensors"))
    got_w = load_file(str(out / "checkpoints" / "last.safetensors"))
    for k in ref_w:
        assert torch.equal(ref_w[k], got_w[k]), k
    assert _metrics(tmp_path / "ref") == _metrics(out)
