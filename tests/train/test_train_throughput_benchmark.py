"""benchmarks/train_throughput.py at a tiny setting (the real run takes about a minute): it builds
the augmentation and one training step of each model as the engine does and writes the JSON its
docs read (docs/benchmarks.md, "Training throughput"), so the benchmark cannot rot unnoticed."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_throughput.py"


def test_train_throughput_runs_at_a_tiny_setting(tmp_path):
    out = tmp_path / "train_throughput.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--batch", "8", "--pool", "16", "--rounds",
                           "1", "--warmup", "1", "--steps", "1", "--pipeline-reps", "1",
                           "--epochs-projection", "--threads", "1", "--engine", "--engine-steps", "1",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, LKCA_AUTOTUNE_CACHE=""))
    assert out.is_file(), proc.stderr[-3000:]
    data = json.loads(out.read_text())
    # exit 1 says a speed target failed (timings at this size, beside other tests, mean nothing)
    assert proc.returncode == (0 if all(t["pass"] for t in data["targets"]) else 1), proc.stderr[-3000:]
    assert set(data["models"]) == {"vit_2p7m", "vit_lkca_2p7m"} and data["lkca_version"]
    assert set(data["ratios"]) == {"pipeline_to_train vit_2p7m", "pipeline_to_train vit_lkca_2p7m",
                                   "lkca_to_vit_train"}
    assert all(data["epochs_projection"][m]["total_h"] > 0 for m in data["models"])
    for m in data["models"]:  # lkca train's real step beside the model's bare step
        engine = data["engine_step"][m]
        assert engine["engine"]["steps_per_epoch"] == 1 and engine["bare"]["images_per_s"] > 0
        assert engine["engine_to_bare"] == engine["engine"]["images_per_s"] / engine["bare"][
            "images_per_s"]
