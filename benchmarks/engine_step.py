"""The training step of ``lkca train`` itself, timed: shared by gpu_acceptance.py (section
``engine``) and train_throughput.py (``--engine``).

:func:`engine_rate` runs :func:`lkca.train.engine.train` on a synthetic CIFAR-10 (noise images
written in CIFAR-10's own file format to a temporary folder; the engine then holds them on the
device, as it holds the real data set) with a paper config (configs/cls/cifar10/<model>.yaml:
AutoAugment cifar10, random erasing 0.25, Mixup/CutMix, label smoothing, stochastic depth, the
Session, fused AdamW and the warm-up/cosine schedule) for two short epochs, and reads the
training images/s of the second from ``metrics.jsonl``: the engine times an epoch's steps from
its first to its end-of-epoch read of the device (which waits for the last step), evaluation
and checkpoints excluded, and the first epoch holds the start-up (LKCA's autotuning, compiling).

:func:`bare_rate` times the model's own step on the same batch (forward, cross-entropy,
backward, fused AdamW; no augmentation, mixing, schedule or guard), the floor the engine's step
is compared with.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The paper's CIFAR-10 run (docs/recipe.md): 100 epochs of 3 x 50,000 images in steps of 128
PAPER_EPOCHS, PAPER_STEPS_PER_EPOCH, PAPER_BATCH = 100, 1171, 128
PAPER_IMAGES = PAPER_EPOCHS * PAPER_STEPS_PER_EPOCH * PAPER_BATCH  # its training images


def write_cifar10(root: Path, train_images: int, test_images: int, seed: int = 0) -> Path:
    """CIFAR-10's files (5 training batches, a test batch) of uint8 noise under ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = -(-train_images // 5)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test_images)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
    return root


def engine_rate(model: str, precision: str, compile: bool, steps: int, data_dir: Path,
                out: Path, device: str, batch_size: int = PAPER_BATCH) -> dict[str, Any]:
    """Training images/s of ``lkca train``'s second epoch of ``steps`` steps (the first: start-up),
    with the paper config of ``model`` at ``precision``, eager or ``compile``; and the projected
    hours of the paper's CIFAR-10 training steps at that rate (100 x 1,171 x 128 images)."""
    from lkca.train.config import build_config
    from lkca.train.engine import train

    cfg = build_config(ROOT / "configs" / "cls" / "cifar10" / f"{model}.yaml", sets={
        "data_dir": str(data_dir), "out": str(out), "epochs": 2, "warmup_epochs": 1,
        "max_steps_per_epoch": steps, "batch_size": batch_size, "precision": precision,
        "compile": compile, "progress": False, "device": device, "eval_batch_size": 500})
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the engine's log lines: not on our stdout
        train(cfg)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    ips = rows[-1]["images_per_s"]
    step_s = batch_size / ips
    return {"model": model, "precision": precision, "compiled": compile, "batch": batch_size,
            "steps_per_epoch": steps, "images_per_s": ips, "step_ms": step_s * 1e3,
            "first_epoch_images_per_s": rows[0]["images_per_s"], "wall_s": wall,
            "paper_run_hours": PAPER_IMAGES / ips / 3600}


def bare_rate(model_name: str, steps: int, device: Any, batch_size: int = PAPER_BATCH,
              sync: Any = lambda: None, precision: str = "fp32") -> dict[str, Any]:
    """Images/s of the model's own training step (forward under ``precision``'s autocast,
    cross-entropy, backward, fused AdamW) on one fixed batch, after 2 untimed steps."""
    import torch
    import torch.nn.functional as F

    import lkca
    from lkca.runtime.device import mixed_precision

    torch.manual_seed(0)
    model = lkca.create_model(model_name, num_classes=10, img_size=32).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    amp = mixed_precision(torch.device(device), precision)

    def step() -> None:
        with amp:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_s = (time.perf_counter() - start) / steps
    return {"model": model_name, "batch": batch_size, "steps": steps, "precision": precision,
            "images_per_s": batch_size / step_s, "step_ms": step_s * 1e3}
