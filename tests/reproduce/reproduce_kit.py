"""A table of our own on the digits data: two rows (the demo model with one and two blocks),
runs of a few seconds, and the helpers that read and compare what runs wrote (imported by the tests here)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "cls" / "digits" / "default.yaml"
TIMING = ("images_per_s",)  # metrics.jsonl fields that measure time, not the run


def write_digits_table(folder: Path, epochs: int = 3) -> Path:
    """``folder/table.yaml`` with rows "1 block" (d1.yaml) and "2 blocks" (d2.yaml)."""
    folder.mkdir(parents=True, exist_ok=True)
    for depth in (1, 2):
        (folder / f"d{depth}.yaml").write_text(
            f"base: {DIGITS}\nmodel_args: {{depth: {depth}}}\n"
            f"epochs: {epochs}\n"
            "warmup_epochs: 1\nmax_steps_per_epoch: 4\n")
    spec = folder / "table.yaml"
    spec.write_text("title: Digits, one block vs two\nrows:\n"
                    "  - row: 1 block\n    config: d1.yaml\n    paper: 90.0\n"
                    "  - row: 2 blocks\n    config: d2.yaml\n")
    return spec


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def starts(run_dir: Path) -> list[dict]:
    from lkca.reproduce.child import read_log

    return [r for r in read_log(run_dir) if r["event"] == "start"]


def wait_for(condition, what: str, timeout: float = 240.0) -> None:
    """Poll ``condition()`` until true (the verdicts never depend on how long it took)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pending_signals(pid: int) -> int:
    """The signals pending for process ``pid`` (thread and process masks), from /proc."""
    mask = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            mask |= int(line.split()[1], 16)
    return mask


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "T",
             f"process {pid} to stop")
