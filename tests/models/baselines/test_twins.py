"""Twins-SVT: LSA is attention within windows, GSA attention to a sub-sampled map."""

import torch
import torch.nn.functional as F

from lkca.models.baselines.twins import (
    GlobalSubsampledAttention,
    LocallyGroupedAttention,
    TwinsConfig,
    TwinsSVT,
)


def _global_attention(qkv, proj, x, heads):
    B, N, C = x.shape
    q, k, v = qkv(x).reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    return proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


def test_lsa_with_one_window_and_gsa_without_subsampling_are_global_attention():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8)
    lsa = LocallyGroupedAttention(8, 2, window=4)
    torch.testing.assert_close(lsa(x, (4, 4)), _global_attention(lsa.qkv, lsa.proj, x, 2))
    gsa = GlobalSubsampledAttention(8, 2, sr=1)
    qkv = torch.nn.Linear(8, 24)
    with torch.no_grad():
        qkv.weight.copy_(torch.cat([gsa.q.weight, gsa.kv.weight]))
        qkv.bias.copy_(torch.cat([gsa.q.bias, gsa.kv.bias]))
    torch.testing.assert_close(gsa(x, (4, 4)), _global_attention(qkv, gsa.proj, x, 2))


def test_lsa_keeps_windows_apart():
    """Changing a token of one 2x2 window leaves the other windows' outputs unchanged."""
    torch.manual_seed(0)
    lsa = LocallyGroupedAttention(8, 2, window=2)
    x = torch.randn(1, 16, 8)  # a 4x4 grid: four 2x2 windows
    y = x.clone()
    y[0, 0] += 1.0  # token (0, 0): the top-left window holds tokens 0, 1, 4, 5
    changed = (lsa(x, (4, 4)) - lsa(y, (4, 4))).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [0, 1, 4, 5]


def test_gsa_attends_to_the_subsampled_map_and_odd_grids_run():
    gsa = GlobalSubsampledAttention(8, 2, sr=2)
    assert gsa(torch.randn(1, 36, 8), (6, 6)).shape == (1, 36, 8)
    model = TwinsSVT(TwinsConfig(dims=(8, 16, 32), depths=(2, 2, 2))).eval()
    assert model(torch.randn(1, 3, 48, 80)).shape == (1, 200)  # grids 12x20, 6x10, 3x5
