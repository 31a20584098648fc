"""CaiT: talking heads reduce to attention, class attention."""

import torch
import torch.nn.functional as F

import lkca
from lkca.models.baselines.cait import ClassAttention, TalkingHeadAttention


def _identity(linear):
    torch.nn.init.eye_(linear.weight)
    torch.nn.init.zeros_(linear.bias)


def test_talking_heads_with_identity_mixing_is_multi_head_attention():
    attn = TalkingHeadAttention(dim=12, num_heads=3)
    _identity(attn.proj_l)
    _identity(attn.proj_w)
    x = torch.randn(2, 7, 12)
    q, k, v = attn.qkv(x).reshape(2, 7, 3, 3, 4).permute(2, 0, 3, 1, 4)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 7, 12)
    torch.testing.assert_close(attn(x), attn.proj(ref))


def test_class_attention_updates_only_the_class_token():
    attn = ClassAttention(dim=8, num_heads=2)
    x = torch.randn(2, 5, 8)
    assert attn(x).shape == (2, 1, 8)
    y = x.clone()
    y[:, 1:] += 1.0  # the patch tokens are keys and values
    assert not torch.allclose(attn(x), attn(y))


def test_the_class_token_joins_only_the_class_attention_blocks():
    model = lkca.create_model("cait_t").eval()
    assert model.cfg.cls_depth == 2 and all(not b.class_attention for b in model.blocks)
    assert all(b.class_attention for b in model.cls_blocks)
    gammas = torch.stack([b.gamma1.detach() for b in model.blocks])
    assert torch.allclose(gammas, torch.full_like(gammas, 0.1))  # LayerScale init, depth <= 18
