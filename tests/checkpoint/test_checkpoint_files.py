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


# --- hostile checkpoints: refused in one line, before anything is allocated ---------------------

def _tiny_model_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor], dict]:
    """A tiny classifier saved as a pretrained folder's weights file (its record inside)."""
    import json

    import lkca

    model = lkca.create_model("vit_lkca_500k", num_classes=10, img_size=8, depth=1, dim=16,
                              num_heads=2, patch_size=4)
    lkca.save_pretrained(model, tmp_path / "p")
    path = tmp_path / "p" / "model.safetensors"
    tensors, meta = read_weights(path)
    (tmp_path / "p" / "config.json").unlink()  # the file alone: its metadata is the record
    json.dumps(meta)
    return path, tensors, meta


def _rewrite(path: Path, tensors: dict[str, torch.Tensor], meta) -> None:
    import json

    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={"lkca": json.dumps(meta)})


@pytest.mark.parametrize("change, expected", [
    (lambda t: t.__setitem__("head.weight", torch.full_like(t["head.weight"], float("nan"))),
     "holds non-finite weights (NaN or inf in head.weight)"),
    (lambda t: t.__setitem__("head.weight", t["head.weight"].to(torch.int8)),
     "holds weights of another kind (head.weight torch.int8 where the model has torch.float32)"),
    (lambda t: t.__setitem__("head.weight", t["head.weight"] > 0),
     "head.weight torch.bool where"),
])
def test_non_float_and_non_finite_weights_are_refused(tmp_path, capsys, change, expected):
    from tiny_train import assert_refused

    path, tensors, meta = _tiny_model_file(tmp_path)
    change(tensors)
    _rewrite(path, tensors, meta)
    assert_refused(capsys, ["eval", "--checkpoint", str(path), "--device", "cpu"], expected,
                   tmp_path)


def test_complex_weights_in_a_training_state_are_refused(tmp_path, capsys):
    from tiny_train import assert_refused

    path, tensors, meta = _tiny_model_file(tmp_path)
    tensors["head.bias"] = tensors["head.bias"].to(torch.complex64)
    save_state(tmp_path / "x.pt", {"model": tensors, "meta": meta})
    assert_refused(capsys, ["eval", "--checkpoint", str(tmp_path / "x.pt"), "--device", "cpu"],
                   "head.bias torch.complex64 where the model has torch.float32", tmp_path)


@pytest.mark.parametrize("state, expected", [
    ([1, 2, 3], "holds a list, not the training state of lkca train"),
    ({"model": {"w": 1}, "meta": {"model": "x"}}, "holds no weights (a mapping of names to"),
    ({"model": {"w": torch.ones(1)}, "meta": [1]}, "has a damaged metadata record (a list"),
])
def test_a_training_state_of_another_structure_is_refused(tmp_path, capsys, state, expected):
    from tiny_train import assert_refused

    save_state(tmp_path / "x.pt", state)
    if isinstance(state, dict) and isinstance(state.get("meta"), dict):  # weights of a real record
        _, _, meta = _tiny_model_file(tmp_path)
        save_state(tmp_path / "x.pt", {**state, "meta": meta})
    assert_refused(capsys, ["eval", "--checkpoint", str(tmp_path / "x.pt"), "--device", "cpu"],
                   expected, tmp_path)


def _crafted_safetensors(path: Path, header: dict, size: int) -> None:
    """A safetensors header followed by a sparse hole up to ``size`` bytes (no disk used)."""
    import json

    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    with open(path, "r+b") as f:
        f.truncate(size)


def test_a_sparse_huge_safetensors_is_refused_without_reading_it(tmp_path):
    """A 20 GB sparse file of zeros, and one whose header claims a 6 GB tensor the model does
    not have: each refused from its header, under a 6 GiB address-space cap."""
    from memory_cap import assert_refused_capped

    path, tensors, meta = _tiny_model_file(tmp_path)
    zeros = tmp_path / "zeros.safetensors"
    with open(zeros, "wb") as f:
        f.truncate(20 * 2**30)
    assert_refused_capped(["eval", "--checkpoint", str(zeros), "--device", "cpu"],
                          "is corrupt or truncated (a header of 0 bytes", tmp_path)
    import json

    entries: dict = {"__metadata__": {"lkca": json.dumps(meta)}}
    offset = 0
    for name, t in tensors.items():
        numel = (6 * 2**30 // 4) if name == "head.weight" else t.numel()
        shape = [numel // 16, 16] if name == "head.weight" else list(t.shape)
        entries[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * numel]}
        offset += 4 * numel
    huge = tmp_path / "huge.safetensors"
    _crafted_safetensors(huge, entries, 8 + len(json.dumps(entries)) + offset)
    assert_refused_capped(["eval", "--checkpoint", str(huge), "--device", "cpu"],
                          "does not fit this model (shape mismatch head.weight (100663296, 16)",
                          tmp_path)
    entries["head.bias"]["data_offsets"] = [offset, offset + 40]  # past the file's end
    _crafted_safetensors(huge, entries, 8 + len(json.dumps(entries)) + offset)
    assert_refused_capped(["eval", "--checkpoint", str(huge), "--device", "cpu"],
                          "tensor 'head.bias' has an entry outside the file's", tmp_path)
