"""The registered ViT / ViT-LKCA sizes are the authors' models (docs/models.md): parameter counts
derived here from the documented shapes, the zero kernel, the head's order, the block."""

from __future__ import annotations

import pytest
import torch

import lkca
from lkca.layers import LKCA

# The shapes of CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet models/create_model.py
# (dim, depth, heads, MLP ratio), as docs/models.md lists them.
LKCA_SHAPES = {"vit_lkca_500k": (100, 8, 4, 2), "vit_lkca_1m": (136, 9, 8, 2),
               "vit_lkca_2m": (192, 9, 12, 2), "vit_lkca_2p7m": (210, 10, 10, 2),
               "vit_lkca_4m": (246, 11, 6, 2), "vit_lkca_8m": (306, 14, 6, 2),
               "vit_lkca_12m": (360, 12, 8, 3)}
VIT_SHAPES = {"vit_500k": (120, 4, 4, 2), "vit_1m": (136, 7, 8, 2), "vit_2m": (200, 6, 8, 2),
              "vit_2p7m": (192, 9, 12, 2), "vit_4m": (264, 7, 8, 2), "vit_8m": (312, 10, 8, 2)}
SETTINGS = [(32, 10), (32, 100), (64, 200)]  # CIFAR-10, CIFAR-100 (and SVHN), Tiny-ImageNet


def linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def authors_lkca_params(dim, depth, heads, ratio, img, classes, cls_token=True):
    """largevit_cnn.py: patch Linear(3 p^2, dim), position table (1, N, dim), the unused class
    token (1, 1, dim); per block LN, value Linear (no bias), one (2H-1)^2 kernel, output Linear,
    LN, MLP dim -> ratio dim -> dim; head LN + Linear."""
    p, grid = img // 8, 8
    hidden = dim * ratio
    block = (2 * dim + linear(dim, dim, False) + (2 * grid - 1) ** 2 + linear(dim, dim)
             + 2 * dim + linear(dim, hidden) + linear(hidden, dim))
    return (linear(3 * p * p, dim) + grid * grid * dim + (dim if cls_token else 0)
            + depth * block + 2 * dim + linear(dim, classes))


def authors_vit_params(dim, depth, heads, ratio, img, classes):
    """SPT's models/vit.py: patch Linear, class token, (1, 1 + N, dim) position table; per block
    LN, qkv Linear (no bias), output Linear, LN, MLP; head LN + Linear."""
    p, n = img // 8, 64
    hidden = dim * ratio
    block = (2 * dim + linear(dim, 3 * dim, False) + linear(dim, dim) + 2 * dim
             + linear(dim, hidden) + linear(hidden, dim))
    return (linear(3 * p * p, dim) + dim + (n + 1) * dim + depth * block + 2 * dim
            + linear(dim, classes))


def count(name: str, img: int, classes: int) -> int:
    with torch.device("meta"):
        model = lkca.create_model(name, num_classes=classes, img_size=img)
    return sum(p.numel() for p in model.parameters())


def test_the_formulas_give_the_counts_quoted_from_the_authors_code():
    assert authors_lkca_params(*LKCA_SHAPES["vit_lkca_2p7m"], 32, 10) == 2_691_520
    assert authors_lkca_params(*LKCA_SHAPES["vit_lkca_2p7m"], 64, 200) == 2_761_850
    assert authors_lkca_params(*LKCA_SHAPES["vit_lkca_500k"], 32, 10) == 500_810
    assert authors_vit_params(*VIT_SHAPES["vit_500k"], 32, 10) == 479_890


@pytest.mark.parametrize("img, classes", SETTINGS)
def test_every_size_has_the_authors_parameter_count(img, classes):
    """ViT: exactly the authors' count. ViT-LKCA: the authors' count less the class token they
    create and never use (dim parameters; docs/models.md says why it is left out)."""
    for name, shape in VIT_SHAPES.items():
        assert count(name, img, classes) == authors_vit_params(*shape, img, classes), name
    for name, shape in LKCA_SHAPES.items():
        ours = count(name, img, classes)
        assert ours == authors_lkca_params(*shape, img, classes, cls_token=False), name
        assert ours == authors_lkca_params(*shape, img, classes) - shape[0], name


def test_the_authors_block_and_its_fresh_kernels():
    torch.manual_seed(0)
    model = lkca.create_model("vit_lkca_500k")
    block = model.blocks[0]
    assert [k for k, _ in block.named_children()] == ["norm1", "mixer", "norm2", "mlp",
                                                      "drop_path"]
    mixer = block.mixer
    assert isinstance(mixer, LKCA) and mixer.weight.shape == (1, 15, 15)
    assert mixer.v_proj.bias is None and mixer.proj.bias is not None
    kernels = [m.weight for m in model.modules() if isinstance(m, LKCA)]
    assert len(kernels) == 8 and all((k == 0).all() for k in kernels)
    assert model.cls_token is None and model.pos_embed.pos.shape == (1, 64, 100)
    assert 0.9 < model.pos_embed.pos.std().item() < 1.1  # torch.randn, as the authors'


def test_the_head_is_mean_then_layernorm_then_linear():
    """mlp_head(x.mean(dim=1)) of largevit_cnn.py line 166, checked against the other order."""
    torch.manual_seed(0)
    model = lkca.create_model("vit_lkca_500k", depth=2).eval()
    with torch.no_grad():
        for p in model.norm.parameters():
            p.normal_()
        x = torch.randn(3, 3, 32, 32)
        tokens, _ = model.forward_features(x)  # the last block's tokens, not normalised
        norm = model.norm
        pooled = tokens.mean(dim=1)
        mu, var = pooled.mean(-1, keepdim=True), pooled.var(-1, unbiased=False, keepdim=True)
        expected = ((pooled - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
                    ) @ model.head.weight.T + model.head.bias
        other = norm(tokens).mean(dim=1) @ model.head.weight.T + model.head.bias
        out = model(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert (out - other).abs().max() > 1e-3  # the order matters, so the check can fail


def test_one_drop_path_rate_for_both_branches():
    model = lkca.create_model("lkca_b", drop_path_rate=0.1)
    assert {b.drop_path.drop_prob for b in model.blocks} == {0.1}
