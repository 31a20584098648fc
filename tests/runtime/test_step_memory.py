"""The memory one training step needs at least (src/lkca/runtime/step_memory.py): counted on the
meta device as autograd would keep it on the CPU, and a step past the device's memory refused in
one line before anything is created."""

from __future__ import annotations

import pytest
import torch
from tiny_train import TINY_TRAIN_YAML, assert_refused

import lkca
from lkca.runtime import step_memory
from lkca.runtime.step_memory import step_bytes

SMALL = {"img_size": 8, "num_classes": 10, "depth": 2, "dim": 32, "num_heads": 2}


@pytest.mark.parametrize("name", ["vit_lkca_500k", "vit_500k"])
def test_the_meta_count_is_what_autograd_keeps_on_the_cpu(name):
    torch.manual_seed(0)
    cpu = lkca.create_model(name, **SMALL)
    with torch.device("meta"):
        meta = lkca.create_model(name, **SMALL)
    assert step_bytes(meta, (4, 3, 8, 8)) == step_bytes(cpu, (4, 3, 8, 8))


def test_the_count_grows_with_the_batch_and_halves_its_activations_under_autocast():
    with torch.device("meta"):
        model = lkca.create_model("vit_lkca_500k", **SMALL)
    weights = 4 * sum(p.numel() * 4 for p in model.parameters())  # + grads + AdamW's moments
    one, two, four = (step_bytes(model, (b, 3, 8, 8)) - weights for b in (16, 32, 64))
    # affine in the batch: per-image activations, plus the kernel crops no image adds to
    assert 0 < two - one and four - two == 2 * (two - one)
    assert step_bytes(model, (16, 3, 8, 8), "bf16") - weights == one // 2


def test_a_step_past_the_devices_memory_is_refused_before_anything_is_created(tmp_path, capsys,
                                                                               monkeypatch):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TRAIN_YAML + "epochs: 1\nmax_steps_per_epoch: 1\nprogress: false\n")
    monkeypatch.setattr(step_memory, "device_memory", lambda device: 2**20)  # a 1 MiB machine
    assert_refused(capsys, ["train", "--config", str(cfg), "--device", "cpu", "--out",
                            str(tmp_path / "run")],
                   "images needs at least 0.0 GiB, more than the 0.0 GiB of this machine's memory; "
                   "lower batch_size (or the model's size)", tmp_path)


def test_a_model_the_meta_device_cannot_run_is_not_estimated():
    class ReadsBack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) * float(x.sum())  # a value read back: no meta kernel can

    with torch.device("meta"):
        model = ReadsBack()
    assert step_bytes(model, (2, 8)) is None


@pytest.mark.parametrize("backbone", ["lkca_s_seg", "vit_s_seg"])
def test_segmentors_are_estimated_too(backbone):
    from lkca.seg.segmentor import create_segmentor

    with torch.device("meta"):
        model = create_segmentor(backbone, "upernet", 150, img_size=64)
    assert step_bytes(model, (2, 3, 64, 64)) > 4 * sum(p.numel() * 4 for p in model.parameters())
