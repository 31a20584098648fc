"""Attention, LKA, MLP, DropPath, patch and position embedding."""

import pytest
import torch
import torch.nn.functional as F

from lkca.layers import LKA, Attention, DropPath, Mlp, PatchEmbed, PosEmbed


def test_attention_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    m = Attention(32, 4).eval()
    x = torch.randn(2, 10, 32)
    q, k, v = m.qkv(x).reshape(2, 10, 3, 4, 8).permute(2, 0, 3, 1, 4)
    attn = F.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    ref = m.proj((attn @ v).transpose(1, 2).reshape(2, 10, 32))
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


def test_lka_shape_and_receptive_field():
    m = LKA(4, (25, 25))
    x = torch.zeros(1, 625, 4, requires_grad=True)
    out = m(x)
    assert out.shape == x.shape
    out[0, 12 * 25 + 12].sum().backward()
    rows = (x.grad[0].abs().sum(-1).reshape(25, 25) > 0).any(1).nonzero().flatten()
    # 5x5 (reach 2) then 7x7 with dilation 3 (reach 9): rows 12 - 11 .. 12 + 11
    assert (rows.min().item(), rows.max().item()) == (1, 23)


def test_mlp_and_drop_path():
    assert Mlp(8, 16)(torch.randn(3, 5, 8)).shape == (3, 5, 8)
    dp = DropPath(0.5)
    x = torch.ones(1000, 4)
    dp.train()
    y = dp(x)
    kept = (y[:, 0] != 0).float().mean()
    assert 0.4 < kept < 0.6 and torch.allclose(y[y != 0], torch.tensor(2.0))
    dp.eval()
    assert torch.equal(dp(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_patch_embed_grid_and_divisibility():
    pe = PatchEmbed(32, 4, 3, 16)
    tokens, grid = pe(torch.randn(2, 3, 32, 48))
    assert grid == (8, 12) and tokens.shape == (2, 96, 16)
    with pytest.raises(ValueError, match="not divisible by the patch size 4"):
        pe(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="not divisible"):
        PatchEmbed(30, 4, 3, 16)


def test_pos_embed_interpolates_to_a_new_grid():
    pe = PosEmbed((4, 4), 8)
    x = torch.zeros(1, 16, 8)
    torch.testing.assert_close(pe(x, (4, 4)), pe.pos)
    assert pe(torch.zeros(2, 48, 8), (6, 8)).shape == (2, 48, 8)
