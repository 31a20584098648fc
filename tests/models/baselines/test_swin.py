"""Swin: window partition, the shifted-window mask, attention equivalence, the authors' position
embedding."""

import pytest
import torch
import torch.nn.functional as F

import lkca
from lkca.models.baselines.swin import (
    WindowAttention,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def test_window_partition_round_trip():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2, 6, 16, 5)
    assert torch.equal(windows[0, 1], x[0, :4, 4:8].reshape(16, 5))
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_shifted_mask_keeps_wrapped_regions_apart():
    mask = shifted_window_mask(8, 8, 4, 2, torch.device("cpu"))  # (4 windows, 16, 16)
    allowed = (mask == 0).sum(-1)  # tokens each token may attend to
    assert (allowed[0] == 16).all()  # the top-left window holds one region
    assert (allowed[1] == 8).all() and (allowed[2] == 8).all()  # two regions each
    assert (allowed[3] == 4).all()  # the corner window: four 2x2 regions
    assert torch.equal(mask, mask.transpose(1, 2))


def test_window_attention_without_bias_is_attention_within_each_window():
    attn = WindowAttention(dim=8, num_heads=2, window_size=2)
    torch.nn.init.zeros_(attn.relative_position_bias_table)
    x = torch.randn(3, 5, 4, 8)  # (B, windows, tokens, C)
    q, k, v = attn.qkv(x).reshape(3, 5, 4, 3, 2, 4).permute(3, 0, 1, 4, 2, 5)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(2, 3).reshape(3, 5, 4, 8)
    torch.testing.assert_close(attn(x), attn.proj(ref))


def test_each_window_gets_its_own_mask_in_every_image():
    attn = WindowAttention(dim=8, num_heads=2, window_size=2)
    x = torch.randn(3, 4, 4, 8)  # (B, windows, tokens, C)
    mask = shifted_window_mask(4, 4, 2, 1, torch.device("cpu"))  # (4 windows, 4, 4), all differ
    out = attn(x, mask)
    for w in range(4):
        torch.testing.assert_close(out[:, w], attn(x[:, w:w + 1], mask[w:w + 1])[:, 0])


def test_windows_shift_only_where_the_grid_is_wider_than_a_window():
    model = lkca.create_model("swin_t")  # grids 16, 8, 4 at 32x32, window 4
    shifts = [[b.shift for b in stage.blocks] for stage in model.layers]
    assert shifts == [[0], [0, 2], [0]]
    assert [stage.downsample is not None for stage in model.layers] == [True, True, False]


def test_grids_that_are_not_whole_windows_are_padded():
    model = lkca.create_model("swin_t", img_size=40).eval()  # grids 20, 10 (padded to 12), 5
    assert model(torch.randn(1, 3, 40, 40)).shape == (1, 10)


def test_the_position_embedding_fixes_the_input_size():
    model = lkca.create_model("swin_t").eval()
    assert model.absolute_pos_embed.shape == (1, 256, 64)
    with pytest.raises(ValueError, match="build it with img_size"):
        model(torch.randn(1, 3, 64, 64))
