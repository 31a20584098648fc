"""profile(): torch's flop counter, attention and LKCA counted as their matmuls; the one MACs
comparison with the paper's "Flops" (without the token mixing)."""

import pytest
import torch
from torch import nn

import lkca
from lkca import LKCA
from lkca.layers import Attention
from lkca.models.profile import macs_without_mixing, paper_comparison
from lkca.models.registry import paper_figures


class Tokens(nn.Module):
    def __init__(self, mixer):
        super().__init__()
        self.mixer = mixer

    def forward(self, img):  # (1, C, H, W) -> mixer over its H*W tokens
        return self.mixer(img.flatten(2).transpose(1, 2))


def test_linear_macs():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    assert lkca.profile(model, 4) == {"params": 48 * 10 + 10, "macs": 480, "token_mixing_macs": 0,
                                      "ptflops_macs": 480 + 10}  # ptflops adds the bias once


def test_lkca_counted_as_c_times_n_squared_whatever_the_impl():
    for impl in ("conv", "fft", "auto"):
        m = Tokens(LKCA(16, 4, 6, impl=impl))
        stats = lkca.profile(m, 6, in_chans=16)
        assert stats["macs"] == stats["token_mixing_macs"] == 16 * 36 * 36
        assert m.mixer.impl == impl  # restored


def test_attention_matmuls_are_counted_on_cpu():
    m = Tokens(Attention(16, 4))
    n = 36
    linear = n * 16 * 48 + n * 16 * 16
    stats = lkca.profile(m, 6, in_chans=16)
    assert stats["macs"] == linear + 2 * n * n * 16
    assert stats["token_mixing_macs"] == 2 * n * n * 16


def test_profile_keeps_training_mode():
    m = lkca.create_model("lkca_digits")
    m.train()
    lkca.profile(m, 8)
    assert m.training
    assert next(m.parameters()).grad is None
    assert isinstance(m(torch.randn(1, 3, 8, 8)), torch.Tensor)


def test_macs_without_mixing_is_the_one_comparison_with_the_papers_flops():
    stats = lkca.profile(lkca.create_model("vit_2p7m"), 32)  # SPT's ViT-B, the paper's "ViT"
    assert macs_without_mixing(stats) == stats["macs"] - stats["token_mixing_macs"] == 173_115_264
    cmp = paper_comparison(stats, paper_figures("vit_2p7m"))
    assert cmp["macs_without_mixing"] == 173_115_264 and cmp["paper_macs"] == 174.25e6
    assert cmp["macs_diff"] == pytest.approx(173_115_264 / 174.25e6 - 1)  # -0.65%
    assert cmp["params_diff"] == pytest.approx(2_692_426 / 2.69e6 - 1)
    assert stats["macs"] / 174.25e6 - 1 > 0.07  # with token mixing: 187.7M, +7.7%: not comparable
    assert paper_comparison(stats, {})["macs_diff"] is None


def _linear(n, i, o, bias=True):  # ptflops: input elements x out features, + out once for a bias
    return n * i * o + (o if bias else 0)


def test_the_papers_flops_are_the_ptflops_count_row_by_row():
    """ptflops' module hooks as in the authors' count.py: Linear (bias once), LayerNorm 2 per
    element, GELU and softmax 1 per element, the functional products nothing; written out for
    ViT-B (SPT's, 65 tokens) and LKCA-B (the authors', 64 tokens), both at 32 px, 10 classes."""
    from lkca.models.profile import ptflops_macs

    def block(n, dim, mixer):
        return (2 * (2 * n * dim) + mixer + _linear(n, dim, dim) + _linear(n, dim, 2 * dim)
                + n * 2 * dim + _linear(n, 2 * dim, dim))

    head = 2 * 192 + _linear(1, 192, 10)
    vit = _linear(64, 48, 192) + 9 * block(65, 192, _linear(65, 192, 576, False) + 12 * 65 * 65)
    lkca_b = (_linear(64, 48, 210) + 10 * block(64, 210, _linear(64, 210, 210, False))
              + 2 * 210 + _linear(1, 210, 10))
    x = torch.zeros(1, 3, 32, 32)
    assert ptflops_macs(lkca.create_model("vit_2p7m"), x) == vit + head == 174_252_982
    assert ptflops_macs(lkca.create_model("lkca_b"), x) == lkca_b == 170_806_660
    assert (round(vit / 1e4), round(lkca_b / 1e4)) == (17425, 17081)  # the paper's 174.25M, 170.81M
    for name in ("vit_2p7m", "lkca_b"):
        assert lkca.profile(lkca.create_model(name), 32)["ptflops_macs"] == ptflops_macs(
            lkca.create_model(name), x)
