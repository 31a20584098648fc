"""CaiT: talking heads with identity mixing is attention, class attention, LayerScale."""

import torch
import torch.nn.functional as F

import lkca
from lkca.models.baselines.cait import TalkingHeadsAttention, layer_scale_init


def test_talking_heads_with_identity_mixing_is_multi_head_attention():
    attn = TalkingHeadsAttention(dim=12, heads=3, dim_head=5)
    with torch.no_grad():
        attn.mix_pre.copy_(torch.eye(3))
        attn.mix_post.copy_(torch.eye(3))
    x = torch.randn(2, 7, 12)
    y = attn.norm(x)
    q = attn.q(y).reshape(2, 7, 3, 5).transpose(1, 2)
    k, v = attn.kv(y).reshape(2, 7, 2, 3, 5).permute(2, 0, 3, 1, 4)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 7, 15)
    torch.testing.assert_close(attn(x), attn.proj(ref), atol=1e-5, rtol=1e-5)


def test_class_attention_queries_with_the_class_token_only():
    attn = TalkingHeadsAttention(dim=8, heads=2, dim_head=4)
    cls, patches = torch.randn(2, 1, 8), torch.randn(2, 5, 8)
    out = attn(cls, patches)
    assert out.shape == (2, 1, 8)
    assert not torch.allclose(out, attn(cls, patches + 1.0))  # patches are keys and values


def test_layer_scale_follows_the_depth_of_each_block():
    assert [layer_scale_init(b) for b in (1, 18, 19, 24, 25)] == [0.1, 0.1, 1e-5, 1e-5, 1e-6]
    model = lkca.create_model("cait_t")
    assert len(model.blocks) == 16 and len(model.cls_blocks) == 1
    gammas = torch.stack([b.gamma1.detach() for b in model.blocks])
    assert torch.allclose(gammas, torch.full_like(gammas, 0.1))
