"""The pieces several comparison families share: checks, drop-path rates, the pre-LN block."""

import pytest
import torch
from torch import nn

from lkca.models.baselines import common


def test_checks_name_the_family_and_the_bad_settings():
    common.check_heads("CvT", 12, 3)
    with pytest.raises(ValueError, match=r"^CvT: dim \(10\) must be a multiple of num_heads \(3\)"):
        common.check_heads("CvT", 10, 3)
    cfg = common.SPTViTConfig()
    cfg.dims, cfg.depths, cfg.heads = (8, 16), (1, 1), (1, 2, 4)  # type: ignore[attr-defined]
    common.check_stages("X", cfg, "dims", "depths")
    with pytest.raises(ValueError, match=r"X: dims, depths and heads need one value per stage; "
                                         r"got \(8, 16\), \(1, 1\), \(1, 2, 4\)"):
        common.check_stages("X", cfg, "dims", "depths", "heads")


def test_drop_path_rates_rise_over_all_blocks_split_per_stage():
    first, second = common.drop_path_rates(0.3, [1, 3])
    assert first == [0.0] and second == pytest.approx([0.1, 0.2, 0.3])
    (rates,) = common.drop_path_rates(0.1, [1])
    assert rates == [0.0]


def test_spt_patch_embed_and_class_token():
    embed = common.spt_patch_embed(common.SPTViTConfig(img_size=32, dim=16))
    assert embed.grid_size == (8, 8)
    assert common.class_token(16).shape == (1, 1, 16)


def test_pre_norm_block_is_two_residual_branches():
    torch.manual_seed(0)
    attn, mlp = nn.Linear(8, 8), nn.Linear(8, 8)
    block = common.PreNormBlock(8, attn, mlp, drop_path=0.0).eval()
    x = torch.randn(2, 5, 8)
    y = x + attn(block.norm1(x))
    torch.testing.assert_close(block(x), y + mlp(block.norm2(y)))
