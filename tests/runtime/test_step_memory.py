"""The memory one training step needs at least (src/lkca/runtime/step_memory.py): counted on the
meta device as autograd would keep it on the CPU, and a step (or an inference command's forward)
past the device's memory refused in one line before anything is created."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from tiny_train import TINY_TRAIN_YAML, assert_refused

import lkca
from lkca.runtime import step_memory
from lkca.runtime.step_memory import forward_bytes, step_bytes

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


# --- one inference forward (lkca erf, export, profile, kernels, seg predict) -----------------------


@pytest.mark.parametrize("input_grad", [True, False])
def test_the_forward_count_on_the_meta_device_is_the_cpus(input_grad):
    torch.manual_seed(0)
    cpu = lkca.create_model("vit_lkca_500k", **SMALL)
    with torch.device("meta"):
        meta = lkca.create_model("vit_lkca_500k", **SMALL)
    shape = (4, 3, 8, 8)
    assert forward_bytes(meta, shape, "toeplitz", input_grad) == \
        forward_bytes(cpu, shape, "toeplitz", input_grad)
    assert all(p.requires_grad for p in cpu.parameters())  # frozen for the count only


def test_the_forward_count_holds_weights_batch_and_what_the_input_gradient_keeps():
    with torch.device("meta"):
        model = lkca.create_model("vit_lkca_500k", **SMALL)
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert forward_bytes(model, None) == weights
    image = 4 * 3 * 8 * 8
    no_grad, with_grad = (forward_bytes(model, (16, 3, 8, 8), input_grad=g) for g in (False, True))
    # without a gradient: one intermediate beside the batch; with it, every kept one and the grad
    assert weights + 16 * image < no_grad < with_grad - 16 * image
    assert forward_bytes(model, (32, 3, 8, 8), input_grad=True) - with_grad < with_grad


@pytest.fixture
def tiny_machine(monkeypatch):
    monkeypatch.setattr(step_memory, "device_memory", lambda device: 2**10)  # a 1 KiB machine


REFUSED = "GiB, more than the 0.0 GiB of this machine's memory; pass a smaller --img-size"


def test_erf_past_the_memory_is_refused_before_anything_is_created(tmp_path, capsys,
                                                                  tiny_machine):
    assert_refused(capsys, ["erf", "--model", "vit_lkca_500k", "--img-size", "64",
                            "--out", str(tmp_path / "erf.png")],
                   "one forward of vit_lkca_500k on a batch of 32 64x64 images with the gradient "
                   "of the input needs at least 0.0 " + REFUSED + " (or --num-images)", tmp_path)


def test_profile_and_kernels_past_the_memory_are_refused(tmp_path, capsys, tiny_machine):
    assert_refused(capsys, ["profile", "--model", "vit_lkca_500k", "--img-size", "256"],
                   "one forward of vit_lkca_500k on a batch of 1 256x256 images needs at least "
                   "0.0 " + REFUSED, tmp_path)
    assert_refused(capsys, ["kernels", "--model", "vit_lkca_500k", "--img-size", "256",
                            "--out", str(tmp_path / "k.png")],
                   "building vit_lkca_500k needs at least 0.0 " + REFUSED, tmp_path)


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")),
                    reason="needs the onnx extra (in the test extra)")
def test_export_past_the_memory_is_refused_before_the_onnx_is_written(tmp_path, capsys,
                                                                      tiny_machine):
    lkca.create_model("vit_lkca_500k", num_classes=7, depth=2, dim=32,
                      num_heads=2).save_pretrained(tmp_path / "p")
    assert_refused(capsys, ["export", "--checkpoint", str(tmp_path / "p"), "--out",
                            str(tmp_path / "m.onnx"), "--img-size", "64"],
                   "one forward of vit_lkca_500k on a batch of 3 64x64 images needs at least "
                   "0.0 " + REFUSED, tmp_path)


def test_seg_predict_past_the_memory_is_refused_before_the_png_is_written(tmp_path, capsys,
                                                                          tiny_machine):
    import numpy as np
    from PIL import Image

    lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=150, head_channels=8, img_size=64,
                          depth=4, dim=16, num_heads=2).save_pretrained(tmp_path / "p")
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "im.png")
    for mode, fix in [("whole", "predict with --mode slide (one crop at a time)"),
                      ("slide", "predict on a device with more memory (--device)")]:
        assert_refused(capsys, ["seg", "predict", "--checkpoint", str(tmp_path / "p"), "--image",
                                str(tmp_path / "im.png"), "--mode", mode, "--device", "cpu"],
                       f"one forward of fpn + lkca_s_seg on a batch of 1 "
                       f"{'512x688' if mode == 'whole' else '64x64'} images needs at least 0.0 "
                       f"GiB, more than the 0.0 GiB of this machine's memory; {fix}", tmp_path)


def test_erf_of_a_4096_image_is_refused_under_an_address_space_cap(tmp_path):
    from memory_cap import CAP_BYTES, assert_refused_capped

    assert_refused_capped(["erf", "--model", "vit_lkca_500k", "--img-size", "4096"],
                          f"GiB, more than the {CAP_BYTES / 2**30:.1f} GiB of this machine's "
                          "memory; pass a smaller --img-size (or --num-images)", tmp_path)
