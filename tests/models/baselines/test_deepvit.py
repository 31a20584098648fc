"""DeepViT: Re-Attention with Theta = I and an identity BatchNorm is plain attention."""

import torch
import torch.nn.functional as F

from lkca.models.baselines.deepvit import ReAttention


def test_re_attention_with_identity_theta_is_attention():
    torch.manual_seed(0)
    attn = ReAttention(dim=16, num_heads=4).eval()  # fresh BatchNorm: mean 0, var 1, affine 1/0
    with torch.no_grad():
        attn.theta.copy_(torch.eye(4))
    x = torch.randn(2, 7, 16)
    q, k, v = attn.qkv(x).reshape(2, 7, 3, 4, 4).permute(2, 0, 3, 1, 4)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 7, 16)
    torch.testing.assert_close(attn(x), attn.proj(ref), atol=1e-4, rtol=1e-4)


def test_theta_mixes_the_heads_maps():
    torch.manual_seed(0)
    attn = ReAttention(dim=16, num_heads=4).eval()
    x = torch.randn(1, 5, 16)
    before = attn(x)
    with torch.no_grad():
        attn.theta.copy_(torch.eye(4)[[1, 0, 2, 3]])  # swap the maps of heads 0 and 1
    assert not torch.allclose(before, attn(x))
