"""Attention, LKA, MLP, DropPath and its rates, patch and position embedding, the pre-LN block."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lkca.errors import ConfigError
from lkca.layers import (
    LKA,
    Attention,
    DropPath,
    Mlp,
    PatchEmbed,
    PosEmbed,
    PreNormBlock,
    drop_path_rates,
)


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


def test_pos_embed_with_a_class_token_row_keeps_it_on_another_grid():
    pe = PosEmbed((4, 4), 8, prefix_tokens=1)
    assert pe.pos.shape == (1, 17, 8)  # SPT: num_patches + 1 rows
    torch.testing.assert_close(pe(torch.zeros(1, 17, 8), (4, 4)), pe.pos)
    out = pe(torch.zeros(2, 1 + 48, 8), (6, 8))
    assert out.shape == (2, 49, 8)
    torch.testing.assert_close(out[:, 0], pe.pos[:, 0].expand(2, 8))  # the class row as it is


def test_drop_path_rates_linear_rise_over_all_blocks_and_constant_is_flat():
    first, second = drop_path_rates(0.3, [1, 3])
    assert first == [0.0] and second == pytest.approx([0.1, 0.2, 0.3])
    assert drop_path_rates(0.1, [1]) == [[0.0]]
    assert drop_path_rates(0.1, [2, 3], "constant") == [[0.1] * 2, [0.1] * 3]  # SPT
    with pytest.raises(ConfigError, match="drop_path_schedule 'cosine'"):
        drop_path_rates(0.1, [2], "cosine")


def test_pre_norm_block_is_residual_branches_in_order():
    torch.manual_seed(0)
    attn, mlp = nn.Linear(8, 8), nn.Linear(8, 8)
    block = PreNormBlock(8, [("attn", attn)], mlp, drop_path=0.0).eval()
    assert [k.split(".")[0] for k in block.state_dict()][::2] == ["norm1", "attn", "norm2", "mlp"]
    x = torch.randn(2, 5, 8)
    y = x + attn(block.norm1(x))
    torch.testing.assert_close(block(x), y + mlp(block.norm2(y)))
    a, b, f = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
    three = PreNormBlock(8, [("attn", a), ("lkca", b)], f).eval()
    y = x + a(three.norm1(x))
    y = y + b(three.norm2(y))
    torch.testing.assert_close(three(x), y + f(three.norm3(y)))
    with pytest.raises(ValueError, match="distinct"):
        PreNormBlock(8, [("mlp", a)], f)


def test_pre_norm_block_drops_each_branch_independently():
    """One rate, one mask per branch and sample (SPT's single DropPath called on both branches)."""
    torch.manual_seed(0)
    block = PreNormBlock(4, [("attn", _Const(1.0))], _Const(10.0), drop_path=0.5).train()
    for norm in (block.norm1, block.norm2):
        norm.weight.requires_grad_(False)
    out = block(torch.zeros(4000, 1, 4))[:, 0, 0]  # 0, 2, 20 or 22 (kept branches scaled by 2)
    seen = {round(v) for v in out.tolist()}
    assert seen == {0, 2, 20, 22}


class _Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor, *args: object) -> torch.Tensor:
        return torch.full_like(x, self.value)
