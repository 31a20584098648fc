"""SIGKILL at random moments (and during a checkpoint write), then resume: the final weights and
metrics equal an uninterrupted run's, and no checkpoint is ever half-written."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lkca.train.checkpoint import load_state, read_weights

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

# Runs the CLI with fsync slowed down and announced, so the test can kill inside a write.
SLOW_FSYNC = """
import os, sys, time
import lkca.train.checkpoint as c
real = os.fsync
def slow(fd):
    print("FSYNC", flush=True)
    time.sleep(0.4)
    real(fd)
c.os.fsync = slow
from lkca.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(cfg: Path, out: Path, resume: bool, slow_fsync: bool = False) -> subprocess.Popen:
    argv = ["train", "--config", str(cfg), "--out", str(out)] + (["--resume"] if resume else [])
    head = [sys.executable, "-c", SLOW_FSYNC] if slow_fsync else [sys.executable, "-m", "lkca"]
    return subprocess.Popen(head + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _assert_intact(out: Path) -> None:
    """Whatever exists is complete: loadable state, loadable weights."""
    ck = out / "checkpoints"
    if (ck / "last.pt").exists():
        load_state(ck / "last.pt")
    for f in ck.glob("*.safetensors"):
        read_weights(f)


def _metrics(out: Path):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    ref = _start(cfg, tmp_path / "ref", resume=False)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    out = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    # 1) killed inside a checkpoint write (fsync in progress)
    proc = _start(cfg, out, resume=False, slow_fsync=True)
    for line in proc.stdout:
        if line.startswith("FSYNC"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    kills += proc.returncode == -signal.SIGKILL
    _assert_intact(out)
    # 2) killed at three random moments, resuming each time, then left to finish
    for attempt in range(4):
        resume = (out / "checkpoints" / "last.pt").exists()
        proc = _start(cfg, out, resume=resume)
        if attempt < 3:
            time.sleep(rng.uniform(1.5, 4.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            _assert_intact(out)
            continue
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert kills >= 3, kills
    ref_w = load_file(str(tmp_path / "ref" / "checkpoints" / "last.safetensors"))
    got_w = load_file(str(out / "checkpoints" / "last.safetensors"))
    for k in ref_w:
        assert torch.equal(ref_w[k], got_w[k]), k
    assert _metrics(tmp_path / "ref") == _metrics(out)
    assert not list((out / "checkpoints").glob(".*.tmp"))
