"""lkca.from_authors_checkpoint: a state dict in the authors' key layout, built here from the
documented names and shapes (docs/pretrained-and-export.md) with random values, loads and gives
the output of a reference forward written here from the math; foreign, wrong-shaped and unsafe
files are refused in one line."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lkca
from lkca.authors import swin, twins
from lkca.authors.loader import FAMILIES, LAYOUTS
from lkca.authors.vit import LAYOUTS as AUTHORS_LAYOUTS
from lkca.authors.vit import converter_for
from lkca.errors import CheckpointError, UserError

DIM, DEPTH, HEADS, CLASSES, P, GRID = 24, 2, 4, 10, 4, 8  # 32 px images, an 8 x 8 grid
SHAPE = dict(dim=DIM, depth=DEPTH, num_heads=HEADS)


def _random(shape, gen):
    return torch.randn(shape, generator=gen) * 0.3


def authors_state(lkca_block: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """The keys and shapes of largevit_cnn.py (lkca_block) or SPT's vit.py, random values."""
    g = torch.Generator().manual_seed(seed)
    n = GRID * GRID + (0 if lkca_block else 1)
    s = {"to_patch_embedding.1.weight": _random((DIM, P * P * 3), g),
         "to_patch_embedding.1.bias": _random((DIM,), g),
         "pos_embedding": _random((1, n, DIM), g), "cls_token": _random((1, 1, DIM), g)}
    for i in range(DEPTH):
        b = f"transformer.layers.{i}"
        s[f"{b}.0.norm.weight"] = 1 + _random((DIM,), g)
        s[f"{b}.0.norm.bias"] = _random((DIM,), g)
        if lkca_block:
            s[f"{b}.0.fn.to_v.weight"] = _random((DIM, DIM), g)
            s[f"{b}.0.fn.dynamicqk"] = _random((1, 1, 2 * GRID - 1, 2 * GRID - 1), g)
        else:
            s[f"{b}.0.fn.to_qkv.weight"] = _random((3 * DIM, DIM), g)
        s[f"{b}.0.fn.to_out.0.weight"] = _random((DIM, DIM), g)
        s[f"{b}.0.fn.to_out.0.bias"] = _random((DIM,), g)
        s[f"{b}.1.norm.weight"] = 1 + _random((DIM,), g)
        s[f"{b}.1.norm.bias"] = _random((DIM,), g)
        s[f"{b}.1.fn.net.0.weight"] = _random((2 * DIM, DIM), g)
        s[f"{b}.1.fn.net.0.bias"] = _random((2 * DIM,), g)
        s[f"{b}.1.fn.net.3.weight"] = _random((DIM, 2 * DIM), g)
        s[f"{b}.1.fn.net.3.bias"] = _random((DIM,), g)
    s.update({"mlp_head.0.weight": 1 + _random((DIM,), g), "mlp_head.0.bias": _random((DIM,), g),
              "mlp_head.1.weight": _random((CLASSES, DIM), g),
              "mlp_head.1.bias": _random((CLASSES,), g)})
    return s


def _ln(x, w, b):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * w + b


def _kernel_matrix(k: torch.Tensor) -> torch.Tensor:
    """(2H-1, 2W-1) kernel -> the (N, N) matrix of the zero-padded cross-correlation with padding
    H - 1: output token (i, j) takes input token (a, b) with weight k[H-1 + a-i, W-1 + b-j]."""
    m = torch.zeros(GRID * GRID, GRID * GRID, dtype=k.dtype)
    for i in range(GRID):
        for j in range(GRID):
            for a in range(GRID):
                for b in range(GRID):
                    m[i * GRID + j, a * GRID + b] = k[GRID - 1 + a - i, GRID - 1 + b - j]
    return m


def reference(s: dict[str, torch.Tensor], img: torch.Tensor, lkca_block: bool) -> torch.Tensor:
    """The authors' forward from the math: patches in (p1 p2 c) order, Linear, position table
    (ViT: class token first), pre-LN residual blocks, head LN + Linear (mean or class token)."""
    B = img.shape[0]
    patches = img.reshape(B, 3, GRID, P, GRID, P).permute(0, 2, 4, 3, 5, 1).reshape(B, -1, P * P * 3)
    x = patches @ s["to_patch_embedding.1.weight"].T + s["to_patch_embedding.1.bias"]
    if not lkca_block:
        x = torch.cat([s["cls_token"].expand(B, -1, -1), x], dim=1)
    x = x + s["pos_embedding"]
    for i in range(DEPTH):
        b = f"transformer.layers.{i}"
        y = _ln(x, s[f"{b}.0.norm.weight"], s[f"{b}.0.norm.bias"])
        if lkca_block:
            v = y @ s[f"{b}.0.fn.to_v.weight"].T
            mixed = _kernel_matrix(s[f"{b}.0.fn.dynamicqk"][0, 0]) @ v  # no softmax, no scale
        else:
            q, k, v = (y @ s[f"{b}.0.fn.to_qkv.weight"].T).chunk(3, dim=-1)
            q, k, v = (t.reshape(B, -1, HEADS, DIM // HEADS).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax(q @ k.transpose(-1, -2) * (DIM // HEADS) ** -0.5, dim=-1)
            mixed = (att @ v).transpose(1, 2).reshape(B, -1, DIM)
        x = x + mixed @ s[f"{b}.0.fn.to_out.0.weight"].T + s[f"{b}.0.fn.to_out.0.bias"]
        y = _ln(x, s[f"{b}.1.norm.weight"], s[f"{b}.1.norm.bias"])
        h = F.gelu(y @ s[f"{b}.1.fn.net.0.weight"].T + s[f"{b}.1.fn.net.0.bias"])
        x = x + h @ s[f"{b}.1.fn.net.3.weight"].T + s[f"{b}.1.fn.net.3.bias"]
    pooled = x.mean(dim=1) if lkca_block else x[:, 0]
    return _ln(pooled, s["mlp_head.0.weight"], s["mlp_head.0.bias"]) @ s["mlp_head.1.weight"].T \
        + s["mlp_head.1.bias"]


@pytest.mark.parametrize("lkca_block, name", [(True, "vit_lkca_500k"), (False, "vit_500k")])
def test_an_authors_checkpoint_gives_the_reference_output(tmp_path, lkca_block, name):
    state = authors_state(lkca_block)
    path = tmp_path / "checkpoint.pth"
    if lkca_block:  # what main.py saves at the end of an epoch
        torch.save({"model_state_dict": state, "epoch": 3, "optimizer_state_dict": {}}, path)
    else:  # its last line: the bare state dict
        torch.save(state, path)
    img = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = reference(state, img, lkca_block)
    for impl in ("conv", "toeplitz", "fft"):
        model = lkca.from_authors_checkpoint(path, name, lkca_impl=impl, **SHAPE)
        assert model.cfg.num_classes == CLASSES and model.cfg.img_size == 32  # read from the file
        with torch.no_grad():
            torch.testing.assert_close(model(img), expected, rtol=1e-5, atol=1e-5)


def _refused(capture, match: str) -> str:
    message = str(capture.value)
    assert "\n" not in message and match in message, message
    assert isinstance(capture.value, UserError)
    return message


def test_foreign_and_wrong_shaped_state_dicts_are_refused_in_one_line(tmp_path):
    vit = authors_state(lkca_block=False)
    with pytest.raises(CheckpointError) as err:
        lkca.from_authors_checkpoint(vit, "vit_lkca_500k", **SHAPE)
    _refused(err, "load it as vit_<size>")
    with pytest.raises(CheckpointError) as err:
        lkca.from_authors_checkpoint({"conv1.weight": torch.zeros(3)}, "lkca_b")
    _refused(err, "'conv1.weight' is not in the authors'")
    small_kernel = dict(authors_state(True))
    small_kernel["transformer.layers.1.0.fn.dynamicqk"] = torch.zeros(1, 1, 7, 7)
    with pytest.raises(CheckpointError) as err:
        lkca.from_authors_checkpoint(small_kernel, "vit_lkca_500k", **SHAPE)
    _refused(err, "blocks.1.mixer.weight is (1, 7, 7) in the file, (1, 15, 15) in the model")
    with pytest.raises(CheckpointError) as err:  # the registered depth 8, the file has 2 blocks
        lkca.from_authors_checkpoint(authors_state(True), "vit_lkca_500k", dim=DIM, num_heads=4)
    _refused(err, "lacks 'blocks.2.norm1.weight'")
    with pytest.raises(CheckpointError) as err:  # a ViT-LKCA's tensors given as another family
        lkca.from_authors_checkpoint(authors_state(True), "swin_t")
    _refused(err, "not the authors' Swin layout: no 'patch_embed.proj.weight'")
    with pytest.raises(CheckpointError) as err:  # the digits demo is ours alone
        lkca.from_authors_checkpoint(authors_state(True), "lkca_digits")
    _refused(err, "lkca_digits has no authors' checkpoint layout")
    with pytest.raises(CheckpointError) as err:
        lkca.from_authors_checkpoint(tmp_path / "missing.pth", "lkca_b")
    _refused(err, "does not exist")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_pickle_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": authors_state(True), "epoch": _Payload(marker)}, path)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))  # the payload does run if unpickled
    assert (tmp_path / "control").exists()
    with pytest.raises(CheckpointError) as err:
        lkca.from_authors_checkpoint(path, "vit_lkca_500k", **SHAPE)
    _refused(err, "refused: loading it could run code")
    assert not marker.exists()


def test_other_families_plug_in_by_prefix():
    assert converter_for("vit_lkca_2p7m") is AUTHORS_LAYOUTS["vit_lkca_"]
    assert converter_for("vit_2p7m") is AUTHORS_LAYOUTS["vit_"]
    assert converter_for("swin_t") is None  # the ViT layouts alone
    assert converter_for("swin_t_cifar", LAYOUTS) is swin.LAYOUTS["swin_"]
    assert converter_for("twins_svt_s_tiny", LAYOUTS) is twins.LAYOUTS["twins_svt_"]
    assert converter_for("vit_lkca_2p7m", LAYOUTS) is AUTHORS_LAYOUTS["vit_lkca_"]


def test_every_family_module_is_one_the_loader_dispatches_to():
    """A module of lkca.authors holding a family's LAYOUTS is in the loader's FAMILIES (a new
    family is its module and its name there), and no two families claim one prefix."""
    import importlib
    import pkgutil

    import lkca.authors

    modules = [importlib.import_module(f"lkca.authors.{m.name}")
               for m in pkgutil.iter_modules(lkca.authors.__path__) if m.name != "loader"]
    assert {m.__name__ for m in modules if hasattr(m, "LAYOUTS")} == {f.__name__ for f in FAMILIES}
    assert len(LAYOUTS) == sum(len(f.LAYOUTS) for f in FAMILIES)


def _cifar10(root: Path, images, labels) -> None:
    """DIR/cifar-10-batches-py as distributed: 5 train batches and the test batch (pickles)."""
    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"labels": [int(v) for v in labels],
                 b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.uint8)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_lkca_eval_starts_from_an_authors_checkpoint(tmp_path, capsys, monkeypatch):
    import numpy as np

    from lkca.cli import main

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    state = authors_state(True)
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)  # SPT's CIFAR-10 statistics
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    predicted = reference(state, (x - mean) / std, True).argmax(-1)
    labels = predicted.numpy().copy()
    labels[:2] = (labels[:2] + 1) % CLASSES  # 4 of 6 right: 66.67%
    _cifar10(tmp_path / "data", images, labels)
    path = tmp_path / "authors.pth"
    torch.save({"model_state_dict": state, "epoch": 99}, path)
    args = ["eval", "--authors-checkpoint", str(path), "--device", "cpu"]
    assert main(args + ["--model", "vit_lkca_500k", "--dataset", "cifar10"]) == 2  # depth 8 != 2
    assert "lacks 'blocks.2.norm1.weight'" in capsys.readouterr().err
    assert main(args + ["--dataset", "cifar10"]) == 2
    assert "needs --model NAME" in capsys.readouterr().err
    from lkca.models import registry
    from lkca.models.vit_sizes import AUTHORS_LKCA, _build

    def _tiny(**overrides):  # the authors' block at the test's small shape, for this test only
        return _build(dict(img_size=32, patch_size=4, num_classes=10, mlp_ratio=2.0,
                           **SHAPE, **AUTHORS_LKCA), overrides)

    monkeypatch.setitem(registry._FACTORIES, "vit_lkca_tiny_test_only", _tiny)

    assert main(args + ["--model", "vit_lkca_tiny_test_only", "--dataset", "cifar10",
                        "--data-dir", str(tmp_path / "data")]) == 0
    assert "vit_lkca_tiny_test_only on cifar10 test: top-1 66.67%" in capsys.readouterr().out


def test_lkca_export_starts_from_an_authors_checkpoint(tmp_path, capsys, monkeypatch):
    """docs/pretrained-and-export.md: ``lkca export --authors-checkpoint PATH --model NAME --out
    FILE`` writes a graph that gives the reference forward's output."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")):
        pytest.skip("needs the onnx extra: pip install -e '.[onnx]' (also in the test extra)")
    import numpy as np
    import onnxruntime

    from lkca.cli import main
    from lkca.models import registry
    from lkca.models.vit_sizes import AUTHORS_LKCA, _build

    def _tiny(**overrides):  # the authors' block at the test's small shape, for this test only
        return _build(dict(img_size=32, patch_size=4, num_classes=10, mlp_ratio=2.0,
                           **SHAPE, **AUTHORS_LKCA), overrides)

    monkeypatch.setitem(registry._FACTORIES, "vit_lkca_tiny_test_only", _tiny)
    state = authors_state(True)
    path = tmp_path / "authors.pth"
    torch.save({"model_state_dict": state, "epoch": 99}, path)
    out = tmp_path / "lkca.onnx"
    args = ["export", "--authors-checkpoint", str(path), "--out", str(out)]
    assert main(args) == 2
    assert "needs --model NAME" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--model", "vit_lkca_tiny_test_only"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "batch 1 and 3: max abs diff" in printed
    img = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": img.numpy()})
    np.testing.assert_allclose(logits, reference(state, img, True).numpy(), rtol=1e-4, atol=1e-4)
    # the source is never a valid output
    assert main(["export", "--authors-checkpoint", str(path), "--model", "vit_lkca_tiny_test_only",
                 "--out", str(path)]) == 2
    assert "is the file this command reads" in capsys.readouterr().err


@pytest.mark.parametrize("key, tensor, expected", [
    ("mlp_head.1.weight", lambda: torch.empty(10**8, 0), "has a zero-sized dimension (100000000, 0)"),
    ("pos_embedding", lambda: torch.empty(1, 4096**2, 0), "has a zero-sized dimension (1, 16777216"),
    ("mlp_head.1.weight", lambda: torch.zeros(1, DIM).expand(10**8, DIM),
     "holds fewer bytes than its shape (an expanded view)"),
])
def test_crafted_shapes_are_refused_before_anything_is_allocated(tmp_path, key, tensor, expected):
    """Shapes that would make lkca build a 40 GB head or a 5 GB position table, refused from the
    file under a 6 GiB address-space cap (a regression fails fast, not by taking the machine)."""
    from memory_cap import assert_refused_capped

    state = authors_state(True)
    state[key] = tensor()
    torch.save({"model_state_dict": state}, tmp_path / "authors.pth")
    assert_refused_capped(["eval", "--authors-checkpoint", "authors.pth", "--model",
                           "vit_lkca_500k", "--dataset", "cifar10", "--data-dir", "none",
                           "--device", "cpu"], expected, tmp_path)


def test_an_authors_checkpoint_over_the_size_lkca_builds_is_refused(tmp_path):
    state = authors_state(True)
    state["mlp_head.1.weight"] = torch.zeros(10**6, DIM)  # 24M head parameters: a real 96 MB file
    state["mlp_head.1.bias"] = torch.zeros(10**6)
    with pytest.raises(CheckpointError) as err:  # fits, but the shape check below counts it
        lkca.from_authors_checkpoint(state, "vit_lkca_500k", dim=DIM * 2000, depth=DEPTH,
                                     num_heads=HEADS)
    _refused(err, "over the 1,000,000,000 lkca builds")
