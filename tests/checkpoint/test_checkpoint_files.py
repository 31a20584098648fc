"""Checkpoint files are verified on load: flipped bytes in a ``.pt`` (zip CRC-32) or a
``.safetensors`` (SHA-256 of its tensors) are refused with one line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lkca.checkpoint.files import load_state, read_weights, save_state, save_weights
from lkca.errors import CheckpointError


def _flip(path: Path, at: float = 0.5, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_training_state_are_refused(tmp_path):
    path = tmp_path / "last.pt"
    save_state(path, {"model": nn.Linear(64, 64).state_dict(), "epoch": 3})
    assert load_state(path)["epoch"] == 3
    _flip(path)
    with pytest.raises(CheckpointError, match=r"last.pt is damaged \(checksum of .* does not "
                                              r"match\).*best.safetensors") as err:
        load_state(path)
    assert "\n" not in str(err.value)


def test_flipped_bytes_in_weights_are_refused(tmp_path):
    path = tmp_path / "last.safetensors"
    save_weights(path, nn.Linear(64, 64), {"model": "x"})
    tensors, meta = read_weights(path)
    assert meta == {"model": "x"} and set(tensors) == {"weight", "bias"}
    _flip(path, at=0.6)  # inside the tensor data: the header still parses
    with pytest.raises(CheckpointError, match="is damaged .*do not match their checksum.*best"):
        read_weights(path)


def test_weights_without_a_checksum_still_load(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"lkca": "{}"})
    assert read_weights(path)[0]["w"].tolist() == [1.0, 1.0]


def test_the_kill_after_write_hook_sigkills_after_the_kth_write(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from lkca.atomic_files import write_atomic\n"
            "for i in range(3): write_atomic(Path(sys.argv[1]) / f'f{i}', b'x')")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                          env=dict(os.environ, LKCA_KILL_AFTER_WRITE="2"), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1"]  # whole files, no temp
