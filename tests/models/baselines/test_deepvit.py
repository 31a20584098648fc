"""DeepViT: Re-Attention mixes the heads' maps by Theta, normalised over the heads."""

import torch

from lkca.models.baselines.deepvit import ReAttention


def test_re_attention_is_theta_mixed_normalised_maps():
    torch.manual_seed(0)
    attn = ReAttention(dim=16, heads=4, dim_head=6)
    x = torch.randn(2, 7, 16)
    q, k, v = attn.qkv(attn.norm(x)).reshape(2, 7, 3, 4, 6).permute(2, 0, 3, 1, 4)
    maps = ((q @ k.transpose(-1, -2)) * 6 ** -0.5).softmax(-1)  # (B, h, N, N)
    mixed = (maps.permute(0, 2, 3, 1) @ attn.theta).permute(0, 3, 1, 2)  # sum_h maps_h Theta_hg
    mixed = attn.map_norm(mixed.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    ref = (mixed @ v).transpose(1, 2).reshape(2, 7, 24)
    torch.testing.assert_close(attn(x), attn.proj(ref), atol=1e-5, rtol=1e-5)


def test_theta_mixes_the_heads_maps():
    torch.manual_seed(0)
    attn = ReAttention(dim=16, heads=4, dim_head=4)
    x = torch.randn(1, 5, 16)
    before = attn(x)
    with torch.no_grad():
        attn.theta.copy_(attn.theta[[1, 0, 2, 3]])  # swap the rows of heads 0 and 1
    assert not torch.allclose(before, attn(x))
