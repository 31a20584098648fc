"""profile(): torch's flop counter, attention and LKCA counted as their matmuls."""

import torch
from torch import nn

import lkca
from lkca import LKCA
from lkca.layers import Attention


class Tokens(nn.Module):
    def __init__(self, mixer):
        super().__init__()
        self.mixer = mixer

    def forward(self, img):  # (1, C, H, W) -> mixer over its H*W tokens
        return self.mixer(img.flatten(2).transpose(1, 2))


def test_linear_macs():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    assert lkca.profile(model, 4) == {"params": 48 * 10 + 10, "macs": 480, "token_mixing_macs": 0}


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
    m = lkca.create_model("vit_lkca_500k")
    m.train()
    lkca.profile(m, 32)
    assert m.training
    assert next(m.parameters()).grad is None
    assert isinstance(m(torch.randn(1, 3, 32, 32)), torch.Tensor)
