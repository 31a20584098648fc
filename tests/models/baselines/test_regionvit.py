"""RegionViT: regional and local tokens, windows regrouped without loss, shared attention."""

import torch

from lkca.models.baselines.regionvit import R2LBlock, RegionViT, RegionViTConfig


def _block(window=2):
    torch.manual_seed(0)
    return R2LBlock(dim=8, num_heads=2, window=window, mlp_ratio=2.0, qkv_bias=True, drop_path=0.0)


def test_windows_are_regrouped_losslessly():
    """With the attention and MLP outputs zeroed, a block returns its inputs unchanged."""
    block = _block()
    for layer in (block.attn.proj, block.mlp.fc2):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    local, region = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 3, 8)
    out_local, out_region = block(local, region)
    assert torch.equal(out_local, local) and torch.equal(out_region, region)


def test_each_region_sees_only_its_own_window_in_lsa():
    block = _block().eval()
    local, region = torch.randn(1, 4, 4, 8), torch.randn(1, 2, 2, 8)
    moved = local.clone()
    moved[0, 0, 0] += 1.0  # a local token of the top-left window
    a, b = block(local, region)[0], block(moved, region)[0]
    changed = (a - b).abs().sum(-1)[0] > 0  # (4, 4) local tokens that moved
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(changed, expected)


def test_relative_bias_is_zero_for_the_regional_token():
    bias = _block(window=3).local_bias(3, 3)
    assert bias.shape == (2, 10, 10)
    assert (bias[:, 0] == 0).all() and (bias[:, :, 0] == 0).all()


def test_stages_shrink_both_streams_and_smaller_windows_run():
    model = RegionViT(RegionViTConfig(dims=(8, 16, 32), num_heads=(1, 2, 4), depths=(1, 1, 1)))
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 200)  # local 16/8/4, region 4/2/1
    small = RegionViT(RegionViTConfig(img_size=8, dims=(8, 16, 32), depths=(1, 1, 1),
                                      num_heads=(1, 2, 4)))
    assert small.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 200)  # last stage: 2x2 windows
