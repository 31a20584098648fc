"""ONNX export (onnxruntime matches PyTorch, dynamic batch) and torch.export of the LKCA mixer."""

import importlib.util

import pytest
import torch

import lkca
from lkca.cli import main
from lkca.export.onnx_export import export_onnx, lkca_impl, onnx_max_abs_diff

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the onnx extra: pip install -e '.[onnx]' (also in the test extra)",
)
TINY = {"depth": 2, "dim": 32, "num_heads": 2}


@needs_onnx
def test_cli_exports_an_lkca_model_that_onnxruntime_matches(tmp_path, capsys):
    model = lkca.create_model("vit_lkca_500k", num_classes=7, **TINY)
    model.save_pretrained(tmp_path / "pretrained")
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "pretrained"), "--format", "onnx",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "LKCA impl toeplitz" in printed and "batch 1 and 3: max abs diff" in printed
    # the input shape as the written graph has it: only the batch axis is dynamic
    assert "input 'images' (batch, 3, 32, 32), dynamic axes: batch," in printed
    assert onnx_max_abs_diff(model, out, batch_sizes=(1, 3)) <= 1e-4
    assert {m.impl for m in model.modules() if isinstance(m, lkca.LKCA)} == {"auto"}


@needs_onnx
@pytest.mark.parametrize("name, overrides, impl", [
    # the authors' ViT-LKCA (one kernel per block, projections) on a non-square grid
    ("vit_lkca_500k", {**TINY, "kernel_size": 5, "img_size": (32, 48)}, "conv"),
    ("vit_lkca_500k", {**TINY, "kernel_heads": None}, "toeplitz"),  # a kernel per head
    ("vit_lkca_500k", {**TINY, "mixers": "attn_lkca"}, "toeplitz"),  # SA + LKCA + MLP
    ("vit_500k", TINY, "toeplitz"),  # plain ViT (attention, class token): impl is not used
    # (shifted) window attention and patch merging, two tiny stages
    ("swin_t_cifar", {"embed_dim": 8, "depths": (2, 2), "num_heads": (2, 2)}, "toeplitz"),
    # the authors' architectures: talking heads, re-attention (einsum), soft splits (unfold),
    # convolutional projections, MobileViT blocks; tiny shapes
    ("cait_t", dict(dim=16, depth=1, cls_depth=1, num_heads=2, dim_head=4, mlp_dim=16), "conv"),
    ("deepvit_t", dict(dim=16, depth=1, num_heads=2, dim_head=4, mlp_dim=16), "conv"),
    ("t2t_s", dict(dim=16, depth=1, num_heads=2, dim_head=4, mlp_dim=16, img_size=16,
                   soft_splits=((3, 2), (3, 2))), "conv"),
    ("cvt_b", dict(dims=(8, 16, 16), depths=(1, 1, 1), num_heads=(1, 1, 1), dim_head=8), "conv"),
    ("mobilevitv2_t", dict(dims=(8, 8, 8), depths=(1, 1, 1),
                           channels=(4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 16)), "conv"),
])
def test_export_api_matches_pytorch_at_batch_1_and_3(tmp_path, name, overrides, impl):
    model = lkca.create_model(name, **overrides)
    path = export_onnx(model, tmp_path / "m.onnx", impl=impl)
    assert onnx_max_abs_diff(model, path, batch_sizes=(1, 3)) <= 1e-4


def test_export_refuses_fft_and_restores_impl(tmp_path):
    model = lkca.create_model("vit_lkca_500k", lkca_impl="conv", **TINY)
    with pytest.raises(lkca.UserError, match="does not export to ONNX"):
        export_onnx(model, tmp_path / "m.onnx", impl="fft")
    with pytest.raises(RuntimeError), lkca_impl(model, "fft"):
        assert {m.impl for m in model.modules() if isinstance(m, lkca.LKCA)} == {"fft"}
        raise RuntimeError
    assert {m.impl for m in model.modules() if isinstance(m, lkca.LKCA)} == {"conv"}


@pytest.mark.parametrize("impl", ["conv", "toeplitz", "fft"])
def test_torch_export_of_the_lkca_mixer_with_dynamic_batch(impl):
    mixer = lkca.LKCA(32, 4, (8, 6), impl=impl).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(mixer, (torch.randn(2, 48, 32),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, 48, 32)
    torch.testing.assert_close(program.module()(x), mixer(x), atol=1e-5, rtol=0)


def test_torch_export_of_auto_keeps_the_batch_dynamic(fresh_autotune):
    """While exporting, ``auto`` times nothing and its choice does not depend on the batch."""
    mixer = lkca.LKCA(32, 4, (8, 6), impl="auto").eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    with torch.no_grad():
        program = torch.export.export(mixer, (torch.randn(2, 48, 32),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, 48, 32)
    torch.testing.assert_close(program.module()(x), mixer(x), atol=1e-5, rtol=0)
    traced = {k: c for k, c in lkca.impl_choices(details=True).items() if " B* " in k}
    assert [c["source"] for c in traced.values()] == ["rule"], traced


@needs_onnx
@pytest.mark.parametrize("impl, dynamo", [("fft", True), ("conv", False), ("toeplitz", False)])
def test_why_not_fft_nor_the_legacy_exporter(tmp_path, impl, dynamo):
    """The claims of lkca.export.onnx_export's docstring: fft has no ONNX conversion, and the
    TorchScript exporter (dynamo=False) fails for the other implementations too."""
    import warnings

    model = lkca.create_model("vit_lkca_500k", lkca_impl=impl, depth=1, dim=16, num_heads=2).eval()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017 - any exporter failure
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), dynamo=dynamo,
                          dynamic_axes=None if dynamo else {"images": {0: "batch"}},
                          input_names=["images"])


def test_cli_mistakes_are_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch):
    lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=3, head_channels=8, img_size=64,
                          depth=4, dim=16, num_heads=2).save_pretrained(tmp_path / "seg")
    cases = {
        str(tmp_path / "seg"): "is a segmentor; `lkca export` exports classifiers",
        str(tmp_path / "nothing"): "does not exist",
    }
    if importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxscript"):
        for checkpoint, needle in cases.items():
            assert main(["export", "--checkpoint", checkpoint, "--out", str(tmp_path / "m.onnx")]) == 2
            err = capsys.readouterr().err
            assert needle in err and err.count("\n") == 1, err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else real(n, *a))
    assert main(["export", "--checkpoint", str(tmp_path / "seg"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "needs onnxscript; install them with pip install 'lkca[onnx]'" in err


@needs_onnx
def test_a_model_the_exporter_cannot_convert_is_a_one_line_user_error(tmp_path):
    """E.g. attention over 5-D tensors (window attention): onnxscript's SDPA takes 4-D only."""
    from types import SimpleNamespace

    import torch.nn.functional as F
    from torch import nn

    class FiveD(nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = SimpleNamespace(img_size=8, in_chans=3)
            self.head = nn.Linear(192, 2)

        def forward(self, x):
            q = x.reshape(x.shape[0], 1, 3, 8, 8)  # (B, windows, heads, N, d)
            return self.head(F.scaled_dot_product_attention(q, q, q).flatten(1))

    with pytest.raises(lkca.UserError, match="FiveD does not export to ONNX: .*4D") as err:
        export_onnx(FiveD(), tmp_path / "m.onnx")
    assert "\n" not in str(err.value)


def _saved_tiny(tmp_path):
    lkca.create_model("vit_lkca_500k", num_classes=7, **TINY).save_pretrained(tmp_path / "p")
    return tmp_path / "p"


@needs_onnx
def test_a_full_disk_keeps_the_previous_onnx_whole_and_blames_the_disk(tmp_path, capsys,
                                                                      monkeypatch):
    import errno
    import os

    from lkca import atomic_files
    from tests.tiny_train import assert_refused

    pretrained = _saved_tiny(tmp_path)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous export" * 1000)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", full)
    err = assert_refused(capsys, ["export", "--checkpoint", str(pretrained), "--out", str(out)],
                         f"could not write {out}: No space left on device (the previous file is "
                         "kept); free disk space", tmp_path)
    assert "does not export" not in err and "report this" not in err
    monkeypatch.setattr(atomic_files.os, "fsync", os.fsync)


def test_an_out_that_cannot_be_written_is_refused_before_exporting(tmp_path, capsys, monkeypatch):
    import os
    import stat

    from tests.tiny_train import assert_refused

    pretrained = _saved_tiny(tmp_path)
    (tmp_path / "file").write_text("mine")
    cases = {tmp_path / "file" / "sub" / "x.onnx": "is not a folder"}
    try:
        os.mknod(tmp_path / "device", stat.S_IFCHR | 0o600, os.makedev(1, 7))  # /dev/full's
        cases[tmp_path / "device"] = "is a device node"
    except PermissionError:
        pass  # making a device node needs root
    os.mkfifo(tmp_path / "fifo")
    cases[tmp_path / "fifo"] = "is a FIFO"
    read_only = tmp_path / "ro"
    read_only.mkdir()
    cases[read_only / "sub" / "x.onnx"] = "is not writable"
    real = os.access  # root writes where chmod forbids; access(2) answers EROFS for a ro mount
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(read_only)
                        else real(p, mode))
    for out, expected in cases.items():
        assert_refused(capsys, ["export", "--checkpoint", str(pretrained), "--out", str(out)],
                       expected, tmp_path)
