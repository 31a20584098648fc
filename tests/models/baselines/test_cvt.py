"""CvT: convolutional projections with strided keys and values, the stage pyramid."""

import torch
import torch.nn.functional as F

from lkca.models.baselines.cvt import ChannelLayerNorm, ConvAttention, CvT, CvTConfig


def test_channel_layer_norm_is_layer_norm_over_channels():
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    x = torch.randn(2, 6, 3, 5)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), ref)


def test_keys_and_values_come_from_a_strided_map():
    attn = ConvAttention(8, heads=2, dim_head=4, kernel=3, kv_stride=2).eval()
    x = torch.randn(1, 8, 4, 4)
    assert attn.kv(x).shape == (1, 16, 2, 2)  # 16 positions -> 4 keys and values
    assert attn(x).shape == x.shape


def test_pyramid():
    model = CvT(CvTConfig(dims=(8, 16, 32), depths=(1, 1, 1))).eval()
    x, sizes = torch.randn(1, 3, 64, 64), []
    for stage in model.stages:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]
